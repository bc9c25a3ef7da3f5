# Copyright (c) p2seg_mm contributors. All rights reserved.
"""The json checks (p2seg_mm.datasets.data_checks): CocoPointDataset refuses
a bad points json at build, naming the json, image, annotation and fix."""
import json

import pytest

from p2seg_mm.datasets.data_checks import (check_point_categories,
                                           point_records,
                                           segmentation_problem)
from tests.test_datasets.point_json import (CLASSES, build_dataset,
                                            point_anns, point_images,
                                            write_json)


@pytest.mark.parametrize('point, match', [
    (None, 'has no "point"'),
    ([1.0], 'list of 2 finite numbers'),
    ([1.0, 2.0, 3.0], 'list of 2 finite numbers'),
    (['1', 2], 'list of 2 finite numbers'),
    ([float('nan'), 2], 'list of 2 finite numbers'),
    ([10.0, 2.0], 'outside the image'),
    ([-0.1, 2.0], 'outside the image'),
    ([3.0, 8.0], 'outside the image'),
])
def test_bad_points(tmp_path, point, match):
    anns = point_anns()
    if point is None:
        del anns[0]['point']
    else:
        anns[0]['point'] = point
    ann_file = write_json(tmp_path, anns=anns)
    with pytest.raises(ValueError, match=match) as err:
        build_dataset(tmp_path, ann_file, test_mode=True)
    msg = str(err.value)
    assert ann_file in msg and 'image id 1' in msg and "'a.jpg'" in msg
    assert 'annotation id 11' in msg


def test_bad_category(tmp_path):
    anns = point_anns()
    anns[2]['category_id'] = 5
    ann_file = write_json(tmp_path, anns=anns)
    with pytest.raises(ValueError, match='category_id 5') as err:
        build_dataset(tmp_path, ann_file, test_mode=True)
    assert 'annotation id 13' in str(err.value)
    assert 'image id 2' in str(err.value)


def test_point_of_a_json_category_that_is_not_a_class(tmp_path):
    """A json category outside the classes (``_background_``) may be listed
    but no point may use it: CocoPointDataset refuses such a point, and
    check_point_categories (check_dataset.py) reports it with the same
    words; ignored annotations are skipped by both."""
    categories = [dict(id=0, name='_background_'), dict(id=3, name='cat'),
                  dict(id=7, name='dog')]
    anns = point_anns()
    anns[2]['category_id'] = 0  # id 13, image 2 ('b.jpg')
    anns[3]['category_id'] = 0  # id 14, ignored
    ann_file = write_json(tmp_path, anns=anns, categories=categories)
    with pytest.raises(ValueError) as err:
        build_dataset(tmp_path, ann_file, test_mode=True)
    coco = json.loads(open(ann_file).read())
    problems = check_point_categories(coco, CLASSES, ann_file)
    assert [p.message for p in problems] == [str(err.value)]
    assert str(err.value) == (
        f"{ann_file}: image id 2 ('b.jpg'), annotation id 13: category_id 0 "
        "is not one of the dataset categories [3, 7] (metainfo classes "
        "['cat', 'dog']). Fix the category_id or the metainfo classes.")
    # categories that do not fit the classes are check_categories' report
    assert check_point_categories(coco, ('cat', 'bird'), ann_file) == []
    # without classes every json category is one
    assert check_point_categories(coco, None, ann_file) == []


def test_classes_missing_or_reordered(tmp_path):
    ann_file = write_json(tmp_path)
    with pytest.raises(ValueError, match=r"\['bird'\]"):
        build_dataset(
            tmp_path, ann_file, metainfo=dict(classes=('cat', 'bird')))
    with pytest.raises(ValueError, match='order'):
        build_dataset(
            tmp_path, ann_file, metainfo=dict(classes=('dog', 'cat')))


def test_json_without_images(tmp_path):
    ann_file = write_json(tmp_path, images=[], anns=[])
    with pytest.raises(ValueError, match='no "images"') as err:
        build_dataset(tmp_path, ann_file, test_mode=True)
    assert ann_file in str(err.value)


def test_missing_image_size(tmp_path):
    images = point_images()
    del images[1]['height']
    ann_file = write_json(tmp_path, images=images)
    with pytest.raises(ValueError, match='width"/"height') as err:
        build_dataset(tmp_path, ann_file, test_mode=True)
    assert 'image id 2' in str(err.value)


def test_duplicated_annotation_ids(tmp_path):
    anns = point_anns()
    anns[2]['id'] = 11
    ann_file = write_json(tmp_path, anns=anns)
    with pytest.raises(ValueError, match=r'annotation ids \[11\]'):
        build_dataset(tmp_path, ann_file, test_mode=True)


def test_duplicate_image_ids_are_rejected(tmp_path):
    """Fault 2: a second image entry with id 1 made a.jpg disappear."""
    images = point_images()
    images[1]['id'] = 1
    ann_file = write_json(tmp_path, images=images)
    with pytest.raises(ValueError, match='image id 1 is used by 2') as err:
        build_dataset(tmp_path, ann_file, test_mode=True)
    assert "'a.jpg'" in str(err.value) and "'b.jpg'" in str(err.value)
    assert ann_file in str(err.value)


@pytest.mark.parametrize('segmentation, reason', [
    ([[0, 0, 3, 0, 3, 3]], None),
    ([[0, 0, 3, 0, 3, 3], [1, 1, 2, 1, 2, 2, 1, 2]], None),
    (dict(size=[2, 3], counts=[1, 4, 1]), None),
    (dict(size=[2, 3], counts='14'), None),
    ('absent', 'has no "segmentation"'),
    ([], 'empty list'),
    ([[0, 0, 3, 0, 3]], 'has 5 numbers'),
    ([[0, 0, 3, 0]], 'has 4 numbers'),
    ([[0, 0, 3, 0, 3, float('nan')]], 'not a flat list of finite numbers'),
    ([[[0, 0], [3, 0], [3, 3]]], 'not a flat list of finite numbers'),
    (dict(size=[3, 2], counts='14'), 'RLE "size" [3, 2] differs'),
    (dict(size=[2, 3], counts=[1, 4]), 'sum to 5, not height * width = 6'),
    (dict(size=[2, 3], counts=[1, -1, 6]), 'non-negative ints'),
    (dict(size=[2, 3], counts=''), 'non-empty string'),
    ('text', 'of type str is not supported'),
])
def test_segmentation_problem(segmentation, reason):
    """What pycocotools can decode for an image of height 2 and width 3."""
    ann = {} if segmentation == 'absent' else dict(segmentation=segmentation)
    got = segmentation_problem(ann, 2, 3)
    if reason is None:
        assert got is None
    else:
        assert reason in got


def test_point_records_keep_the_points_training_uses():
    """The points the pseudo-map check reads: not ignored, not crowd, a
    valid point of a class category; labels in classes order."""
    anns = point_anns() + [
        dict(id=15, image_id=1, category_id=3, point=[10.0, 1.0]),  # out
        dict(id=16, image_id=1, category_id=0, point=[1.0, 1.0]),  # no class
        dict(id=17, image_id=1, category_id=3),  # no point
        dict(id=18, image_id=1, category_id=3, point=[2, 6]),
    ]
    assert point_records(anns, {3: 0, 7: 1}, 8, 10) == [
        dict(ann_id=11, point=(0.5, 7.5), label=1),
        dict(ann_id=13, point=(2.0, 3.0), label=0),
        dict(ann_id=18, point=(2.0, 6.0), label=0),
    ]
