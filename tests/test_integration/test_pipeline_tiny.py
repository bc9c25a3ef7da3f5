# Copyright (c) p2seg_mm contributors. All rights reserved.
"""tools/run_pipeline.py end to end on the fabricated data, a few iterations.

Stage A (MDM, 5 iterations) -> B (pseudo-masks of the training images and
the nearest-point baseline) -> C (the demo Mask R-CNN, 5 iterations, on
each pseudo-mask set) -> evaluation -> results table. Mostly plumbing is
checked (files exist, load, and every metric reaches the table); the only
number checked is the nearest-point baseline's pseudo mIoU, which is exact
on this data.
"""
import json
import os.path as osp

import pytest
from pycocotools.coco import COCO

from tests.tool_loader import REPO, load_tool

MDM_CONFIG = osp.join(REPO, 'configs', 'p2seg', 'p2seg_r18_demo-cells.py')
SECOND_CONFIG = osp.join(REPO, 'configs', 'p2seg_second_stage',
                         'mask-rcnn_r18_fpn_demo-cells-p2seg-pseudo.py')

run_pipeline = load_tool('tools/run_pipeline.py')

# Data of the demo configs swapped for the fabricated folder (a config
# file, not --cfg-options: the pipeline reads the data paths from it).
# Stage A keeps the demo augmentation, at a 64 x 64 crop.
MDM_TEMPLATE = '''
_base_ = [{base!r}]
data_root = {root!r}
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadP2SegAnnotations', with_seg=True, num_classes=2),
    dict(type='PointRandomResize', scale=(96, 96), ratio_range=(0.8, 1.2),
         keep_ratio=True),
    dict(type='PointRandomCrop', crop_size=(64, 64)),
    dict(type='PointPad', size=(64, 64),
         pad_val=dict(img=(104, 116, 124), seg=255)),
    dict(type='PointRandomFlip', prob=0.5),
    dict(type='GenerateS2ITargets', num_classes=2, sigma=6, min_area=50),
    dict(type='PackP2SegInputs')
]
train_dataloader = dict(
    batch_size=2, num_workers=0, persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
val_evaluator = [
    dict(type='CocoMetric', ann_file=data_root + 'annotations/val_gt.json',
         metric='segm'),
    dict(type='VOCInstanceMetric',
         ann_file=data_root + 'annotations/val_gt.json',
         iou_thrs=[0.25, 0.5, 0.7, 0.75])
]
test_evaluator = val_evaluator
# the MDM's own held-out decoding walks (as the demo config's)
model = dict(test_cfg=dict(use_i2s=True))
'''
SECOND_TEMPLATE = '''
_base_ = [{base!r}]
data_root = {root!r}
image_scale = (128, 128)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=image_scale, keep_ratio=True),
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
    num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(
    num_workers=0, persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = [
    dict(type='CocoMetric', ann_file=data_root + 'annotations/val_gt.json',
         metric='segm'),
    dict(type='VOCInstanceMetric',
         ann_file=data_root + 'annotations/val_gt.json',
         iou_thrs=[0.25, 0.5, 0.7, 0.75])
]
test_evaluator = val_evaluator
'''
# 5 iterations; no validation (the train loop validates at its last
# iteration; tools/test.py evaluates stage C anyway).
SHORT = [
    'train_cfg.max_iters=5', 'default_hooks.checkpoint.interval=5',
    'val_cfg=None', 'val_dataloader=None', 'val_evaluator=None'
]
# Cap the detections of the barely trained Mask R-CNN.
SECOND_SHORT = SHORT + ['model.test_cfg.rcnn.max_per_img=20']


def _table_rows(table):
    """``{row name: [float, ...]}`` of the numeric rows of the tables of
    results.md (separated by blank lines, each with a 2-line header)."""
    rows = {}
    for block in table.strip().split('\n\n'):
        for line in block.strip().splitlines()[2:]:
            cells = [c.strip() for c in line.strip().strip('|').split('|')]
            if all(c != '-' for c in cells[1:]):
                rows[cells[0]] = [float(c) for c in cells[1:]]
    return rows


# 2 to 3.5 minutes on 2 busy CPU cores (six tool subprocesses).
@pytest.mark.slow
def test_run_pipeline_tiny(point_dataset, tmp_path):
    root = point_dataset['root'] + '/'
    mdm = tmp_path / 'mdm_tiny.py'
    mdm.write_text(MDM_TEMPLATE.format(base=MDM_CONFIG, root=root))
    second = tmp_path / 'second_tiny.py'
    second.write_text(SECOND_TEMPLATE.format(base=SECOND_CONFIG, root=root))
    work = tmp_path / 'work'
    out = run_pipeline.main([
        str(mdm),
        str(second), '--work-dir',
        str(work), '--train-gt', point_dataset['gt_json'], '--variants',
        'p2seg', 'nearest', '--overlays', '1', '--mdm-options', *SHORT,
        '--second-options', *SECOND_SHORT
    ])

    rows = _table_rows((work / 'results.md').read_text())
    for name in ('P2Seg pseudo-masks (ours)', 'nearest-point baseline'):
        # pseudo mIoU, mAP50, AP and six final metrics, all computed
        assert len(rows[name]) == 9, rows
        assert all(0 <= v <= 100 for v in rows[name]), rows[name]
    # the pseudo-map is the union of the masks and the points sit at the
    # blob centres: nearest-point assignment recovers the instances
    assert rows['nearest-point baseline'][0] >= 90
    assert set(out['final']) == {'p2seg', 'nearest'}

    points = COCO(point_dataset['points_json'])
    for variant in ('p2seg', 'nearest'):
        pseudo = COCO(out['pseudo'][variant])
        assert sorted(pseudo.getImgIds()) == sorted(points.getImgIds())
        # one pseudo-mask per annotated point
        assert len(pseudo.getAnnIds()) == len(points.getAnnIds())
        for ann in pseudo.loadAnns(pseudo.getAnnIds()):
            assert pseudo.annToMask(ann).shape == (64, 80)
        metrics_file = work / f'second_{variant}' / 'eval' / 'metrics.json'
        with open(metrics_file) as f:
            assert json.load(f) == out['final'][variant]
    assert (work / 'mdm' / 'DONE').is_file()
    # the MDM's own inference on the held-out images, with the config's
    # test-time decoding (MDM_TEMPLATE inherits the demo's: I2S, PAMR and
    # the geodesic split)
    with open(work / 'mdm_eval' / 'metrics.json') as f:
        assert json.load(f) == out['mdm_test']
    # the demo config's decoding (pipeline_stages.test_decoding)
    label = 'test-time I2S on, PAMR, geodesic split'
    assert len(rows[label]) == 6, rows
    assert all(0 <= v <= 100 for v in rows[label])
