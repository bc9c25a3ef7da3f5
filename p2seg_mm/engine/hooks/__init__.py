# Copyright (c) p2seg_mm contributors. All rights reserved.
from .batch_size_check_hook import BatchSizeCheckHook
from .pseudo_mask_export_hook import PseudoMaskExportHook

__all__ = ['BatchSizeCheckHook', 'PseudoMaskExportHook']
