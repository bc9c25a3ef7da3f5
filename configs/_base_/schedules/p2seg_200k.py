# Copyright (c) p2seg_mm contributors. All rights reserved.
# The release schedule (p2seg_50k.py) over 200k iterations, the release's
# COCO length (docs/method.md §7), validated once at the end.
_base_ = './p2seg_50k.py'

max_iters = 200000
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
