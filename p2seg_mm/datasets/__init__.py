# Copyright (c) p2seg_mm contributors. All rights reserved.
# Registered modules only; the dataset converters live next to their
# scripts in tools/dataset_converters/.
from . import transforms  # noqa: F401
from .coco_point import CocoPointDataset

__all__ = ['CocoPointDataset']
