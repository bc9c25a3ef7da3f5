# Copyright (c) p2seg_mm contributors. All rights reserved.
# Release schedule (docs/method.md §7): Adam 5e-5, no weight decay,
# 2k-iteration linear warm-up multiplied by poly(0.9) decay over 50k
# iterations. The length is written once, in train_cfg: the poly decay has
# no `end`, so the runner ends it at train_cfg.max_iters (also when
# --cfg-options train_cfg.max_iters=N changes it). Other lengths:
# p2seg_200k.py (COCO), p2seg_demo_300.py (CPU ladder), p2seg_demo_1000.py
# (CPU demo).
max_iters = 50000
val_interval = 5000

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='Adam', lr=5e-5, betas=(0.9, 0.999), eps=1e-8, weight_decay=0))

# mmengine multiplies overlapping schedulers: w(t) * (1 - t / T) ^ 0.9.
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
        end=2000),
    # end: train_cfg.max_iters (mmengine's default for a scheduler without
    # one)
    dict(type='PolyLR', power=0.9, eta_min=0, by_epoch=False, begin=0)
]

train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=val_interval)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

# Default setting for scaling LR automatically
#   - `enable` means enable scaling LR automatically
#       or not by default.
#   - `base_batch_size` = (8 GPUs) x (1 sample per GPU).
auto_scale_lr = dict(enable=False, base_batch_size=8)
