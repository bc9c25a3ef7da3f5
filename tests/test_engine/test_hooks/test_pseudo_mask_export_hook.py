# Copyright (c) p2seg_mm contributors. All rights reserved.
import json
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from pycocotools.coco import COCO

from p2seg_mm.engine.hooks.pseudo_mask_export_hook import \
    PseudoMaskExportHook
from p2seg_mm.evaluation.metrics.pseudo_mask_dumper import (
    PseudoMaskDumper, load_done_image_ids)
from tests.export_helpers import (check_json, expected_squares, fake_runner,
                                  runner)  # noqa: F401 (fixture)


def test_export_after_train(runner):
    hook = PseudoMaskExportHook(
        out_file='pseudo.json',
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadP2SegAnnotations', with_seg=False),
            dict(type='PackP2SegInputs')
        ])
    hook.after_train(runner)
    out_file = osp.join(runner.work_dir, 'pseudo.json')
    coco = check_json(out_file)
    assert len(coco.dataset['annotations']) == 4
    assert runner.model.training  # restored
    assert all(not training and not grad
               for training, grad, _ in runner.model.calls)
    assert sorted(i for *_, ids in runner.model.calls for i in ids) == [
        1, 2, 3]


def test_export_resumes_from_the_sidecar(runner, tmp_path):
    out_file = str(tmp_path / 'pseudo.json')
    # an interrupted export that had done image 2
    crashed = PseudoMaskDumper(out_file=out_file,
                               ann_file=str(tmp_path / 'train.json'))
    crashed.dataset_meta = dict(classes=('cat', 'dog'))
    mask = torch.from_numpy(np.stack(expected_squares(2)))
    crashed.process({}, [dict(img_id=2, pred_instances=dict(
        masks=mask, labels=torch.tensor([0]), scores=torch.tensor([.5])))])
    assert load_done_image_ids(out_file) == {2}

    hook = PseudoMaskExportHook(out_file=out_file)  # default pipeline
    hook.after_train(runner)
    assert sorted(i for *_, ids in runner.model.calls for i in ids) == [1, 3]
    check_json(out_file)
    assert load_done_image_ids(out_file) == set()


def test_interval_export_and_final_copy(runner):
    hook = PseudoMaskExportHook(out_file='pseudo.json', interval=2)
    runner.iter = 0
    hook.after_train_iter(runner, 0)
    assert not runner.model.calls
    runner.iter = 1
    hook.after_train_iter(runner, 1)
    check_json(osp.join(runner.work_dir, 'pseudo_iter2.json'))
    runner.iter = 2  # training ended right after the export
    hook.after_train(runner)
    assert len(runner.model.calls) == 3  # not predicted again
    check_json(osp.join(runner.work_dir, 'pseudo.json'))
    with pytest.raises(ValueError, match='interval'):
        PseudoMaskExportHook(interval=0)


def test_export_with_the_real_p2seg_model(tmp_path):
    """Integration: the shrunk demo P2Seg model, one mask per point."""
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    repo = osp.join(osp.dirname(__file__), '..', '..', '..')
    cfg = Config.fromfile(
        osp.join(repo, 'configs', '_base_', 'models', 'p2seg_r50.py'))
    cfg.model.backbone.update(depth=18, base_channels=16, init_cfg=None)
    cfg.model.neck.update(in_channels=[16, 32, 64, 128], channels=16,
                          aspp_channels=16, proj_channels=(8, 8, 8))
    for head in ('semantic_head', 'center_offset_head'):
        cfg.model[head].update(
            num_classes=2, in_channels=16, feat_channels=16)
    cfg.model.affinity_head.update(in_channels=16, embed_dims=16)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()

    sizes = {1: (37, 45), 2: (40, 33)}
    points = {1: [[5.5, 6.5], [30.5, 20.5]], 2: [[10.5, 30.5]]}
    images, anns = [], []
    for img_id, (h, w) in sizes.items():
        cv2.imwrite(str(tmp_path / f'{img_id}.png'),
                    np.random.default_rng(img_id).integers(
                        0, 255, (h, w, 3), dtype=np.uint8))
        images.append(dict(id=img_id, file_name=f'{img_id}.png', height=h,
                           width=w))
        for k, point in enumerate(points[img_id]):
            anns.append(dict(id=len(anns) + 1, image_id=img_id, point=point,
                             category_id=k % 2 + 1))
    (tmp_path / 'train.json').write_text(json.dumps(dict(
        images=images, annotations=anns,
        categories=[dict(id=1, name='a'), dict(id=2, name='b')])))
    runner = fake_runner(
        model,
        Config(dict(train_dataloader=dict(num_workers=0, dataset=dict(
            type='CocoPointDataset',
            ann_file=str(tmp_path / 'train.json'),
            data_prefix=dict(img=str(tmp_path)),
            metainfo=dict(classes=('a', 'b')),
            pipeline=[])))), str(tmp_path / 'work'),
        'test_pseudo_export_hook_real')
    init_default_scope('mmdet')
    metrics = PseudoMaskExportHook().export(
        runner, str(tmp_path / 'pseudo.json'), resume=True)
    assert model.training
    assert metrics['pseudo/num_annotations'] + \
        metrics['pseudo/num_empty_dropped'] == 3
    coco = COCO(str(tmp_path / 'pseudo.json'))
    for ann in coco.dataset['annotations']:
        h, w = sizes[ann['image_id']]
        assert coco.annToMask(ann).shape == (h, w)
        assert ann['category_id'] in (1, 2) and 0 <= ann['score'] <= 1
