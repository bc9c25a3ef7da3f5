# Copyright (c) p2seg_mm contributors. All rights reserved.
# Stage 2 on COCO 2017: stock Mask R-CNN R-50-FPN 1x trained on the P2Seg
# pseudo-masks of train2017, evaluated on val2017 (bbox and segm AP).
custom_imports = dict(imports=['p2seg_mm'], allow_failed_imports=False)
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'

# Written by tools/export_pseudo_masks.py (PseudoMaskDumper): one RLE mask,
# box and score per annotated point of every training image.
train_dataloader = dict(
    dataset=dict(ann_file='annotations/instances_train2017_p2seg_pseudo.json'))

# NOTE: `auto_scale_lr` is for automatically scaling LR,
# USER SHOULD NOT CHANGE ITS VALUES.
# base_batch_size = (8 GPUs) x (2 samples per GPU)
auto_scale_lr = dict(base_batch_size=16)
