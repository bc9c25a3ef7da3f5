# Copyright (c) p2seg_mm contributors. All rights reserved.
"""The fabricated dataset of the integration tests is what they assume."""
import json

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from scipy import ndimage

from fabricated_data import CLASSES, make_point_dataset


def _load(path):
    with open(path) as f:
        return json.load(f)


def test_files_and_ids(point_dataset):
    points = _load(point_dataset['points_json'])
    gt = _load(point_dataset['gt_json'])
    assert [c['name'] for c in points['categories']] == list(CLASSES)
    assert len(points['images']) == 4
    assert [a['id'] for a in points['annotations']] == \
        [a['id'] for a in gt['annotations']]
    assert all('segmentation' not in a for a in points['annotations'])
    assert _load(point_dataset['val_points_json']) == points
    for img in points['images']:
        with Image.open(f"{point_dataset['img_dir']}/{img['file_name']}") \
                as im:
            assert im.mode == 'RGB'
            assert im.size == (img['width'], img['height']) == (80, 64)


def test_points_at_pixel_centres_inside_their_masks(point_dataset):
    points = {
        a['id']: a
        for a in _load(point_dataset['points_json'])['annotations']
    }
    for ann in _load(point_dataset['gt_json'])['annotations']:
        mask = mask_utils.decode(ann['segmentation']).astype(bool)
        x, y = points[ann['id']]['point']
        assert x % 1 == 0.5 and y % 1 == 0.5
        assert mask[int(np.floor(y)), int(np.floor(x))], ann['id']
        assert ann['area'] == mask.sum() >= 100


def test_pseudo_map_is_union_of_masks(point_dataset):
    gt = _load(point_dataset['gt_json'])
    cat2value = {c['id']: i + 1 for i, c in enumerate(gt['categories'])}
    merged = 0
    for img in gt['images']:
        with Image.open(f"{point_dataset['seg_dir']}/{img['file_name']}") \
                as im:
            assert im.mode == 'L'
            sem = np.array(im)
        expected = np.zeros_like(sem)
        anns = [a for a in gt['annotations'] if a['image_id'] == img['id']]
        assert 2 <= len(anns) <= 4
        for ann in anns:
            mask = mask_utils.decode(ann['segmentation']).astype(bool)
            assert not expected[mask].any(), 'instances overlap'
            expected[mask] = cat2value[ann['category_id']]
        np.testing.assert_array_equal(sem, expected)
        # touching same-class instances form one 8-connected component
        for value in (1, 2):
            num = sum(cat2value[a['category_id']] == value for a in anns)
            comps = ndimage.label(sem == value, np.ones((3, 3)))[1]
            merged += num - comps
    assert merged >= 2


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match='num_images'):
        make_point_dataset(str(tmp_path), num_images=5)
    with pytest.raises(ValueError, match='64 x 80'):
        make_point_dataset(str(tmp_path), height=32)


def test_loads_with_coco_point_dataset(point_dataset):
    from p2seg_mm.datasets.coco_point import CocoPointDataset
    dataset = CocoPointDataset(
        data_root=point_dataset['root'],
        ann_file='annotations/train_points.json',
        data_prefix=dict(img='images/', seg='pseudo_sem/'),
        metainfo=dict(classes=CLASSES),
        pipeline=[])
    assert len(dataset) == 4
    info = dataset.get_data_info(0)
    assert info['seg_map_path'].endswith('pseudo_sem/img_1.png')
    assert [i['bbox_label'] for i in info['instances']] == [0, 0, 1]
