# Copyright (c) p2seg_mm contributors. All rights reserved.
# P2Seg stage A, HRNet-W48 (the headline model, docs/method.md §2.1), VOC 2012.
_base_ = [
    '../_base_/models/p2seg_hrnet48.py',
    '../_base_/datasets/voc_instance_point.py',
    '../_base_/schedules/p2seg_50k.py', '../_base_/default_runtime.py'
]
custom_imports = dict(imports=['p2seg_mm'], allow_failed_imports=False)

# Heads sized by the dataset base's class count.
model = dict(
    semantic_head=dict(num_classes=_base_.num_classes),
    center_offset_head=dict(num_classes=_base_.num_classes))

randomness = dict(seed=3407)
