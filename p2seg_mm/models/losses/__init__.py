# Copyright (c) p2seg_mm contributors. All rights reserved.
from .mdm_criterion import (DEFAULT_TRAIN_CFG, MDMHeads, MDMOutputs,
                            P2SegMDMCriterion)

__all__ = ['DEFAULT_TRAIN_CFG', 'MDMHeads', 'MDMOutputs', 'P2SegMDMCriterion']
