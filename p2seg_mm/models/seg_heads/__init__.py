# Copyright (c) p2seg_mm contributors. All rights reserved.
from .point_grouping_head import DEFAULT_TEST_CFG, P2SegPointGroupingHead

__all__ = ['DEFAULT_TEST_CFG', 'P2SegPointGroupingHead']
