# Copyright (c) p2seg_mm contributors. All rights reserved.
# p2seg_demo_300.py at 1000 iterations (the demo MDM: its stride-4 walk
# helps only once the semantic map is confident, README "Quality
# benchmark").
_base_ = './p2seg_demo_300.py'

max_iters = 1000
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
