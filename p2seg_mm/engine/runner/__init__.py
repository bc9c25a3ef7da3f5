# Copyright (c) p2seg_mm contributors. All rights reserved.
from .pseudo_export_loop import PseudoMaskExportLoop, pending_indices

__all__ = ['PseudoMaskExportLoop', 'pending_indices']
