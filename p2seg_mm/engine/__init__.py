# Copyright (c) p2seg_mm contributors. All rights reserved.
from . import hooks, runner  # noqa: F401
from .hooks.non_finite_loss_hook import NonFiniteLossError, NonFiniteLossHook
from .runner import PseudoMaskExportLoop

__all__ = ['NonFiniteLossError', 'NonFiniteLossHook', 'PseudoMaskExportLoop']
