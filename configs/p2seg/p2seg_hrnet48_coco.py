# Copyright (c) p2seg_mm contributors. All rights reserved.
# P2Seg stage A with HRNet-W48 on COCO 2017: 80 classes, centre loss 200,
# 200k iterations (docs/method.md §7, §11).
_base_ = [
    '../_base_/models/p2seg_hrnet48.py',
    '../_base_/datasets/coco_instance_point.py',
    '../_base_/schedules/p2seg_200k.py', '../_base_/default_runtime.py'
]
custom_imports = dict(imports=['p2seg_mm'], allow_failed_imports=False)

model = dict(
    # The release trains COCO with COCO statistics (docs/method.md §1.3); its
    # test time uses ImageNet's. We keep one normalisation for both.
    data_preprocessor=dict(
        mean=[120.105, 114.24, 104.04], std=[59.67, 60.945, 61.71]),
    # Heads sized by the dataset base's class count.
    semantic_head=dict(num_classes=_base_.num_classes),
    center_offset_head=dict(
        num_classes=_base_.num_classes, loss_center_weight=200.),
)

randomness = dict(seed=3407)
