# Copyright (c) p2seg_mm contributors. All rights reserved.
from .affinity_target import (instance_membership, pool_membership,
                              semantic_membership)
from .online_s2i import (OnlineS2ITarget, group_pixels_to_points,
                         nearest_point_index, pixel_centres)
from .static_s2i import make_center_heatmap, make_static_offsets

__all__ = [
    'instance_membership', 'pool_membership', 'semantic_membership',
    'OnlineS2ITarget', 'group_pixels_to_points', 'nearest_point_index',
    'pixel_centres', 'make_center_heatmap', 'make_static_offsets'
]
