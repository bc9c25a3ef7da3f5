# Copyright (c) p2seg_mm contributors. All rights reserved.
from .demo_cells import CATEGORIES, CellSequence, build_demo_dataset
from .masks_to_points import convert_masks_to_points, masks_to_points_file
from .voc_sbd import VOC_CLASSES, convert_voc_sbd

__all__ = [
    'CATEGORIES', 'CellSequence', 'build_demo_dataset',
    'convert_masks_to_points', 'masks_to_points_file', 'VOC_CLASSES',
    'convert_voc_sbd'
]
