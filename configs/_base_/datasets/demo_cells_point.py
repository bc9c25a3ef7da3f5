# Copyright (c) p2seg_mm contributors. All rights reserved.
# Offline demo: microscopy cells (E. coli, HeLa nuclei) with one point per
# cell and a semantic pseudo-map per image, made by the demo converter.
# Same augmentation as the release, scaled to the smaller demo crops.
_base_ = './demo_cells_classes.py'  # metainfo (the 2 classes), num_classes
custom_imports = dict(imports=['p2seg_mm'], allow_failed_imports=False)

dataset_type = 'CocoPointDataset'
data_root = 'data/demo_cells/'
backend_args = None

# Release augmentation (docs/method.md §3.1) at demo size: photometric
# distortion (no channel swap, clipped to [0, 255]: not mmdet's), long side
# 512 x U(0.7, 1.3), 256 x 256 crop, flip.
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
        scale=(512, 512),
        ratio_range=(0.7, 1.3),
        keep_ratio=True),
    # min_points=1: E. coli cells are few and small; a crop without any
    # point would often hold no E. coli pixel at all.
    dict(type='PointRandomCrop', crop_size=(256, 256), min_points=1),
    # The image is BGR here: ImageNet mean x 255 in BGR order, so padded
    # pixels normalise to ~0. Padded pseudo-map pixels are ignored (255).
    dict(
        type='PointPad',
        size=(256, 256),
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
    batch_size=4,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        metainfo=_base_.metainfo,
        ann_file='annotations/train_points.json',
        # 'seg' is the semantic pseudo-map folder (configurable).
        data_prefix=dict(img='images/', seg='pseudo_sem/'),
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
        ann_file='annotations/val_points.json',
        data_prefix=dict(img='images/'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader

# Inference needs the points (val_points.json); scoring needs the masks,
# which only the evaluation json (val_gt.json, same ids) carries.
val_evaluator = [
    dict(
        type='CocoMetric',
        ann_file=data_root + 'annotations/val_gt.json',
        metric='segm',
        format_only=False,
        backend_args=backend_args),
    dict(
        type='VOCInstanceMetric',
        ann_file=data_root + 'annotations/val_gt.json',
        iou_thrs=[0.25, 0.5, 0.7, 0.75])
]
test_evaluator = val_evaluator
