# Copyright (c) p2seg_mm contributors. All rights reserved.
from .point_decoding import (decode_instances_with_centers,
                             decode_instances_with_points)

__all__ = ['decode_instances_with_centers', 'decode_instances_with_points']
