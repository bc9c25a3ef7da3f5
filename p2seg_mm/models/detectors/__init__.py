# Copyright (c) p2seg_mm contributors. All rights reserved.
from .p2seg import P2Seg

__all__ = ['P2Seg']
