# Copyright (c) p2seg_mm contributors. All rights reserved.
# Registered modules only: the dataset converters
# (``p2seg_mm.datasets.converters``) are imported by the tools that use
# them, not by ``import p2seg_mm``.
from . import transforms  # noqa: F401
from .coco_point import CocoPointDataset

__all__ = ['CocoPointDataset']
