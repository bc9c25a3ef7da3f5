# Copyright (c) p2seg_mm contributors. All rights reserved.
# P2Seg stage A with HRNet-W48 on COCO 2017: 80 classes, centre loss 200,
# 200k iterations (docs/method.md §7, §11).
_base_ = [
    '../_base_/models/p2seg_hrnet48.py',
    '../_base_/datasets/coco_instance_point.py',
    '../_base_/schedules/p2seg_50k.py', '../_base_/default_runtime.py'
]
custom_imports = dict(imports=['p2seg_mm'], allow_failed_imports=False)

num_classes = 80
max_iters = 200000
model = dict(
    # The release trains COCO with COCO statistics (docs/method.md §1.3); its
    # test time uses ImageNet's. We keep one normalisation for both.
    data_preprocessor=dict(
        mean=[120.105, 114.24, 104.04], std=[59.67, 60.945, 61.71]),
    semantic_head=dict(num_classes=num_classes),
    center_offset_head=dict(num_classes=num_classes, loss_center_weight=200.),
)

param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
        end=2000),
    dict(
        type='PolyLR',
        power=0.9,
        eta_min=0,
        by_epoch=False,
        begin=0,
        end=max_iters)
]
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)

randomness = dict(seed=3407)
