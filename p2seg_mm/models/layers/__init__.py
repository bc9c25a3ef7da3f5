# Copyright (c) p2seg_mm contributors. All rights reserved.
from .blockwise_affinity import (affinity_loss_blockwise, affinity_loss_dense,
                                 random_walk_blockwise, random_walk_dense)

__all__ = [
    'affinity_loss_blockwise', 'affinity_loss_dense',
    'random_walk_blockwise', 'random_walk_dense'
]
