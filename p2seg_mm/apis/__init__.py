# Copyright (c) p2seg_mm contributors. All rights reserved.
from .inference import (build_pipeline, inference_points,
                        init_point_segmentor, instances_to_coco, read_image)
from .point_prompts import (load_points, match_images, points_from_cli,
                            prepare_points, resolve_class)

__all__ = [
    'build_pipeline', 'inference_points', 'init_point_segmentor',
    'instances_to_coco', 'read_image', 'load_points', 'match_images',
    'points_from_cli', 'prepare_points', 'resolve_class'
]
