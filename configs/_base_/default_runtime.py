# Copyright (c) p2seg_mm contributors. All rights reserved.
# mmdet's runtime, switched to iteration-based logging and checkpoints.
_base_ = 'mmdet::_base_/default_runtime.py'

default_hooks = dict(
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=5000,
        max_keep_ckpts=3))
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=False)

# The release trains with SyncBN over 8 GPUs x 1 image (docs/method.md §2.3):
# mmengine converts BN to SyncBN in distributed runs only.
sync_bn = 'torch'

# Warn at the start of training when world size x batch size differs from
# auto_scale_lr.base_batch_size (a one-GPU run of a paper config would
# otherwise train at batch 1). A config that sets its own custom_hooks
# replaces this list: keep the entry there.
custom_hooks = [dict(type='BatchSizeCheckHook')]
