# Copyright (c) p2seg_mm contributors. All rights reserved.
from .affinity_reference import affinity_loss_dense, random_walk_dense
from .blockwise_affinity_step import (affinity_loss_blockwise,
                                      affinity_step_blockwise,
                                      random_walk_blockwise)

__all__ = [
    'affinity_loss_blockwise', 'affinity_loss_dense',
    'affinity_step_blockwise', 'random_walk_blockwise', 'random_walk_dense'
]
