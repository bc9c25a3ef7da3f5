# Copyright (c) p2seg_mm contributors. All rights reserved.
# Stage 2 on PASCAL VOC 2012: stock Mask R-CNN R-50-FPN 1x trained on the
# P2Seg pseudo-masks of train_aug, evaluated on VOC 2012 val with COCO segm
# AP and the paper's VOC mAP at IoU .25/.5/.7/.75 (the data:
# configs/_base_/datasets/voc_p2seg_pseudo.py).
custom_imports = dict(imports=['p2seg_mm'], allow_failed_imports=False)
_base_ = [
    'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py',
    '../_base_/datasets/voc_p2seg_pseudo.py'
]

model = dict(
    roi_head=dict(
        bbox_head=dict(num_classes=_base_.num_classes),
        mask_head=dict(num_classes=_base_.num_classes)))

data_root = _base_.voc_root
train_dataloader = dict(dataset=_base_.voc_train_dataset)
val_dataloader = dict(dataset=_base_.voc_val_dataset)
test_dataloader = val_dataloader
val_evaluator = _base_.voc_evaluator
test_evaluator = val_evaluator

# NOTE: `auto_scale_lr` is for automatically scaling LR,
# USER SHOULD NOT CHANGE ITS VALUES.
# base_batch_size = (8 GPUs) x (2 samples per GPU)
auto_scale_lr = dict(base_batch_size=16)
