# Copyright (c) p2seg_mm contributors. All rights reserved.
"""End to end: tools/export_pseudo_masks.py with a fake point model."""
import json

import cv2
import numpy as np
import pytest
import torch
from pycocotools.coco import COCO

from mmdet.registry import MODELS
from tests.export_helpers import FakePointModel
from tests.tool_loader import load_tool
from p2seg_mm.evaluation.metrics.pseudo_mask_dumper import (
    PseudoMaskDumper, load_done_image_ids)

SIZES = {1: (12, 16), 2: (10, 9)}
POINTS = {1: [[2.5, 3.5], [10.5, 8.5]], 2: [[4.5, 4.5]]}
PREDICTED = []


@MODELS.register_module(name='ExportToolTestModel', force=True)
class ExportToolTestModel(FakePointModel):
    """One 3x3 square per given point; records the predicted image ids."""

    def forward(self, inputs, data_samples=None, mode='tensor'):
        PREDICTED.extend(s.img_id for s in data_samples)
        return super().forward(inputs, data_samples, mode)


@pytest.fixture
def setup(tmp_path):
    images, anns = [], []
    for img_id, (h, w) in SIZES.items():
        cv2.imwrite(str(tmp_path / f'{img_id}.png'),
                    np.full((h, w, 3), 50, np.uint8))
        images.append(dict(id=img_id, file_name=f'{img_id}.png', height=h,
                           width=w))
        for point in POINTS[img_id]:
            anns.append(dict(id=len(anns) + 1, image_id=img_id, point=point,
                             category_id=7))
    (tmp_path / 'train.json').write_text(json.dumps(dict(
        images=images, annotations=anns,
        categories=[dict(id=7, name='cat')])))
    cfg_file = tmp_path / 'cfg.py'
    cfg_file.write_text(f"""
default_scope = 'mmdet'
model = dict(type='ExportToolTestModel')
train_dataloader = dict(
    num_workers=0,
    dataset=dict(
        type='CocoPointDataset',
        data_root={str(tmp_path)!r},
        ann_file='train.json',
        data_prefix=dict(img={str(tmp_path)!r}),
        metainfo=dict(classes=('cat', )),
        pipeline=[]))
""")
    ckpt = tmp_path / 'model.pth'
    torch.save(dict(state_dict=ExportToolTestModel().state_dict()),
               str(ckpt))
    module = load_tool('tools/export_pseudo_masks.py')
    PREDICTED.clear()
    argv = [str(cfg_file), str(ckpt), '--work-dir', str(tmp_path / 'work')]
    return module, argv, tmp_path


def check(out_file):
    coco = COCO(out_file)
    assert sorted(coco.getImgIds()) == [1, 2]
    assert [len(coco.getAnnIds(imgIds=[i])) for i in (1, 2)] == [2, 1]
    assert {a['category_id'] for a in coco.dataset['annotations']} == {7}
    ann = coco.loadAnns(coco.getAnnIds(imgIds=[2]))[0]
    assert ann['bbox'] == [3.0, 3.0, 3.0, 3.0]


def test_export_tool_end_to_end_and_resume(setup):
    module, argv, tmp_path = setup
    out_file = str(tmp_path / 'out' / 'pseudo.json')
    module.main(argv + ['--out', out_file])
    check(out_file)
    assert sorted(PREDICTED) == [1, 2]

    # interrupted export with image 1 done: only image 2 is predicted
    PREDICTED.clear()
    out_file = str(tmp_path / 'resumed.json')
    dumper = PseudoMaskDumper(out_file=out_file,
                              ann_file=str(tmp_path / 'train.json'))
    dumper.dataset_meta = dict(classes=('cat', ))
    masks = torch.zeros((2, 12, 16), dtype=torch.bool)
    masks[0, 2:5, 1:4] = True
    masks[1, 7:10, 9:12] = True
    dumper.process({}, [dict(img_id=1, pred_instances=dict(
        masks=masks, labels=torch.tensor([0, 0]),
        scores=torch.tensor([.5, .5])))])
    module.main(argv + ['--out', out_file])
    assert PREDICTED == [2]
    check(out_file)
    assert load_done_image_ids(out_file) == set()


def test_export_tool_all_done_only_merges(setup):
    module, argv, tmp_path = setup
    out_file = str(tmp_path / 'pseudo.json')
    dumper = PseudoMaskDumper(out_file=out_file,
                              ann_file=str(tmp_path / 'train.json'))
    dumper.dataset_meta = dict(classes=('cat', ))
    for img_id, (h, w) in SIZES.items():
        masks = torch.zeros((len(POINTS[img_id]), h, w), dtype=torch.bool)
        for k, (x, y) in enumerate(np.array(POINTS[img_id]).astype(int)):
            masks[k, y - 1:y + 2, x - 1:x + 2] = True
        dumper.process({}, [dict(img_id=img_id, pred_instances=dict(
            masks=masks, labels=torch.zeros(len(masks), dtype=torch.long),
            scores=torch.ones(len(masks))))])
    module.main(argv + ['--out', out_file])
    assert PREDICTED == []
    check(out_file)
    with pytest.raises(SystemExit):
        module.main(argv + ['--out', str(tmp_path / 'x.pkl')])
