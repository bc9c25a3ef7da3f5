# Copyright (c) p2seg_mm contributors. All rights reserved.
# P2Seg network, ResNet-50 + Panoptic-DeepLab decoder (docs/method.md §2.2).
# Differs from the release's ResNet model: one decoder shared by all heads,
# 3x3 heads (the release: separate semantic, instance and affinity decoders
# with depthwise-separable 5x5 heads).
# custom_imports lives in the leaf configs (mmengine refuses a key that
# two bases define). The heads' class count comes from the dataset base:
# the leaf sets semantic_head and center_offset_head num_classes to
# _base_.num_classes (configs/_base_/datasets/).

model = dict(
    type='P2Seg',
    data_preprocessor=dict(
        type='P2SegDataPreprocessor',
        # ImageNet mean/std (docs/method.md §1.3); images are loaded as BGR.
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=32,
        seg_pad_value=255,
        s2i_pad_value=0),
    backbone=dict(
        type='ResNet',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50')),
    neck=dict(
        type='P2SegDeepLabDecoder',
        in_channels=[256, 512, 1024, 2048],
        channels=256,
        aspp_channels=256,
        aspp_dilations=(3, 6, 9),
        proj_channels=(128, 64, 32),
        dropout_ratio=0.5,
        # BN momentum of the release's ResNet decoder (docs/method.md §2.2).
        norm_cfg=dict(type='BN', momentum=0.01)),
    # Heads: conv3x3 -> ReLU -> conv1x1, init N(0, 0.001^2), as the
    # release's HRNet heads (docs/method.md §2.1), not its ResNet dw-sep 5x5
    # heads.
    semantic_head=dict(
        type='P2SegSemanticHead',
        in_channels=256,
        feat_channels=256,
        top_k_percent=0.2,
        ignore_index=255,
        loss_weight=1.0),
    center_offset_head=dict(
        type='P2SegCenterOffsetHead',
        in_channels=256,
        feat_channels=256,
        # Loss weights (docs/method.md §5): centre 0 on VOC / 200 on COCO; each
        # offset term 0.5 x 0.01.
        loss_center_weight=0.0,
        loss_offset_static_weight=0.005,
        loss_offset_online_weight=0.005),
    affinity_head=dict(
        type='P2SegAffinityHead',
        in_channels=256,
        embed_dims=256,
        # Stream the N x N affinity in row blocks (docs/method.md §0.5).
        blockwise=True,
        block_size=1024,
        loss_sem_weight=0.5,
        loss_inst_weight=0.5),
    # Online S2I target generator (docs/method.md §3.3).
    online_target=dict(type='OnlineS2ITarget'),
    # MDM switches and test-time decoding: their defaults live in one place,
    # DEFAULT_TRAIN_CFG of P2SegMDMCriterion (models/losses/mdm_criterion.py:
    # K = num_stages = 1, online S2I, I2S with T1 and T2) and
    # DEFAULT_TEST_CFG of P2SegPointGroupingHead (models/seg_heads/
    # point_grouping_head.py: one mask per given point, test-time I2S);
    # set here only what a config changes (docs/method.md §11).
    train_cfg=dict(),
    test_cfg=dict())
