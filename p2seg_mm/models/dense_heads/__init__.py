# Copyright (c) p2seg_mm contributors. All rights reserved.
from .affinity_head import P2SegAffinityHead
from .center_offset_head import P2SegCenterOffsetHead
from .semantic_head import P2SegSemanticHead

__all__ = ['P2SegAffinityHead', 'P2SegCenterOffsetHead', 'P2SegSemanticHead']
