# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Probe (docs/method.md §4.6): AffinityNet's affinity A = exp(-|e_i - e_j|_1)
instead of P2Seg's sigmoid(E^T E), on the affinity head's dense path.

Not package code: it replaces the head's dense loss and walk for one run of
any script, so a training and its decoding both use it. Run with
``model.affinity_head.blockwise=False`` (the block-wise step only knows
sigmoid(E^T E)); a demo frame at stride 8 (~3k cells) fits in memory.

Example (one seed of row p2seg_aux, then its decoding)::

    python benchmarks/probe_l1_affinity.py tools/train.py \
        configs/p2seg/p2seg_r18_demo-cells.py --work-dir work_dirs/exp_l1 \
        --cfg-options model.affinity_head.blockwise=False
    python benchmarks/probe_l1_affinity.py benchmarks/bench_quality.py \
        --score-one p2seg_aux train --ckpt work_dirs/exp_l1/iter_300.pth \
        --out l1_train.json --test-options \
        model.affinity_head.blockwise=False \
        model.train_cfg.unrefined_sem_loss_weight=1.0
"""
import runpy
import sys

import torch

import p2seg_mm.models.dense_heads.affinity_head as ah
from p2seg_mm.models.layers.affinity_reference import balanced_loss, walk


def _aff(embed):
    e = embed.t().contiguous()  # (N, D)
    return torch.exp(-torch.cdist(e[None], e[None], p=1)[0])


def loss(embed, membership):
    return balanced_loss(_aff(embed), membership)


def walk_dense(embed, prob, power=1.0):
    return walk(_aff(embed)**power, prob)


ah.affinity_loss_dense = loss
ah.random_walk_dense = walk_dense
sys.argv = [sys.argv[1]] + sys.argv[2:]
runpy.run_path(sys.argv[0], run_name='__main__')
