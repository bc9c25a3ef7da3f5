# Copyright (c) p2seg_mm contributors. All rights reserved.
from .overlay import (class_color, instance_colors, overlay_instances,
                      overlay_points, overlay_semantic, save_png)

__all__ = [
    'class_color', 'instance_colors', 'overlay_instances', 'overlay_points',
    'overlay_semantic', 'save_png'
]
