# Copyright (c) p2seg_mm contributors. All rights reserved.
from . import functional, metrics  # noqa: F401
from .pseudo_quality import evaluate_pseudo_masks, format_quality_table

__all__ = ['evaluate_pseudo_masks', 'format_quality_table']
