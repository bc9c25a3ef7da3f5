# Copyright (c) p2seg_mm contributors. All rights reserved.
from . import converters, transforms  # noqa: F401
from .coco_point import CocoPointDataset

__all__ = ['CocoPointDataset']
