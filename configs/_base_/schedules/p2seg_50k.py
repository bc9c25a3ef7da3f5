# Copyright (c) p2seg_mm contributors. All rights reserved.
# Release schedule (docs/method.md §7): Adam 5e-5, no weight decay,
# 2k-iteration linear warm-up multiplied by poly(0.9) decay over 50k
# iterations.
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
    dict(
        type='PolyLR',
        power=0.9,
        eta_min=0,
        by_epoch=False,
        begin=0,
        end=max_iters)
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
