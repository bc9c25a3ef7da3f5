# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Property-based tests (hypothesis) of the dataset parser, the point
importer and the point transforms (issue #10): on any input, either our own
clear error or a result whose points stay on their instances."""
import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from mmdet.registry import DATASETS
from p2seg_mm.datasets.transforms.geometric import (PointPad, PointRandomCrop,
                                                    PointRandomFlip)
from p2seg_mm.structures.mask_codec import encode_mask
from tests.tool_loader import load_tool

convert_masks_to_points = load_tool(
    'tools/dataset_converters/masks_to_points.py').convert_masks_to_points

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture])
FILES = ('a.png', 'b.png', 'c.png')
NAMES = ('cat', 'dog', 'cow')

# point values: in range, borders, out of range, non-finite, wrong types
coord = st.one_of(
    st.floats(0, 12), st.sampled_from([0.0, 4.0, 5.0, 8.0, -0.0]),
    st.floats(-5, 20), st.just(float('nan')), st.just(float('inf')),
    st.just('1'), st.none(), st.booleans())
point = st.one_of(
    st.lists(coord, min_size=2, max_size=2), st.lists(coord, max_size=3),
    st.none())


@st.composite
def coco_jsons(draw):
    """Mostly valid jsons with a few wild fields (repeated or dangling ids,
    zero sizes, bad points, categories out of order)."""
    wild = draw(st.lists(st.booleans(), min_size=6, max_size=6))
    n_img = draw(st.integers(0 if wild[0] else 1, 3))
    images = []
    for i in range(n_img):
        img_id = draw(st.integers(1, 3)) if wild[1] else i + 1
        height = draw(st.integers(0 if wild[2] else 1, 9))
        images.append(dict(id=img_id, file_name=FILES[i], height=height,
                           width=draw(st.integers(1, 9))))
    order = draw(st.permutations(NAMES))
    cat_ids = draw(st.lists(st.integers(0, 4), min_size=3, max_size=3,
                            unique=not wild[3]))
    categories = [dict(id=c, name=n) for c, n in zip(cat_ids, order)]
    classes = [n for n in order if draw(st.booleans())] or [order[0]]
    if wild[4]:
        classes = list(draw(st.permutations(classes)))
    anns = []
    for k in range(draw(st.integers(0, 5))):
        img = draw(st.sampled_from(images)) if images else dict(
            id=1, width=1, height=1)
        ann = dict(id=draw(st.integers(1, 6)) if wild[5] else k + 1,
                   image_id=img['id'] if not wild[1] else draw(
                       st.integers(1, 4)),
                   category_id=draw(st.sampled_from(cat_ids)),
                   iscrowd=draw(st.sampled_from([0, 1])))
        if draw(st.integers(0, 3)):  # mostly a point inside
            ann['point'] = [
                draw(st.floats(0, max(img['width'], 1), exclude_max=True)),
                draw(st.floats(0, max(img['height'], 1), exclude_max=True))
            ]
        else:
            p = draw(point)
            if p is not None:
                ann['point'] = p
        anns.append(ann)
    return dict(images=images, annotations=anns,
                categories=categories), tuple(classes)


@pytest.fixture(scope='module')
def image_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('fuzz_imgs')
    for name in FILES:
        Image.fromarray(np.zeros((3, 3, 3), np.uint8)).save(root / name)
    return root


@SETTINGS
@given(case=coco_jsons())
def test_parser_gives_our_error_or_valid_points(case, image_root):
    coco, classes = case
    ann_file = image_root / 'ann.json'
    ann_file.write_text(json.dumps(coco))
    try:
        dataset = DATASETS.build(
            dict(type='CocoPointDataset', data_root=str(image_root),
                 ann_file='ann.json', metainfo=dict(classes=classes),
                 data_prefix=dict(img=''), test_mode=True, pipeline=[],
                 check_files=False))
    except ValueError as err:  # ours: names the json and the fix
        assert str(ann_file) in str(err) and 'Fix' in str(err), str(err)
        return
    images = {img['id']: img for img in coco['images']}
    name_of = {c['id']: c['name'] for c in coco['categories']}
    assert len(images) == len(coco['images']) == len(dataset)
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        img = images[info['img_id']]
        for inst in info['instances']:
            x, y = inst['point']
            assert 0 <= x < img['width'] and 0 <= y < img['height']
            assert math.isfinite(x) and math.isfinite(y)
    # labels follow the classes by name
    cat_of_label = {v: k for k, v in dataset.cat2label.items()}
    for label, name in enumerate(classes):
        assert name_of[cat_of_label[label]] == name


@st.composite
def masks(draw):
    h, w = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    bits = draw(st.lists(st.booleans(), min_size=h * w, max_size=h * w))
    return np.array(bits, bool).reshape(h, w)


@SETTINGS
@given(mask=masks(), mode=st.sampled_from(['centroid', 'random']),
       seed=st.integers(0, 3))
def test_importer_points_lie_on_their_masks(mask, mode, seed):
    h, w = mask.shape
    coco = dict(images=[dict(id=1, file_name='a.png', height=h, width=w)],
                annotations=[dict(id=1, image_id=1, category_id=1,
                                  segmentation=encode_mask(mask))],
                categories=[dict(id=1, name='a')])
    if not mask.any():
        with pytest.raises(ValueError, match='empty mask'), \
                pytest.warns(UserWarning):
            convert_masks_to_points(coco, mode=mode, seed=seed)
        return
    out, _ = convert_masks_to_points(coco, mode=mode, seed=seed)
    x, y = out['annotations'][0]['point']
    assert 0 <= x < w and 0 <= y < h
    assert mask[int(math.floor(y)), int(math.floor(x))]


# pixels of a <= 15 x 15 image numbered 0..224; 255 is the padding
@st.composite
def scenes(draw):
    h, w = draw(st.integers(1, 15)), draw(st.integers(1, 15))
    n = draw(st.integers(0, 6))
    pts = []
    for _ in range(n):
        # pixel borders (integers, 0, W - tiny) and interiors
        x = draw(st.one_of(st.integers(0, w - 1).map(float),
                           st.floats(0, w, exclude_max=True, width=32)))
        y = draw(st.one_of(st.integers(0, h - 1).map(float),
                           st.floats(0, h, exclude_max=True, width=32)))
        pts.append((x, y))
    steps = draw(st.lists(st.sampled_from(
        ['h', 'v', 'd', 'crop', 'pad']), max_size=5))
    return h, w, np.array(pts, np.float32).reshape(-1, 2), steps


@SETTINGS
@given(scene=scenes(), seed=st.integers(0, 1000))
def test_exact_transforms_keep_each_point_on_its_pixel(scene, seed):
    h, w, pts, steps = scene
    np.random.seed(seed)
    ids = np.arange(h * w, dtype=np.uint8).reshape(h, w)
    results = dict(img=np.zeros((h, w, 3), np.uint8), img_shape=(h, w),
                   ori_shape=(h, w), gt_seg_map=ids.copy(),
                   gt_points=pts.copy(),
                   gt_points_labels=np.zeros(len(pts), np.int64),
                   gt_ignore_flags=np.zeros(len(pts), bool))
    source = ids[np.floor(pts[:, 1]).astype(int),
                 np.floor(pts[:, 0]).astype(int)] if len(pts) else []
    for step in steps:
        if step in 'hvd':
            direction = dict(h='horizontal', v='vertical',
                             d='diagonal')[step]
            transform = PointRandomFlip(prob=1.0, direction=direction)
        elif step == 'crop':
            transform = PointRandomCrop(crop_size=(
                int(np.random.randint(1, w + 3)),
                int(np.random.randint(1, h + 3))))
        else:
            transform = PointPad(size_divisor=4, pad_val=dict(img=0, seg=255))
        results = transform(results)
    cur = results['gt_points']
    hh, ww = results['img_shape']
    seg = results['gt_seg_map']
    for i in range(len(pts)):
        x, y = cur[i]
        inside = 0 <= x < ww and 0 <= y < hh
        if results['gt_ignore_flags'][i]:
            continue  # cropped away at some step
        assert inside, (pts[i], cur[i], steps)
        assert seg[int(math.floor(y)), int(math.floor(x))] == source[i], (
            pts[i], cur[i], steps)
    if 'crop' not in steps:  # only crops may drop points
        assert not results['gt_ignore_flags'].any(), (pts, cur, steps)
