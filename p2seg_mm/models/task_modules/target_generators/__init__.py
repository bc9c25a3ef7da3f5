# Copyright (c) p2seg_mm contributors. All rights reserved.
from .affinity_target import (instance_membership, pool_membership,
                              semantic_membership)
from .online_s2i import OnlineS2ITarget
from .static_s2i import make_center_heatmap, make_static_offsets

__all__ = [
    'instance_membership', 'pool_membership', 'semantic_membership',
    'OnlineS2ITarget', 'make_center_heatmap', 'make_static_offsets'
]
