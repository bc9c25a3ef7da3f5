# Copyright (c) p2seg_mm contributors. All rights reserved.
# Stage 2 on PASCAL VOC 2012: stock Mask R-CNN R-50-FPN 1x trained on the
# P2Seg pseudo-masks of train_aug (10,582 images), evaluated on VOC 2012 val
# with COCO segm AP and the paper's VOC mAP at IoU .25/.5/.7/.75.
custom_imports = dict(imports=['p2seg_mm'], allow_failed_imports=False)
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'

data_root = 'data/voc/'
metainfo = dict(
    classes=('aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car',
             'cat', 'chair', 'cow', 'diningtable', 'dog', 'horse', 'motorbike',
             'person', 'pottedplant', 'sheep', 'sofa', 'train', 'tvmonitor'))
# Written by tools/export_pseudo_masks.py (PseudoMaskDumper): one RLE mask,
# box and score per annotated point of every training image.
pseudo_ann_file = 'annotations/voc_2012_train_aug_p2seg_pseudo.json'
val_ann_file = 'annotations/voc_2012_val.json'

model = dict(
    roi_head=dict(
        bbox_head=dict(num_classes=20), mask_head=dict(num_classes=20)))

train_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file=pseudo_ann_file,
        data_prefix=dict(img='JPEGImages/')))
val_dataloader = dict(
    dataset=dict(
        data_root=data_root,
        metainfo=metainfo,
        ann_file=val_ann_file,
        data_prefix=dict(img='JPEGImages/')))
test_dataloader = val_dataloader

val_evaluator = [
    dict(
        type='CocoMetric', ann_file=data_root + val_ann_file,
        metric='segm'),
    dict(
        type='VOCInstanceMetric',
        ann_file=data_root + val_ann_file,
        iou_thrs=[0.25, 0.5, 0.7, 0.75])
]
test_evaluator = val_evaluator

# NOTE: `auto_scale_lr` is for automatically scaling LR,
# USER SHOULD NOT CHANGE ITS VALUES.
# base_batch_size = (8 GPUs) x (2 samples per GPU)
auto_scale_lr = dict(base_batch_size=16)
