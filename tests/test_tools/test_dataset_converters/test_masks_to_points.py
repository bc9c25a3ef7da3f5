# Copyright (c) p2seg_mm contributors. All rights reserved.
import json
import os
import runpy
import sys

import numpy as np
import pytest
from pycocotools.coco import COCO

from p2seg_mm.structures.mask_codec import ann_to_mask, encode_mask
from tests.tool_loader import add_tool_dir, tool_path

TOOL = 'tools/dataset_converters/masks_to_points.py'
add_tool_dir(TOOL)
from masks_to_points import (box_center_point,  # noqa: E402
                             centroid_point, convert_masks_to_points,
                             default_output_path, masks_to_points_file,
                             random_point)

H, W = 12, 16


def _square(r0, r1, c0, c1):
    m = np.zeros((H, W), bool)
    m[r0:r1, c0:c1] = True
    return m


def _coco():
    sq = _square(2, 5, 3, 6)  # rows 2..4, cols 3..5
    ring = _square(6, 12, 8, 14)
    ring[8:10, 10:12] = False  # hollow: centroid falls in the hole
    # uncompressed RLE (column-major runs starting with background)
    flat = ring.flatten(order='F').astype(np.uint8)
    counts, last, run = [], 0, 0
    for v in flat:
        if v != last:
            counts.append(run)
            run, last = 0, v
        run += 1
    counts.append(run)
    anns = [
        dict(
            id=1,
            image_id=1,
            category_id=1,
            iscrowd=0,
            area=9.0,
            bbox=[3, 2, 3, 3],
            segmentation=[[3, 2, 6, 2, 6, 5, 3, 5]]),
        dict(
            id=2,
            image_id=1,
            category_id=2,
            iscrowd=1,
            area=32.0,
            bbox=[8, 6, 6, 6],
            segmentation=dict(size=[H, W], counts=counts)),
        dict(
            id=3,
            image_id=1,
            category_id=1,
            iscrowd=0,
            area=9.0,
            bbox=[3, 2, 3, 3],
            segmentation=encode_mask(sq)),
        dict(
            id=4,
            image_id=1,
            category_id=1,
            iscrowd=0,
            area=0.0,
            bbox=[0, 0, 0, 0],
            segmentation=encode_mask(np.zeros((H, W), bool))),
    ]
    return dict(
        images=[dict(id=1, file_name='a.png', height=H, width=W)],
        annotations=anns,
        categories=[dict(id=1, name='a'),
                    dict(id=2, name='b')])


def test_ann_to_mask_formats_agree():
    coco = _coco()
    poly = ann_to_mask(coco['annotations'][0], H, W)
    rle = ann_to_mask(coco['annotations'][2], H, W)
    np.testing.assert_array_equal(poly, _square(2, 5, 3, 6))
    np.testing.assert_array_equal(rle, poly)
    ring = ann_to_mask(coco['annotations'][1], H, W)
    assert ring.sum() == 32 and not ring[8, 10] and ring[6, 8]
    bad = dict(id=9, segmentation=dict(size=[H + 1, W], counts='abc'))
    with pytest.raises(ValueError, match='annotation id 9'):
        ann_to_mask(bad, H, W)


def test_centroid_point_exact_and_snapped():
    assert centroid_point(_square(2, 5, 3, 6)) == (4.5, 3.5)
    ring = _square(6, 12, 8, 14)
    ring[7:11, 9:13] = False
    x, y = centroid_point(ring)
    assert ring[int(np.floor(y)), int(np.floor(x))]
    assert x % 1 == 0.5 and y % 1 == 0.5
    with pytest.raises(ValueError):
        centroid_point(np.zeros((3, 3), bool))


def test_random_point_seeded_inside():
    m = _square(0, 12, 0, 16)
    m[::2] = False
    a = [random_point(m, np.random.default_rng(0)) for _ in range(3)]
    b = [random_point(m, np.random.default_rng(0)) for _ in range(3)]
    assert a == b
    rng = np.random.default_rng(1)
    pts = [random_point(m, rng) for _ in range(20)]
    assert len(set(pts)) > 1
    for x, y in pts:
        assert m[int(y), int(x)] and x % 1 == 0.5


def test_box_center_point_clipped():
    assert box_center_point([2, 4, 4, 2], H, W) == (4.0, 5.0)
    assert box_center_point([14, 10, 6, 6], H, W) == (W - 0.5, H - 0.5)
    assert box_center_point([-8, -2, 4, 2], H, W) == (0.5, 0.5)


@pytest.mark.parametrize('mode', ['centroid', 'random', 'box_center'])
def test_convert_strips_masks_and_skips_empty(mode):
    coco = _coco()
    with pytest.warns(UserWarning, match='skipped 1'):
        out, skipped = convert_masks_to_points(coco, mode=mode, seed=3)
    assert skipped == 1
    assert [a['id'] for a in out['annotations']] == [1, 2, 3]
    for a in out['annotations']:
        assert 'segmentation' not in a and 'bbox' not in a
        assert 'area' in a and 'iscrowd' in a
        x, y = a['point']
        assert 0 <= x < W and 0 <= y < H
    if mode != 'box_center':
        for a in out['annotations']:
            m = ann_to_mask(coco['annotations'][a['id'] - 1], H, W)
            assert m[int(a['point'][1]), int(a['point'][0])]
    assert 'segmentation' in coco['annotations'][0]  # input untouched


def test_convert_keep_masks_strict_and_errors():
    coco = _coco()
    coco['annotations'] = coco['annotations'][:3]
    out, skipped = convert_masks_to_points(coco, keep_masks=True)
    assert skipped == 0
    assert all('segmentation' in a and 'bbox' in a for a in out['annotations'])
    assert out['annotations'][0]['point'] == [4.5, 3.5]
    with pytest.raises(ValueError, match='annotation id 4'):
        convert_masks_to_points(_coco(), strict=True)
    no_seg = _coco()
    del no_seg['annotations'][1]['segmentation']
    with pytest.raises(ValueError, match='annotation id 2 has no'):
        convert_masks_to_points(no_seg, mode='centroid')
    with pytest.raises(ValueError, match='mode'):
        convert_masks_to_points(_coco(), mode='middle')


def test_file_roundtrip_names_and_atomic(tmp_path):
    src = tmp_path / 'inst.json'
    src.write_text(json.dumps(_coco()))
    assert default_output_path(str(src), 'random',
                               7).endswith('inst_points_random_seed7.json')
    with pytest.warns(UserWarning):
        out = masks_to_points_file(str(src), mode='centroid', progress=False)
    assert out == str(tmp_path / 'inst_points_centroid.json')
    coco = COCO(out)
    assert len(coco.anns) == 3 and coco.anns[1]['point'] == [4.5, 3.5]
    assert sorted(
        os.listdir(tmp_path)) == ['inst.json', 'inst_points_centroid.json']
    with pytest.raises(FileNotFoundError, match='missing.json'):
        masks_to_points_file(str(tmp_path / 'missing.json'))


def test_cli(tmp_path, monkeypatch):
    src = tmp_path / 'inst.json'
    src.write_text(json.dumps(_coco()))
    tool = tool_path(TOOL)
    monkeypatch.setattr(
        sys, 'argv',
        [tool,
         str(src), '--mode', 'random', '--seed', '2', '--keep-masks'])
    with pytest.warns(UserWarning):
        runpy.run_path(tool, run_name='__main__')
    out = json.loads((tmp_path / 'inst_points_random_seed2.json').read_text())
    assert len(out['annotations']) == 3
    assert 'segmentation' in out['annotations'][0]


def test_empty_outputs_are_errors(tmp_path):
    """Issue #10 fault 12: a json with zero images wrote an empty json
    silently; any input that gives no point must stop with the reason."""
    src = tmp_path / 'empty.json'
    src.write_text(json.dumps(dict(images=[], annotations=[],
                                   categories=[dict(id=1, name='a')])))
    with pytest.raises(ValueError, match='no "images"') as err:
        masks_to_points_file(str(src), progress=False)
    assert str(src) in str(err.value)
    assert not (tmp_path / 'empty_points_centroid.json').exists()
    no_anns = _coco()
    no_anns['annotations'] = []
    with pytest.raises(ValueError, match='no annotation'):
        convert_masks_to_points(no_anns)
    all_empty = _coco()
    all_empty['annotations'] = all_empty['annotations'][3:]
    with pytest.warns(UserWarning), pytest.raises(ValueError,
                                                  match='all 1 annotations'):
        convert_masks_to_points(all_empty)


def test_duplicate_image_ids_are_errors():
    coco = _coco()
    coco['images'].append(dict(id=1, file_name='b.png', height=H, width=W))
    with pytest.raises(ValueError, match='image id 1 is used by 2'):
        convert_masks_to_points(coco)
