# Copyright (c) p2seg_mm contributors. All rights reserved.
from . import hooks  # noqa: F401
from .hooks.non_finite_loss_hook import NonFiniteLossError, NonFiniteLossHook

__all__ = ['NonFiniteLossError', 'NonFiniteLossHook']
