# Copyright (c) p2seg_mm contributors. All rights reserved.
# COCO 2017 with one point per instance (the centre of its box, as the
# release) and a semantic pseudo-map per image (docs/method.md §1.3, §3.1).
custom_imports = dict(imports=['p2seg_mm'], allow_failed_imports=False)

# The 80 class names come from CocoDataset.METAINFO (CocoPointDataset
# inherits it); leaves size their heads with this count (e.g.
# semantic_head=dict(num_classes=_base_.num_classes)).
num_classes = 80

dataset_type = 'CocoPointDataset'
data_root = 'data/coco/'
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
        ann_file='annotations/instances_train2017_points_box_center.json',
        # 'seg' is the semantic pseudo-map folder (configurable). Never
        # the ground truth except in configs named 'oracle'.
        data_prefix=dict(img='train2017/', seg='pseudo_sem/train2017/'),
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
        # Inference uses the points, so the val json carries them too (and
        # the masks, for CocoMetric).
        ann_file='annotations/instances_val2017_points_box_center.json',
        data_prefix=dict(img='val2017/'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader

val_evaluator = dict(
    type='CocoMetric',
    ann_file=data_root +
    'annotations/instances_val2017_points_box_center.json',
    metric='segm',
    format_only=False,
    backend_args=backend_args)
test_evaluator = val_evaluator
