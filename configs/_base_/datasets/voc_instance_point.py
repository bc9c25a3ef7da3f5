# Copyright (c) p2seg_mm contributors. All rights reserved.
# PASCAL VOC 2012 (train_aug, 10,582 images) with one point per instance
# and a semantic pseudo-map per image (docs/method.md §1.3, §3.1).
_base_ = './voc_classes.py'  # metainfo (the 20 classes), num_classes
custom_imports = dict(imports=['p2seg_mm'], allow_failed_imports=False)

dataset_type = 'CocoPointDataset'
data_root = 'data/voc/'
backend_args = None

# Release augmentation (docs/method.md §3.1): photometric distortion
# (brightness ±16, contrast 0.5-1.5, hue ±36 degrees, no saturation change, no
# channel swap, clipped to [0, 255]: P2SegPhotoMetricDistortion, not mmdet's),
# long side 449 x U(0.7, 1.3), 416 x 416 crop, horizontal flip.
train_pipeline = [
    dict(type='LoadP2SegImageFromFile', backend_args=backend_args),
    dict(
        type='LoadP2SegAnnotations',
        with_seg=True,
        backend_args=backend_args),
    dict(
        type='P2SegPhotoMetricDistortion',
        brightness_delta=16,
        contrast_range=(0.5, 1.5),
        saturation_range=(1.0, 1.0),
        hue_delta=36),
    dict(
        type='PointRandomResize',
        scale=(449, 449),
        ratio_range=(0.7, 1.3),
        keep_ratio=True),
    dict(type='PointRandomCrop', crop_size=(416, 416)),
    # The image is BGR here: ImageNet mean x 255 in BGR order, so padded
    # pixels normalise to ~0. Padded pseudo-map pixels are ignored (255).
    dict(
        type='PointPad',
        size=(416, 416),
        pad_val=dict(img=(104, 116, 124), seg=255)),
    dict(type='PointRandomFlip', prob=0.5),
    dict(
        type='GenerateS2ITargets',
        sigma=6,
        min_area=50,
        dis_group=True),
    dict(type='PackP2SegInputs')
]
# Full-resolution inference with the image's points (no resize).
test_pipeline = [
    dict(type='LoadP2SegImageFromFile', backend_args=backend_args),
    dict(type='LoadP2SegAnnotations', with_seg=False),
    dict(
        type='PackP2SegInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]

train_dataloader = dict(
    batch_size=1,  # the release: 8 GPUs x 1 image
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=_base_.metainfo,
        ann_file='annotations/voc_2012_train_aug_points_centroid.json',
        # 'seg' is the semantic pseudo-map folder (BESTIE's WSSS_maps by
        # default); point it at any other pseudo-map folder. Never at the
        # ground truth except in configs named 'oracle'.
        data_prefix=dict(img='JPEGImages/', seg='WSSS_maps/'),
        seg_map_suffix='.png',
        filter_cfg=dict(filter_empty_gt=True),
        pipeline=train_pipeline,
        backend_args=backend_args))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=_base_.metainfo,
        ann_file='annotations/voc_2012_val_points_centroid.json',
        data_prefix=dict(img='JPEGImages/'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader

val_evaluator = dict(
    type='VOCInstanceMetric',
    ann_file=data_root + 'annotations/voc_2012_val_points_centroid.json',
    iou_thrs=[0.25, 0.5, 0.7, 0.75])
test_evaluator = val_evaluator
