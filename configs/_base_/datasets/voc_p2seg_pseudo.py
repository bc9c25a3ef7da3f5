# Copyright (c) p2seg_mm contributors. All rights reserved.
# PASCAL VOC 2012 for the second stage: a stock mmdet COCO config trained on
# the P2Seg pseudo-masks of train_aug (10,582 images), evaluated on VOC 2012
# val with COCO segm AP and the paper's VOC mAP at IoU .25/.5/.7/.75.
# A leaf inherits its stock config and this file, then swaps the data in:
#     data_root = _base_.voc_root
#     train_dataloader = dict(dataset=_base_.voc_train_dataset)
#     val_dataloader = dict(dataset=_base_.voc_val_dataset)
#     test_dataloader = val_dataloader
#     val_evaluator = _base_.voc_evaluator
#     test_evaluator = val_evaluator
# and sizes its heads with num_classes. The stock config defines the
# dataloaders and evaluators and mmengine refuses a key that two bases
# define, hence the names of their own here.
_base_ = './voc_classes.py'  # metainfo (the 20 classes), num_classes

voc_root = 'data/voc/'
val_ann_file = 'annotations/voc_2012_val.json'
# What changes in the stock COCO datasets (type CocoDataset: the pseudo json
# has masks), train and val.
voc_train_dataset = dict(
    data_root=voc_root,
    metainfo=_base_.metainfo,
    # Written by tools/export_pseudo_masks.py (PseudoMaskDumper): one RLE
    # mask, box and score per annotated point of every training image.
    ann_file='annotations/voc_2012_train_aug_p2seg_pseudo.json',
    data_prefix=dict(img='JPEGImages/'))
voc_val_dataset = dict(
    data_root=voc_root,
    metainfo=_base_.metainfo,
    ann_file=val_ann_file,
    data_prefix=dict(img='JPEGImages/'))
voc_evaluator = [
    dict(type='CocoMetric', ann_file=voc_root + val_ann_file, metric='segm'),
    dict(
        type='VOCInstanceMetric',
        ann_file=voc_root + val_ann_file,
        iou_thrs=[0.25, 0.5, 0.7, 0.75])
]
