# Copyright (c) p2seg_mm contributors. All rights reserved.
# P2Seg stage A (MDM network), ResNet-50 + DeepLab decoder, VOC 2012
# train_aug points + semantic pseudo-maps, 50k iterations at 8 images.
# Not the release's ResNet model: one decoder shared by all heads, 3x3 heads
# (the release: separate semantic, instance and affinity decoders with
# depthwise-separable 5x5 heads, docs/method.md §2.2).
_base_ = [
    '../_base_/models/p2seg_r50.py',
    '../_base_/datasets/voc_instance_point.py',
    '../_base_/schedules/p2seg_50k.py', '../_base_/default_runtime.py'
]
custom_imports = dict(imports=['p2seg_mm'], allow_failed_imports=False)

# Heads sized by the dataset base's class count.
model = dict(
    semantic_head=dict(num_classes=_base_.num_classes),
    center_offset_head=dict(num_classes=_base_.num_classes))

randomness = dict(seed=3407)
