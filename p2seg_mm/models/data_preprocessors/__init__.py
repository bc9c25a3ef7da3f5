# Copyright (c) p2seg_mm contributors. All rights reserved.
from .data_preprocessor import P2SegDataPreprocessor

__all__ = ['P2SegDataPreprocessor']
