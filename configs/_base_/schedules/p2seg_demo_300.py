# Copyright (c) p2seg_mm contributors. All rights reserved.
# The release schedule's shape (p2seg_50k.py: Adam, linear warm-up times
# poly(0.9) decay) at CPU-demo scale: 300 iterations of 4 crops, lr 1e-3,
# 50 warm-up iterations, validated once at the end.
_base_ = './p2seg_50k.py'

max_iters = 300
optim_wrapper = dict(optimizer=dict(lr=1e-3))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=50),
    # end: train_cfg.max_iters, set by the runner
    dict(type='PolyLR', power=0.9, eta_min=0, by_epoch=False, begin=0)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
# base_batch_size = (1 process) x (4 crops per batch)
auto_scale_lr = dict(base_batch_size=4)
