# Copyright (c) p2seg_mm contributors. All rights reserved.
# mmdet's runtime, switched to iteration-based logging and checkpoints.
_base_ = 'mmdet::_base_/default_runtime.py'

default_hooks = dict(
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=5000,
        max_keep_ckpts=3))
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=False)
