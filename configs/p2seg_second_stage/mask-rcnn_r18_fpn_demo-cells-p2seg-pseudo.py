# Copyright (c) p2seg_mm contributors. All rights reserved.
# Stage 2 on the offline demo cells (E. coli, HeLa nuclei): stock Mask R-CNN
# FPN shrunk to run on 2 CPU cores (ResNet-18 trained from scratch: no
# download, 64-channel FPN/heads, 512 px images, 300 iterations, one
# evaluation at the end).
custom_imports = dict(imports=['p2seg_mm'], allow_failed_imports=False)
_base_ = [
    'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py',
    '../_base_/datasets/demo_cells_classes.py'  # metainfo, num_classes
]

data_root = 'data/demo_cells/'
# Written by tools/export_pseudo_masks.py from the stage-1 demo model.
pseudo_ann_file = 'annotations/train_p2seg_pseudo.json'
val_ann_file = 'annotations/val_gt.json'
image_scale = (512, 512)
# A 15-minute CPU demo trains three of these (P2Seg pseudo-masks, the
# nearest-point baseline, ground truth): a short schedule. For a longer run
# edit max_iters here (the milestones, validation and checkpoint follow it);
# --cfg-options acts on the merged config, so there give
# train_cfg.max_iters, train_cfg.val_interval, param_scheduler.1.milestones
# and default_hooks.checkpoint.interval together.
max_iters = 80

# CPU-sized Mask R-CNN: ResNet-18 without pretrained weights (train every
# stage and its BN), 64-channel FPN and heads instead of 256.
feat_channels = 64
model = dict(
    backbone=dict(
        depth=18, frozen_stages=-1, norm_eval=False, init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=feat_channels),
    rpn_head=dict(
        in_channels=feat_channels,
        feat_channels=feat_channels,
        # Demo images are half-resolution frames: nuclei are ~15-20 px, so
        # the smallest anchor is 16 px (stock: 32 px).
        anchor_generator=dict(scales=[4])),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=feat_channels),
        bbox_head=dict(
            in_channels=feat_channels,
            fc_out_channels=256,
            num_classes=_base_.num_classes),
        mask_roi_extractor=dict(out_channels=feat_channels),
        mask_head=dict(
            in_channels=feat_channels,
            conv_out_channels=feat_channels,
            num_classes=_base_.num_classes)),
    train_cfg=dict(
        # ~160 nuclei per frame: the per-GT loop of gt_max_assign_all
        # costs a quarter of each CPU iteration; one best anchor per GT.
        rpn=dict(assigner=dict(gt_max_assign_all=False)),
        rcnn=dict(sampler=dict(num=256))),
    # A HeLa frame holds about 160 nuclei: keep more than 100 per image.
    test_cfg=dict(rcnn=dict(max_per_img=300)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=image_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=image_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        data_root=data_root,
        metainfo=_base_.metainfo,
        ann_file=pseudo_ann_file,
        data_prefix=dict(img='images/'),
        pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=2,
    dataset=dict(
        data_root=data_root,
        metainfo=_base_.metainfo,
        ann_file=val_ann_file,
        data_prefix=dict(img='images/'),
        pipeline=test_pipeline))
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

# Short iteration-based schedule: warm-up, then two LR steps.
train_cfg = dict(
    _delete_=True,
    type='IterBasedTrainLoop',
    max_iters=max_iters,
    val_interval=max_iters)
param_scheduler = [
    dict(
        type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
        end=20),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_iters,
        by_epoch=False,
        milestones=[int(max_iters * 0.75), int(max_iters * 0.9)],
        gamma=0.1)
]
optim_wrapper = dict(
    optimizer=dict(lr=0.01), clip_grad=dict(max_norm=35, norm_type=2))
default_hooks = dict(
    logger=dict(interval=10),
    checkpoint=dict(by_epoch=False, interval=max_iters, max_keep_ckpts=1))
log_processor = dict(by_epoch=False)

# NOTE: `auto_scale_lr` is for automatically scaling LR,
# USER SHOULD NOT CHANGE ITS VALUES.
# base_batch_size = (1 CPU process) x (2 samples per process)
auto_scale_lr = dict(base_batch_size=2)
# Same seed for the three demo trainings (P2Seg, baseline, ground truth):
# with 80 iterations, unseeded runs of one config differ by several AP
# points, more than the pseudo-masks do.
randomness = dict(seed=0)
