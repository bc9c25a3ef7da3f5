# Copyright (c) p2seg_mm contributors. All rights reserved.
"""tools/infer.py: arguments, COCO output, a run end to end."""
import importlib.util
import json
import os.path as osp

import numpy as np
import pytest

from p2seg_mm.apis.inference import instances_to_coco

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
_spec = importlib.util.spec_from_file_location(
    'p2seg_tools_infer', osp.join(REPO_ROOT, 'tools', 'infer.py'))
infer = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(infer)

# Shrunk P2Seg (as the demo config) with the design's test pipeline.
TINY_P2SEG = '''
_base_ = ['{}']
custom_imports = dict(imports=['p2seg_mm'], allow_failed_imports=False)
model = dict(
    backbone=dict(depth=18, base_channels=16, init_cfg=None),
    neck=dict(in_channels=[16, 32, 64, 128], channels=32, aspp_channels=32,
              proj_channels=(16, 8, 8), norm_cfg=dict(type='BN')),
    semantic_head=dict(num_classes=2, in_channels=32, feat_channels=32),
    center_offset_head=dict(num_classes=2, in_channels=32, feat_channels=32),
    affinity_head=dict(in_channels=32, embed_dims=16))
test_dataloader = dict(dataset=dict(
    metainfo=dict(classes=('not', 'used')),
    pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='LoadP2SegAnnotations', with_seg=True),
        dict(type='PackP2SegInputs'),
    ]))
'''


def write(path, text):
    path.write_text(text)
    return str(path)


def test_parse_args_and_gather_points(tmp_path):
    image = tmp_path / 'img.png'
    image.write_bytes(b'')
    args = infer.parse_args([
        'c.py', 'm.pth',
        str(image), '--out-dir', 'out', '--point', '1', '2', 'ecoli',
        '--point', '3', '4', '1', '--cfg-options', 'model.test_cfg.k=2'
    ])
    assert args.device == 'cpu' and args.out_json == 'p2seg_predictions.json'
    assert args.cfg_options == {'model.test_cfg.k': 2}
    assert infer.gather_points(args) == {
        'img.png': [(1.0, 2.0, 'ecoli'), (3.0, 4.0, '1')]
    }
    points_file = write(tmp_path / 'p.csv', 'img.png,1,2,0\n')
    args = infer.parse_args(
        ['c.py', 'm.pth',
         str(tmp_path), '--out-dir', 'o', '--points', points_file])
    assert infer.gather_points(args) == {'img.png': [(1.0, 2.0, '0')]}


@pytest.mark.parametrize('extra', [
    [],
    ['--points', 'p.json', '--point', '1', '2', 'c'],
    ['--point', '1', '2'],
])
def test_parse_args_errors(tmp_path, extra):
    image = tmp_path / 'img.png'
    image.write_bytes(b'')
    with pytest.raises(SystemExit):
        infer.parse_args(['c', 'm', str(image), '--out-dir', 'o'] + extra)


def test_point_needs_single_image(tmp_path):
    with pytest.raises(SystemExit):
        infer.parse_args([
            'c', 'm',
            str(tmp_path), '--out-dir', 'o', '--point', '1', '2', 'c'
        ])


def test_instances_to_coco():
    import torch
    from mmengine.structures import InstanceData
    from pycocotools import mask as mask_utils
    masks = torch.zeros(2, 6, 8, dtype=torch.bool)
    masks[0, 1:3, 2:5] = True
    masks[1, 4:6, 0:8] = True
    pred = InstanceData(
        masks=masks,
        labels=torch.tensor([1, 0]),
        scores=torch.tensor([0.9, 0.4]),
        bboxes=torch.zeros(2, 4))
    xy = np.array([[3.5, 1.5], [0.5, 4.5]], dtype=np.float32)
    anns = instances_to_coco(pred, img_id=7, first_ann_id=3, xy=xy)
    assert [a['id'] for a in anns] == [3, 4]
    assert [a['category_id'] for a in anns] == [2, 1]
    assert anns[0]['bbox'] == [2.0, 1.0, 3.0, 2.0]
    assert anns[1]['area'] == 16.0 and anns[1]['point'] == [0.5, 4.5]
    assert anns[0]['score'] == pytest.approx(0.9)
    json.dumps(anns)  # serialisable
    decoded = mask_utils.decode(anns[0]['segmentation'])
    np.testing.assert_array_equal(decoded.astype(bool), masks[0].numpy())


def test_infer_end_to_end(tmp_path):
    """Random-weight demo P2Seg: one mask per point, json and overlay."""
    import cv2
    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from pycocotools.coco import COCO

    import p2seg_mm  # noqa: F401
    from mmdet.registry import MODELS

    # The modules the tiny config uses (registered here even where a
    # subpackage __init__ does not import them).
    for module in ('datasets.transforms.loading',
                   'datasets.transforms.formatting',
                   'models.data_preprocessors.data_preprocessor',
                   'models.necks.deeplab_decoder',
                   'models.dense_heads.semantic_head',
                   'models.dense_heads.center_offset_head',
                   'models.dense_heads.affinity_head',
                   'models.detectors.p2seg'):
        importlib.import_module(f'p2seg_mm.{module}')
    model_base = osp.join(REPO_ROOT, 'configs', '_base_', 'models',
                          'p2seg_r50.py')
    config = write(tmp_path / 'tiny_p2seg.py', TINY_P2SEG.format(model_base))
    init_default_scope('mmdet')
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(config).model)
    ckpt = tmp_path / 'model.pth'
    torch.save(
        dict(
            state_dict=model.state_dict(),
            meta=dict(dataset_meta=dict(classes=('ecoli', 'hela_nucleus')))),
        ckpt)
    folder = tmp_path / 'imgs'
    folder.mkdir()
    image = np.zeros((40, 56, 3), dtype=np.uint8)
    image[5:20, 5:25] = 200
    cv2.imwrite(str(folder / 'a.png'), image)
    cv2.imwrite(str(folder / 'b.png'), image[:32])
    points = write(
        tmp_path / 'points.json',
        json.dumps({
            'a.png': [[10.5, 10.5, 'ecoli'], [40.5, 30.5, 1]],
            'b.png': [[3.5, 3.5, 'hela_nucleus']]
        }))
    out_dir = tmp_path / 'out'
    coco = infer.main([
        config,
        str(ckpt),
        str(folder), '--points', points, '--out-dir',
        str(out_dir)
    ])
    assert [c['name'] for c in coco['categories']] == [
        'ecoli', 'hela_nucleus'
    ]
    api = COCO(str(out_dir / 'p2seg_predictions.json'))
    assert len(api.getImgIds()) == 2 and len(api.getAnnIds()) == 3
    anns = api.loadAnns(api.getAnnIds(imgIds=[0]))
    assert [a['category_id'] for a in anns] == [1, 2]
    assert [a['point'] for a in anns] == [[10.5, 10.5], [40.5, 30.5]]
    assert api.annToMask(anns[0]).shape == (40, 56)
    for stem, shape in (('a', (40, 56, 3)), ('b', (32, 56, 3))):
        overlay = cv2.imread(str(out_dir / f'{stem}_overlay.png'))
        assert overlay.shape == shape

    with pytest.raises(ValueError, match='unknown class .dog.*ecoli'):
        infer.main([
            config,
            str(ckpt),
            str(folder / 'a.png'), '--point', '1', '1', 'dog', '--out-dir',
            str(out_dir)
        ])
    with pytest.raises(ValueError, match=r'image b.png, point #0 .*outside'):
        infer.main([
            config,
            str(ckpt),
            str(folder / 'b.png'), '--point', '1', '35.5', '0', '--out-dir',
            str(out_dir)
        ])
