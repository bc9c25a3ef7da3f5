# Copyright (c) p2seg_mm contributors. All rights reserved.
"""tools/infer.py: arguments, COCO output, a run end to end."""
import importlib.util
import json
import logging
import os.path as osp

import numpy as np
import pytest

from p2seg_mm.apis.inference import instances_to_coco

from tests.tool_loader import REPO as REPO_ROOT
from tests.tool_loader import load_tool

infer = load_tool('tools/infer.py')

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
    ['--points', 'p.json', '--point', '1', '2', 'c'],
    ['--percentiles', '1'],
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



def test_instances_to_coco_uses_the_category_rule():
    """category_id is the inverse of category_to_label: label 1 of
    categories with ids [3, 7] is written as 7, not 2."""
    import torch
    from mmengine.structures import InstanceData
    masks = torch.zeros(2, 4, 4, dtype=torch.bool)
    masks[:, 1, 1] = True
    pred = InstanceData(
        masks=masks,
        labels=torch.tensor([1, 0]),
        scores=torch.tensor([0.9, 0.4]))
    xy = np.zeros((2, 2), np.float32)
    cats = [dict(id=3, name='a'), dict(id=7, name='b')]
    anns = instances_to_coco(pred, 0, 1, xy, cats, ('a', 'b'))
    assert [a['category_id'] for a in anns] == [7, 3]
    # class names alone: category_id = label + 1 (tools/infer.py's json)
    anns = instances_to_coco(pred, 0, 1, xy, class_names=('a', 'b'))
    assert [a['category_id'] for a in anns] == [2, 1]
    # non-class json categories are skipped, the class order is checked
    cats = [dict(id=0, name='_background_')] + cats
    anns = instances_to_coco(pred, 0, 1, xy, cats, ('a', 'b'))
    assert [a['category_id'] for a in anns] == [7, 3]
    with pytest.raises(ValueError, match='order'):
        instances_to_coco(pred, 0, 1, xy, cats, ('b', 'a'))
    with pytest.raises(ValueError, match='label 1 has no category'):
        instances_to_coco(pred, 0, 1, xy, [dict(id=3, name='a')], ('a', ))

def _tiny_model(tmp_path):
    """(config, checkpoint) of a random-weight shrunk P2Seg."""
    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

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
    return config, ckpt


def test_infer_end_to_end(tmp_path):
    """Random-weight demo P2Seg: one mask per point, json and overlay."""
    import cv2
    from pycocotools.coco import COCO
    config, ckpt = _tiny_model(tmp_path)
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


def test_infer_truncated_jpeg_names_file(tmp_path):
    """Issue 10, fault 11: the error names the file (was inside OpenCV)."""
    import cv2
    config, ckpt = _tiny_model(tmp_path)
    path = tmp_path / 'full.jpg'
    cv2.imwrite(str(path), np.random.RandomState(0).randint(
        0, 256, (48, 48, 3)).astype(np.uint8))
    cut = tmp_path / 'cut.jpg'
    cut.write_bytes(path.read_bytes()[:300])
    with pytest.raises(ValueError, match='cut.jpg is truncated or corrupt'):
        infer.main([config, str(ckpt), str(cut), '--point', '1', '1', '0',
                    '--out-dir', str(tmp_path / 'out')])


def test_infer_16bit_equals_its_8bit_conversion(tmp_path):
    """The issue's 16-bit image (values 0..235) gives the masks of the same
    image converted by hand (percentile stretch) to an 8-bit PNG."""
    import cv2
    config, ckpt = _tiny_model(tmp_path)
    values = np.full((40, 56), 20, np.uint16)
    values[5:20, 5:25] = 235
    values[25:35, 30:50] = 120
    lo, hi = np.percentile(values.astype(np.float64), [1.0, 99.8])
    by_hand = np.round(np.clip((values - lo) / (hi - lo), 0, 1) * 255)
    folder = tmp_path / 'imgs'
    folder.mkdir()
    cv2.imwrite(str(folder / 'a16.png'), values)
    cv2.imwrite(str(folder / 'a8.png'), by_hand.astype(np.uint8))
    masks = {}
    for name in ('a16.png', 'a8.png'):
        coco = infer.main([
            config, str(ckpt), str(folder / name), '--point', '10.5', '10.5',
            'ecoli', '--point', '40.5', '30.5', '1', '--out-dir',
            str(tmp_path / name), '--no-overlay'
        ])
        masks[name] = [a['segmentation'] for a in coco['annotations']]
    assert masks['a16.png'] == masks['a8.png']


def test_infer_without_points(tmp_path):
    """Point-free decoding only with a trained centre head."""
    import cv2
    config, ckpt = _tiny_model(tmp_path)
    folder = tmp_path / 'imgs'
    folder.mkdir()
    image = np.zeros((40, 56, 3), dtype=np.uint8)
    image[5:20, 5:25] = 200
    cv2.imwrite(str(folder / 'a.png'), image)
    cv2.imwrite(str(folder / 'b.jpg'), image)
    args = [config, str(ckpt), str(folder), '--out-dir', str(tmp_path / 'o')]
    with pytest.raises(ValueError, match=r'2 image\(s\) have no points '
                       r'\(a.png, b.jpg\).*loss_center_weight=0'):
        infer.main(args)
    coco = infer.main(args + [
        '--cfg-options', 'model.center_offset_head.loss_center_weight=1.0'
    ])
    assert [im['file_name'] for im in coco['images']] == ['a.png', 'b.jpg']
    assert all('point' not in a for a in coco['annotations'])
    assert (tmp_path / 'o' / 'p2seg_predictions.json').is_file()


def test_infer_reads_imported_coco_points(tmp_path):
    """import_points.py's COCO json is a points file of tools/infer.py."""
    import cv2
    config, ckpt = _tiny_model(tmp_path)
    folder = tmp_path / 'imgs'
    folder.mkdir()
    cv2.imwrite(str(folder / 'a.png'), np.full((40, 56, 3), 90, np.uint8))
    points = write(
        tmp_path / 'points.json',
        json.dumps(
            dict(images=[dict(id=4, file_name='a.png', height=40, width=56)],
                 categories=[dict(id=1, name='hela_nucleus')],
                 annotations=[
                     dict(id=1, image_id=4, category_id=1,
                          point=[12.5, 7.5], iscrowd=0),
                     dict(id=2, image_id=4, category_id=1,
                          point=[2.5, 2.5], iscrowd=1)
                 ])))
    coco = infer.main([config, str(ckpt), str(folder), '--points', points,
                       '--out-dir', str(tmp_path / 'o'), '--no-overlay'])
    assert [(a['point'], a['category_id']) for a in coco['annotations']] == [
        ([12.5, 7.5], 2)]
    # the json's image id is kept: the output scores against that dataset
    assert [im['id'] for im in coco['images']] == [4]
    assert [a['image_id'] for a in coco['annotations']] == [4]


def test_inference_decodes_the_network_map_unless_told(tmp_path):
    """A config whose stage-B export groups the pseudo-map
    (semantic_source='pseudo_map') still infers new images from the
    network's map; an explicit option keeps the pseudo-map source."""
    from p2seg_mm.apis.inference import init_point_segmentor
    config, ckpt = _tiny_model(tmp_path)
    text = open(config).read()
    write(tmp_path / 'map_cfg.py',
          text + "\nmodel.update(test_cfg=dict(semantic_source="
          "'pseudo_map'))\n")
    from mmengine.config import Config
    cfg = Config.fromfile(str(tmp_path / 'map_cfg.py'))
    assert cfg.model.test_cfg.semantic_source == 'pseudo_map'
    model, _, _ = init_point_segmentor(str(tmp_path / 'map_cfg.py'),
                                       str(ckpt))
    assert model.test_cfg['semantic_source'] == 'network'
    model, _, _ = init_point_segmentor(
        str(tmp_path / 'map_cfg.py'), str(ckpt),
        cfg_options={'model.test_cfg.semantic_source': 'pseudo_map'})
    assert model.test_cfg['semantic_source'] == 'pseudo_map'


def test_infer_checks_a_test_cfg_mode_override(tmp_path, monkeypatch):
    """New-user trial: ``--cfg-options model.test_cfg.mode=...`` was
    overwritten by the tool without a word, a misspelt mode too. A mode
    the grouping head does not know stops the tool before the model is
    built; a valid one is logged as not used (the points decide)."""
    import cv2

    from p2seg_mm.apis import inference
    config, ckpt = _tiny_model(tmp_path)
    image = tmp_path / 'a.png'
    cv2.imwrite(str(image), np.zeros((24, 32, 3), np.uint8))
    argv = [config, str(ckpt), str(image), '--point', '5.5', '5.5', '0',
            '--out-dir', str(tmp_path / 'o'), '--no-overlay',
            '--cfg-options']
    built = []
    monkeypatch.setattr(inference.MODELS, 'build',
                        lambda *a, **k: built.append(a) or 1 / 0)
    with pytest.raises(ValueError) as err:
        infer.main(argv + ['model.test_cfg.mode=centre'])
    msg = str(err.value)
    assert msg.startswith("--cfg-options model.test_cfg.mode='centre': "
                          "test_cfg.mode must be 'point' or 'center', got "
                          "'centre'.")
    assert 'Fix: drop the option' in msg and not built
    assert err.value.__cause__ is None and err.value.__suppress_context__
    monkeypatch.undo()
    logs = []
    monkeypatch.setattr(inference, 'print_log',
                        lambda msg, **k: logs.append((msg, k['level'])))
    coco = infer.main(argv + ['model.test_cfg.mode=center'])
    assert [a['point'] for a in coco['annotations']] == [[5.5, 5.5]]
    assert logs == [("--cfg-options model.test_cfg.mode='center' is not "
                     "used: tools/infer.py decodes an image with points in "
                     "'point' mode and an image without points in 'center' "
                     'mode. To decode an image point-free, give no points '
                     'for it.', logging.WARNING)]
    logs.clear()
    infer.main(argv + ['model.test_cfg.mode=point'])
    assert logs == []  # the mode used: nothing to warn about


def test_infer_warns_when_point_free_decoding_finds_nothing(
        tmp_path, monkeypatch):
    """New-user trial: an image in which point-free decoding found no
    instance got an empty result without a word. The warning goes through
    mmengine's logger and names the image and the fix."""
    import cv2

    from p2seg_mm.apis import inference
    config, ckpt = _tiny_model(tmp_path)
    folder = tmp_path / 'imgs'
    folder.mkdir()
    cv2.imwrite(str(folder / 'a.png'), np.zeros((24, 32, 3), np.uint8))
    logs = []
    monkeypatch.setattr(inference, 'print_log',
                        lambda msg, **k: logs.append((msg, k)),
                        raising=False)
    coco = infer.main([
        config, str(ckpt), str(folder), '--out-dir', str(tmp_path / 'o'),
        '--no-overlay', '--cfg-options',
        'model.center_offset_head.loss_center_weight=1.0',
        'model.test_cfg.center_threshold=1e9'  # no peak can pass
    ])
    assert coco['annotations'] == []
    assert len(logs) == 1, logs
    msg, kwargs = logs[0]
    assert kwargs == dict(logger='current', level=logging.WARNING)
    assert msg.startswith(f"{folder / 'a.png'}: point-free decoding "
                          "(test_cfg.mode='center') found no instance")
    assert 'center_threshold=1000000000.0' in msg
    assert 'Fix: give the points of this image' in msg
