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
import runpy, sys, torch
import p2seg_mm.models.dense_heads.affinity_head as ah

def _aff(embed):
    e = embed.t().contiguous()  # (N, D)
    return torch.exp(-torch.cdist(e[None], e[None], p=1)[0])

def loss(embed, membership):
    aff = _aff(embed)
    mem = (membership != 0).to(embed.dtype)
    target = (mem.t() @ mem) > 0
    n_pos = target.sum().to(embed.dtype)
    n_neg = target.numel() - n_pos
    lp = torch.where(target, 1.0 - aff, 0.0).sum() / (n_pos + 1.0)
    ln = torch.where(target, 0.0, aff).sum() / (n_neg + 1.0)
    return 0.5 * lp + 0.5 * ln

def walk(embed, prob, power=1.0):
    aff = _aff(embed) ** power
    return prob @ (aff / aff.sum(1, keepdim=True)).t()

ah.affinity_loss_dense = loss
ah.random_walk_dense = walk
sys.argv = [sys.argv[1]] + sys.argv[2:]
runpy.run_path(sys.argv[0], run_name='__main__')
