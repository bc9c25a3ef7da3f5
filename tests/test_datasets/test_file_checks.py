# Copyright (c) p2seg_mm contributors. All rights reserved.
"""The file checks (p2seg_mm.datasets.file_checks): images and pseudo-maps
are checked when CocoPointDataset is built, every problem listed at once."""
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from p2seg_mm.datasets import coco_point
from p2seg_mm.datasets.file_checks import (check_data_files,
                                           check_seg_map_file,
                                           image_loader_of, points_off_class,
                                           sample_indices)
from tests.test_datasets.point_json import (build_dataset, write_json,
                                            write_seg_maps)


def test_missing_image_file(tmp_path):
    ann_file = write_json(tmp_path, write_images=False)
    with pytest.raises(FileNotFoundError) as err:
        build_dataset(tmp_path, ann_file, test_mode=True)
    assert osp.join('imgs/', 'a.jpg') in str(err.value)


@pytest.mark.parametrize('test_mode', [True, False])
def test_json_size_differs_from_the_file(tmp_path, test_mode, monkeypatch):
    """Fault 3: json says 2x the file: points silently at the wrong scale
    in training, test.py exits 0. Every such image is named at build."""
    monkeypatch.setattr(coco_point, 'print_log', lambda *a, **k: None)
    ann_file = write_json(tmp_path)
    for name in ('a.jpg', 'c.jpg'):  # files half the json size
        Image.fromarray(np.zeros((4, 5, 3), np.uint8)).save(
            tmp_path / 'imgs' / name)
    with pytest.raises(ValueError) as err:
        build_dataset(tmp_path, ann_file, test_mode=test_mode,
                      filter_cfg=dict(filter_empty_gt=False))
    msg = str(err.value)
    assert '2 problem(s)' in msg
    assert 'image id 1' in msg and 'image id 3' in msg
    assert 'is 4 x 5 (H x W) but the json says 8 x 10' in msg
    assert 'Fix' in msg


def test_pseudo_map_values_fail_at_build_with_default_loader(tmp_path):
    """Fault 9: LoadP2SegAnnotations() at its default let value 38 reach the
    loss ("Target 38 is out of bounds") when the image was first sampled;
    now the dataset refuses it before training starts."""
    ann_file = write_seg_maps(tmp_path, 38)
    pipeline = [dict(type='mmdet.LoadP2SegImageFromFile'),
                dict(type='mmdet.LoadP2SegAnnotations')]
    with pytest.raises(ValueError, match=r'holds values \[38\]') as err:
        build_dataset(tmp_path, ann_file, test_mode=True, pipeline=pipeline)
    assert 'b.png' in str(err.value) and 'image id 2' in str(err.value)
    # beyond the decoded sample the loader itself now knows the classes
    dataset = build_dataset(tmp_path, ann_file, test_mode=True,
                            pipeline=pipeline, max_decode_checks=0)
    with pytest.raises(ValueError, match=r'holds values \[38\]'):
        dataset[1]
    # valid maps pass; 255 (ignore) is allowed
    ann_file = write_seg_maps(tmp_path, 255)
    assert len(build_dataset(tmp_path, ann_file, test_mode=True,
                             pipeline=pipeline)) == 3


def test_missing_and_wrong_size_pseudo_maps_listed_together(tmp_path):
    ann_file = write_seg_maps(tmp_path, 2)
    (tmp_path / 'sem' / 'a.png').unlink()
    Image.fromarray(np.zeros((3, 3), np.uint8)).save(tmp_path / 'sem' /
                                                     'c.png')
    pipeline = [dict(type='mmdet.LoadP2SegAnnotations', with_seg=True)]
    with pytest.raises(ValueError) as err:
        build_dataset(tmp_path, ann_file, test_mode=True, pipeline=pipeline)
    msg = str(err.value)
    assert 'a.png does not exist' in msg
    assert 'c.png is 3 x 3 (H x W) but its image is 4 x 4' in msg
    # a pipeline that does not load maps does not need them
    assert len(build_dataset(tmp_path, ann_file, test_mode=True)) == 3


def test_huge_input_is_refused_with_its_path(tmp_path, monkeypatch):
    """Fault 8 (data side): PIL's decompression-bomb error named no file."""
    ann_file = write_json(tmp_path)
    monkeypatch.setattr(Image, 'MAX_IMAGE_PIXELS', 20)  # 10x8 = 80 > 2x20
    with pytest.raises(ValueError, match='too large') as err:
        build_dataset(tmp_path, ann_file, test_mode=True)
    assert osp.join('imgs/', 'a.jpg') in str(err.value)
    assert 'Fix' in str(err.value)


def test_seg_map_file_problems(tmp_path):
    """Each problem of one pseudo-map, with the fix; a good map has none."""
    good = np.zeros((4, 6), np.uint8)
    good[0, :3], good[1, 1], good[3, 5] = 1, 2, 255
    Image.fromarray(good).save(tmp_path / 'good.png')
    path = str(tmp_path / 'good.png')
    assert check_seg_map_file(path, (4, 6), 2, 'w') == []
    # values: 0..C and 255 with C given, anything 0..255 without
    [problem] = check_seg_map_file(path, (4, 6), 1, 'w')
    assert problem.level == 'error' and str(problem).startswith('ERROR: w:')
    assert 'holds values [2] that are not classes' in problem.message
    assert '0 (background), 1..1 (class + 1) and 255 (ignore)' in \
        problem.message
    assert check_seg_map_file(path, (4, 6), None, 'w') == []
    # not decoded: values unchecked
    assert check_seg_map_file(path, (4, 6), 1, 'w', decode=False) == []
    # the image's size transposed (EXIF 5-8) is named as such
    [problem] = check_seg_map_file(path, (6, 4), 2, 'w')
    assert 'is 4 x 6 (H x W) but its image is 6 x 4' in problem.message
    assert 'transposed' in problem.message
    [problem] = check_seg_map_file(path, (5, 6), 2, 'w')
    assert 'transposed' not in problem.message
    # a colour rendering, a missing file
    Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save(tmp_path / 'rgb.png')
    [problem] = check_seg_map_file(str(tmp_path / 'rgb.png'), (4, 6), 2, 'w')
    assert "PIL mode 'RGB'" in problem.message and 'Fix' in problem.message
    [problem] = check_seg_map_file(str(tmp_path / 'no.png'), (4, 6), 2, 'w')
    assert 'no.png does not exist' in problem.message


def test_image_loader_of_and_sample_indices():
    assert image_loader_of([dict(type='mmdet.LoadP2SegImageFromFile'),
                            dict(type='LoadImageFromFile')]) == \
        'LoadP2SegImageFromFile'
    assert image_loader_of([dict(type='LoadP2SegAnnotations')]) == ''
    assert image_loader_of(None) is None
    assert sample_indices(5, None) == sample_indices(5, 9) == [0, 1, 2, 3, 4]
    assert sample_indices(100, 3) == [0, 49, 99]
    assert sample_indices(5, 0) == []


def test_points_off_class():
    """Pixel (floor(y), floor(x)) must hold the point's class (label + 1)
    or 255; background or another class is reported with its value;
    pixels outside the map and values that are no class are skipped."""
    seg = np.zeros((4, 6), np.uint8)
    seg[1, 2], seg[2, 3], seg[3, 5], seg[0, 5] = 1, 2, 255, 38
    records = [
        dict(ann_id=1, point=(2.9, 1.0), label=0),  # on its class
        dict(ann_id=2, point=(2.0, 1.9), label=1),  # on class 0 ('cat')
        dict(ann_id=3, point=(0.5, 0.5), label=0),  # on background
        dict(ann_id=4, point=(5.5, 3.5), label=1),  # on ignore
        dict(ann_id=5, point=(5.5, 0.5), label=1),  # on a bad value
        dict(ann_id=6, point=(6.5, 0.5), label=1),  # outside the map
    ]
    found = points_off_class(seg, records, 2)
    assert [(r['ann_id'], v) for r, v in found] == [(2, 1), (3, 0)]
    # without a class count every value below 255 is a class
    assert [r['ann_id'] for r, _ in points_off_class(seg, records, None)
            ] == [2, 3, 5]


def test_points_are_read_on_the_upright_pseudo_map(tmp_path):
    """A map stored with EXIF Orientation=6 is loaded upright; points (in
    the upright frame) are looked up there, as training reads it."""
    upright = np.zeros((6, 4), np.uint8)  # H x W upright
    upright[1, 2] = 1
    tags = Image.Exif()
    tags[0x0112] = 6  # rotate 90 clockwise to show
    Image.fromarray(np.ascontiguousarray(np.rot90(upright, 1))).save(
        tmp_path / 'm.png', exif=tags)
    Image.fromarray(np.zeros((6, 4, 3), np.uint8)).save(tmp_path / 'i.png')
    info = dict(img_id=1, img_path=str(tmp_path / 'i.png'), height=6,
                width=4, seg_map_path=str(tmp_path / 'm.png'),
                points=[dict(ann_id=1, point=(2.5, 1.5), label=0),
                        dict(ann_id=2, point=(2.5, 1.5), label=1)])
    problems = check_data_files([info], 'j.json', 2, check_seg=True,
                                classes=('cat', 'dog'))
    assert [p.level for p in problems] == ['warning']
    assert "annotation id 2: point (2.5, 1.5) of class 'dog' lies on a " \
        "pixel of value 1 (class 'cat')" in problems[0].message
    # not decoded: not checked
    assert check_data_files([info], 'j.json', 2, check_seg=True,
                            max_decode=0) == []
