# Copyright (c) p2seg_mm contributors. All rights reserved.
# The "ResNet-101" row of Table 1 (METHOD §2.2, §9).
_base_ = './p2seg_r50_voc.py'
custom_imports = dict(imports=['p2seg_mm'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained',
                      checkpoint='torchvision://resnet101')))
