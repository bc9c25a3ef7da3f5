# Copyright (c) p2seg_mm contributors. All rights reserved.
from .pseudo_mask_export_hook import PseudoMaskExportHook

__all__ = ['PseudoMaskExportHook']
