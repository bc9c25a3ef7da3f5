# Copyright (c) p2seg_mm contributors. All rights reserved.
# P2Seg network with HRNet-W48, single stride-4 output (docs/method.md §2.1).
_base_ = './p2seg_r50.py'

model = dict(
    backbone=dict(
        _delete_=True,
        type='HRNet',
        extra=dict(
            stage1=dict(
                num_modules=1,
                num_branches=1,
                block='BOTTLENECK',
                num_blocks=(4, ),
                num_channels=(64, )),
            stage2=dict(
                num_modules=1,
                num_branches=2,
                block='BASIC',
                num_blocks=(4, 4),
                num_channels=(48, 96)),
            stage3=dict(
                num_modules=4,
                num_branches=3,
                block='BASIC',
                num_blocks=(4, 4, 4),
                num_channels=(48, 96, 192)),
            stage4=dict(
                num_modules=3,
                num_branches=4,
                block='BASIC',
                num_blocks=(4, 4, 4, 4),
                num_channels=(48, 96, 192, 384))),
        # Only branch 0 (stride 4, 48 ch, fused with all branches).
        multiscale_output=False,
        norm_eval=False,
        norm_cfg=dict(type='BN', requires_grad=True),
        init_cfg=dict(
            type='Pretrained', checkpoint='open-mmlab://msra/hrnetv2_w48')),
    neck=dict(
        _delete_=True, type='P2SegHRNetNeck', in_channels=48, in_index=0),
    semantic_head=dict(in_channels=48),
    center_offset_head=dict(in_channels=48),
    affinity_head=dict(in_channels=48))
