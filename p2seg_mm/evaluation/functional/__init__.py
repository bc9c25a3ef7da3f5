# Copyright (c) p2seg_mm contributors. All rights reserved.
from .voc_instance_ap import (average_precision, eval_instance_ap,
                              image_mask_iou, mask_iou, rle_mask_iou)

__all__ = [
    'average_precision', 'eval_instance_ap', 'image_mask_iou', 'mask_iou',
    'rle_mask_iou'
]
