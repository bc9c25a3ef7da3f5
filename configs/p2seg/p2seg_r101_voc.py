# Copyright (c) p2seg_mm contributors. All rights reserved.
# ResNet-101 backbone as Table 1's "ResNet-101" row (docs/method.md §2.2, §9),
# but not that row's model: one decoder shared by all heads with 3x3 heads (the
# release: separate semantic, instance and affinity decoders with
# depthwise-separable 5x5 heads).
_base_ = './p2seg_r50_voc.py'
custom_imports = dict(imports=['p2seg_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained',
                      checkpoint='torchvision://resnet101')))
