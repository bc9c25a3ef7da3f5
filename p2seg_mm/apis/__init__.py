# Copyright (c) p2seg_mm contributors. All rights reserved.
from .baseline import export_nearest_point_baseline, nearest_point_masks

__all__ = ['export_nearest_point_baseline', 'nearest_point_masks']
