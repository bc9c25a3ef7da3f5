# Copyright (c) p2seg_mm contributors. All rights reserved.
# The quality benchmark's ladder MDM (benchmarks/bench_quality.py, README
# "Quality benchmark"): the demo's network at the CPU-cheap settings the
# ladder was measured with: the walk at stride 8 (embedding average-pooled
# by 2, N = 1024 per 256^2 crop) over the whole crop, the release's
# sigmoid affinity and max-pooled membership, 300 iterations; decoded with
# the walk, as the paper (each benchmark row sets use_i2s itself). A
# stride-8 walk cannot reach IoU .7 on these cells (the ground-truth map
# through a stride-8 grid: HeLa AP70 4.1, benchmarks/results/map_errors.md),
# hence the demo's stride-4 walk.
_base_ = './p2seg_r18_demo-cells.py'

max_iters = 300
model = dict(
    affinity_head=dict(pool=2, affinity='sigmoid'),
    train_cfg=dict(aff_membership='max', i2s_window=None))
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
default_hooks = dict(checkpoint=dict(interval=max_iters))
