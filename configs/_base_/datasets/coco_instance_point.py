# Copyright (c) p2seg_mm contributors. All rights reserved.
# COCO 2017 with one point per instance (the centre of its box, as the
# release) and a semantic pseudo-map per image (docs/method.md §1.3);
# the release augmentation of p2seg_release_pipelines.py.
_base_ = './p2seg_release_pipelines.py'  # train_pipeline, test_pipeline
custom_imports = dict(imports=['p2seg_mm'], allow_failed_imports=False)

# The 80 class names come from CocoDataset.METAINFO (CocoPointDataset
# inherits it); leaves size their heads with this count (e.g.
# semantic_head=dict(num_classes=_base_.num_classes)).
num_classes = 80

dataset_type = 'CocoPointDataset'
data_root = 'data/coco/'

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
        # Inference uses the points, so the val json carries them too (and
        # the masks, for CocoMetric).
        ann_file='annotations/instances_val2017_points_box_center.json',
        data_prefix=dict(img='val2017/'),
        test_mode=True,
        pipeline=_base_.test_pipeline,
        backend_args=_base_.backend_args))
test_dataloader = val_dataloader

val_evaluator = dict(
    type='CocoMetric',
    ann_file=data_root +
    'annotations/instances_val2017_points_box_center.json',
    metric='segm',
    format_only=False,
    backend_args=_base_.backend_args)
test_evaluator = val_evaluator
