# Copyright (c) p2seg_mm contributors. All rights reserved.
from .formatting import PackP2SegInputs
from .geometric import (PointPad, PointRandomChoiceResize, PointRandomCrop,
                        PointRandomFlip, PointRandomResize, PointResize)
from .loading import LoadP2SegAnnotations, LoadP2SegImageFromFile
from .photometric import P2SegPhotoMetricDistortion
from .point_mapping import PointTransformMixin
from .s2i_targets import GenerateS2ITargets

__all__ = [
    'PackP2SegInputs', 'PointPad', 'PointRandomChoiceResize',
    'PointRandomCrop', 'PointRandomFlip', 'PointRandomResize', 'PointResize',
    'PointTransformMixin', 'LoadP2SegAnnotations', 'LoadP2SegImageFromFile',
    'GenerateS2ITargets', 'P2SegPhotoMetricDistortion'
]
