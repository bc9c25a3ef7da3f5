# Copyright (c) p2seg_mm contributors. All rights reserved.
from .mask_codec import (ann_to_mask, encode_mask, encode_masks,
                         mask_to_annotation, rle_bytes)

__all__ = [
    'ann_to_mask', 'encode_mask', 'encode_masks', 'mask_to_annotation',
    'rle_bytes'
]
