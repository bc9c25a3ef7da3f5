# Copyright (c) p2seg_mm contributors. All rights reserved.
# The release pipelines of the point datasets (VOC, COCO): inherited by
# voc_instance_point.py and coco_instance_point.py, whose dataloaders use
# _base_.train_pipeline and _base_.test_pipeline.
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
