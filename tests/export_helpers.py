# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Shared pieces of the pseudo-mask export tests: a fake point model that
predicts a 3x3 square per point, a tiny point dataset on disk, a runner
stand-in with what the export hook and loop read, and the expected json."""
import json
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.evaluator import Evaluator
from mmengine.logging import MMLogger
from mmengine.model import BaseModel
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmengine.structures import InstanceData
from pycocotools.coco import COCO

SIZES = {1: (12, 16), 2: (10, 9), 3: (9, 11)}
POINTS = {1: [[2.5, 3.5], [10.5, 8.5]], 2: [[4.5, 4.5]], 3: [[1.5, 7.5]]}


class FakePointModel(BaseModel):
    """predict: one 3x3 square mask (clipped) per given point, label of the
    point, score 0.5; records the mode and grad state of each call."""

    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(1, 1)
        self.calls = []

    def forward(self, inputs, data_samples=None, mode='tensor'):
        assert mode == 'predict'
        self.calls.append((self.training, torch.is_grad_enabled(),
                           [s.img_id for s in data_samples]))
        for s in data_samples:
            h, w = s.ori_shape
            points = s.gt_instances.points
            masks = torch.zeros((len(points), h, w), dtype=torch.bool)
            for k, (x, y) in enumerate(points.long().tolist()):
                masks[k, max(y - 1, 0):y + 2, max(x - 1, 0):x + 2] = True
            s.pred_instances = InstanceData(
                masks=masks,
                bboxes=torch.zeros((len(points), 4)),
                labels=s.gt_instances.labels,
                scores=torch.full((len(points), ), 0.5))
        return data_samples


@pytest.fixture
def runner(tmp_path):
    init_default_scope('mmdet')
    images, anns = [], []
    for img_id, (h, w) in SIZES.items():
        cv2.imwrite(str(tmp_path / f'{img_id}.png'),
                    np.full((h, w, 3), 60 * img_id, np.uint8))
        images.append(dict(id=img_id, file_name=f'{img_id}.png', height=h,
                           width=w))
        for k, point in enumerate(POINTS[img_id]):
            anns.append(dict(id=len(anns) + 1, image_id=img_id, point=point,
                             category_id=[7, 3][k % 2]))
    (tmp_path / 'train.json').write_text(json.dumps(dict(
        images=images, annotations=anns,
        categories=[dict(id=7, name='cat'), dict(id=3, name='dog')])))
    dataset = dict(
        type='CocoPointDataset',
        data_root=str(tmp_path),
        ann_file='train.json',
        data_prefix=dict(img=str(tmp_path)),
        metainfo=dict(classes=('cat', 'dog')),
        pipeline=[])
    cfg = Config(dict(train_dataloader=dict(dataset=dataset, num_workers=0)))
    model = FakePointModel()
    model.train()
    return fake_runner(model, cfg, str(tmp_path / 'work'),
                       'test_pseudo_export_hook')


def fake_runner(model, cfg, work_dir, name):
    """What the hook and its export loop (a TestLoop) read of a runner."""
    return SimpleNamespace(
        model=model,
        cfg=cfg,
        work_dir=work_dir,
        iter=0,
        logger=MMLogger.get_instance(name),
        build_dataloader=Runner.build_dataloader,
        build_evaluator=Evaluator,
        visualizer=SimpleNamespace(dataset_meta=None),
        seed=0,
        _randomness_cfg={})


def expected_squares(img_id):
    h, w = SIZES[img_id]
    out = []
    for x, y in np.array(POINTS[img_id]).astype(int):
        m = np.zeros((h, w), bool)
        m[max(y - 1, 0):y + 2, max(x - 1, 0):x + 2] = True
        out.append(m)
    return out


def check_json(out_file):
    coco = COCO(out_file)
    for img_id in SIZES:
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[img_id]))
        masks = [coco.annToMask(a).astype(bool) for a in anns]
        expected = expected_squares(img_id)
        assert len(masks) == len(expected)
        for m, e in zip(masks, expected):
            np.testing.assert_array_equal(m, e)
        assert [a['category_id'] for a in anns] == [7, 3][:len(anns)]
    return coco
