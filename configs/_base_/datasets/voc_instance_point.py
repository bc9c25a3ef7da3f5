# Copyright (c) p2seg_mm contributors. All rights reserved.
# PASCAL VOC 2012 (train_aug, 10,582 images) with one point per instance
# and a semantic pseudo-map per image (docs/method.md §1.3); the release
# augmentation of p2seg_release_pipelines.py.
_base_ = [
    './voc_classes.py',  # metainfo (the 20 classes), num_classes
    './p2seg_release_pipelines.py'  # train_pipeline, test_pipeline
]
custom_imports = dict(imports=['p2seg_mm'], allow_failed_imports=False)

dataset_type = 'CocoPointDataset'
data_root = 'data/voc/'

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
        pipeline=_base_.train_pipeline,
        backend_args=_base_.backend_args))
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
        pipeline=_base_.test_pipeline,
        backend_args=_base_.backend_args))
test_dataloader = val_dataloader

val_evaluator = dict(
    type='VOCInstanceMetric',
    ann_file=data_root + 'annotations/voc_2012_val_points_centroid.json',
    iou_thrs=[0.25, 0.5, 0.7, 0.75])
test_evaluator = val_evaluator
