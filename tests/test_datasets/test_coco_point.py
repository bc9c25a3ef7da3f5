# Copyright (c) p2seg_mm contributors. All rights reserved.
import json
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from mmdet.registry import DATASETS
from p2seg_mm.datasets import coco_point
from p2seg_mm.datasets.coco_point import CocoPointDataset

CLASSES = ('cat', 'dog')


def _images():
    return [
        dict(id=1, file_name='a.jpg', width=10, height=8),
        dict(id=2, file_name='b.jpg', width=6, height=5),
        dict(id=3, file_name='c.jpg', width=4, height=4),
    ]


def _anns():
    return [
        # category ids are not contiguous on purpose
        dict(
            id=11,
            image_id=1,
            category_id=7,
            point=[0.5, 7.5],
            bbox=[0, 0, 3, 3],
            segmentation=[[0, 0, 3, 0, 3, 3]],
            area=9,
            iscrowd=0),
        dict(id=12, image_id=1, category_id=3, point=[9.5, 0.0], iscrowd=1),
        dict(id=13, image_id=2, category_id=3, point=[2, 3]),
        dict(id=14, image_id=2, category_id=7, point=[1, 1], ignore=1),
    ]


def _write(tmp_path,
           images=None,
           anns=None,
           categories=None,
           write_images=True):
    images = _images() if images is None else images
    anns = _anns() if anns is None else anns
    if categories is None:
        categories = [dict(id=3, name='cat'), dict(id=7, name='dog')]
    (tmp_path / 'imgs').mkdir(exist_ok=True)
    if write_images:
        for img in images:
            Image.fromarray(
                np.zeros((img.get('height', 4), img.get('width', 4), 3),
                         np.uint8)).save(tmp_path / 'imgs' / img['file_name'])
    ann_file = tmp_path / 'ann.json'
    ann_file.write_text(
        json.dumps(
            dict(images=images, annotations=anns, categories=categories)))
    return str(ann_file)


def _build(tmp_path, ann_file, **kwargs):
    cfg = dict(
        type='CocoPointDataset',
        data_root=str(tmp_path),
        ann_file=ann_file,
        metainfo=dict(classes=CLASSES),
        data_prefix=dict(img='imgs/', seg='sem/'),
        pipeline=[])
    cfg.update(kwargs)
    return DATASETS.build(cfg)


def test_load_points_labels_and_paths(tmp_path):
    ann_file = _write(tmp_path)
    dataset = _build(tmp_path, ann_file, test_mode=True)
    assert isinstance(dataset, CocoPointDataset)
    assert len(dataset) == 3
    assert dataset.cat_ids == [3, 7]
    info = dataset.get_data_info(0)
    assert info['img_path'] == osp.join(str(tmp_path), 'imgs/', 'a.jpg')
    assert info['seg_map_path'] == osp.join(str(tmp_path), 'sem/', 'a.png')
    assert (info['height'], info['width']) == (8, 10)
    assert info['instances'] == [
        dict(point=[0.5, 7.5], bbox_label=1, ignore_flag=0),
        dict(point=[9.5, 0.0], bbox_label=0, ignore_flag=1),
    ]
    # 'ignore' annotations are skipped; boxes/masks never loaded
    info = dataset.get_data_info(1)
    assert info['instances'] == [
        dict(point=[2.0, 3.0], bbox_label=0, ignore_flag=0)
    ]
    assert dataset.get_data_info(2)['instances'] == []
    assert dataset.get_cat_ids(0) == [1, 0]


def test_seg_map_suffix_and_no_seg_prefix(tmp_path):
    ann_file = _write(tmp_path)
    dataset = _build(
        tmp_path, ann_file, test_mode=True, seg_map_suffix='_sem.png')
    assert dataset.get_data_info(1)['seg_map_path'].endswith('b_sem.png')
    dataset = _build(
        tmp_path, ann_file, test_mode=True, data_prefix=dict(img='imgs/'))
    assert dataset.get_data_info(0)['seg_map_path'] is None


def test_filter_empty_images_in_training(tmp_path, monkeypatch):
    logged = []
    monkeypatch.setattr(coco_point, 'print_log',
                        lambda msg, **kw: logged.append((msg, kw)))
    ann_file = _write(tmp_path)
    dataset = _build(tmp_path, ann_file, filter_cfg=dict(filter_empty_gt=True))
    # image 3 has no point; image 1 and 2 have a non-crowd point
    assert [dataset.get_data_info(i)['img_id'] for i in range(2)] == [1, 2]
    assert len(dataset) == 2
    assert len(logged) == 1
    msg, kwargs = logged[0]
    assert 'filtered out 1 images without points' in msg
    assert kwargs['level'] == 30  # logging.WARNING
    # min_size filter
    dataset = _build(
        tmp_path, ann_file, filter_cfg=dict(filter_empty_gt=False, min_size=6))
    assert [dataset.get_data_info(i)['img_id']
            for i in range(len(dataset))] == [1]


def test_crowd_only_image_is_filtered(tmp_path, monkeypatch):
    monkeypatch.setattr(coco_point, 'print_log', lambda *a, **k: None)
    anns = _anns()
    anns[2]['iscrowd'] = 1  # image 2 keeps only a crowd point
    ann_file = _write(tmp_path, anns=anns)
    dataset = _build(tmp_path, ann_file, filter_cfg=dict(filter_empty_gt=True))
    assert len(dataset) == 1


def test_empty_dataset_after_filtering(tmp_path, monkeypatch):
    monkeypatch.setattr(coco_point, 'print_log', lambda *a, **k: None)
    ann_file = _write(tmp_path, anns=[])
    with pytest.raises(ValueError, match='no image is left') as err:
        _build(tmp_path, ann_file, filter_cfg=dict(filter_empty_gt=True))
    assert ann_file in str(err.value)
    assert 'filter_cfg' in str(err.value)
    # test mode keeps images without points
    assert len(_build(tmp_path, ann_file, test_mode=True)) == 3


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
    anns = _anns()
    if point is None:
        del anns[0]['point']
    else:
        anns[0]['point'] = point
    ann_file = _write(tmp_path, anns=anns)
    with pytest.raises(ValueError, match=match) as err:
        _build(tmp_path, ann_file, test_mode=True)
    msg = str(err.value)
    assert ann_file in msg and 'image id 1' in msg and "'a.jpg'" in msg
    assert 'annotation id 11' in msg


def test_bad_category(tmp_path):
    anns = _anns()
    anns[2]['category_id'] = 5
    ann_file = _write(tmp_path, anns=anns)
    with pytest.raises(ValueError, match='category_id 5') as err:
        _build(tmp_path, ann_file, test_mode=True)
    assert 'annotation id 13' in str(err.value)
    assert 'image id 2' in str(err.value)


def test_classes_missing_or_reordered(tmp_path):
    ann_file = _write(tmp_path)
    with pytest.raises(ValueError, match=r"\['bird'\]"):
        _build(tmp_path, ann_file, metainfo=dict(classes=('cat', 'bird')))
    with pytest.raises(ValueError, match='order'):
        _build(tmp_path, ann_file, metainfo=dict(classes=('dog', 'cat')))


def test_missing_image_file(tmp_path):
    ann_file = _write(tmp_path, write_images=False)
    with pytest.raises(FileNotFoundError) as err:
        _build(tmp_path, ann_file, test_mode=True)
    assert osp.join('imgs/', 'a.jpg') in str(err.value)


def test_json_without_images(tmp_path):
    ann_file = _write(tmp_path, images=[], anns=[])
    with pytest.raises(ValueError, match='no "images"') as err:
        _build(tmp_path, ann_file, test_mode=True)
    assert ann_file in str(err.value)


def test_missing_image_size(tmp_path):
    images = _images()
    del images[1]['height']
    ann_file = _write(tmp_path, images=images)
    with pytest.raises(ValueError, match='width"/"height') as err:
        _build(tmp_path, ann_file, test_mode=True)
    assert 'image id 2' in str(err.value)


def test_duplicated_annotation_ids(tmp_path):
    anns = _anns()
    anns[2]['id'] = 11
    ann_file = _write(tmp_path, anns=anns)
    with pytest.raises(ValueError, match=r'annotation ids \[11\]'):
        _build(tmp_path, ann_file, test_mode=True)


def _demo_fixture(tmp_path):
    """Two 200 x 300 images with one disc per class and its pseudo-map."""
    import cv2
    for sub in ('images', 'pseudo_sem', 'annotations'):
        (tmp_path / sub).mkdir()
    images, anns = [], []
    for img_id in (1, 2):
        sem = np.zeros((200, 300), np.uint8)
        for k, (cx, cy) in enumerate([(60, 50), (220, 150)]):
            cv2.circle(sem, (cx, cy), 30, k + 1, thickness=-1)
            anns.append(
                dict(
                    id=len(anns) + 1,
                    image_id=img_id,
                    category_id=k + 1,
                    point=[cx + 0.5, cy + 0.5],
                    iscrowd=0))
        Image.fromarray(sem).save(tmp_path / 'pseudo_sem' / f'{img_id}.png')
        Image.fromarray(np.full(
            (200, 300, 3), 90,
            np.uint8)).save(tmp_path / 'images' / f'{img_id}.jpg')
        images.append(
            dict(id=img_id, file_name=f'{img_id}.jpg', width=300, height=200))
    categories = [dict(id=1, name='ecoli'), dict(id=2, name='hela_nucleus')]
    (tmp_path / 'annotations' / 'train_points.json').write_text(
        json.dumps(
            dict(images=images, annotations=anns, categories=categories)))


def test_demo_config_train_pipeline_end_to_end(tmp_path):
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    cfg = Config.fromfile(
        osp.join(
            osp.dirname(__file__), '..', '..', 'configs', '_base_', 'datasets',
            'demo_cells_point.py'))
    _demo_fixture(tmp_path)
    dataset_cfg = cfg.train_dataloader.dataset
    dataset_cfg.data_root = str(tmp_path)
    # GenerateS2ITargets is tested with its own module
    dataset_cfg.pipeline = [
        t for t in cfg.train_pipeline if t.type != 'GenerateS2ITargets'
    ]
    # the runner sets default_scope='mmdet' (mmdet's default_runtime)
    with DefaultScope.overwrite_default_scope('mmdet'):
        dataset = DATASETS.build(dataset_cfg)
    assert len(dataset) == 2
    np.random.seed(0)
    for _ in range(6):
        packed = dataset[0]
        assert packed['inputs'].shape == (3, 256, 256)
        sample = packed['data_samples']
        sem = sample.gt_sem_seg.sem_seg
        assert sem.shape == (1, 256, 256)
        assert set(sem.unique().tolist()) <= {0, 1, 2, 255}
        points = sample.gt_instances.points
        labels = sample.gt_instances.labels
        assert len(points) + len(sample.ignored_instances.points) == 2
        for (x, y), label in zip(points.tolist(), labels.tolist()):
            assert 0 <= x < 256 and 0 <= y < 256
            assert sem[0, int(y), int(x)] == label + 1


@pytest.mark.parametrize('name, num_classes', [
    ('voc_instance_point.py', 20),
    ('coco_instance_point.py', 80),
    ('demo_cells_point.py', 2),
])
def test_dataset_configs_build_their_transforms(name, num_classes):
    from mmengine.config import Config
    from mmdet.registry import TRANSFORMS
    cfg = Config.fromfile(
        osp.join(
            osp.dirname(__file__), '..', '..', 'configs', '_base_', 'datasets',
            name))
    assert cfg.train_dataloader.dataset.type == 'CocoPointDataset'
    assert cfg.val_dataloader.dataset.test_mode
    types = [t.type for t in cfg.train_pipeline]
    assert types == [
        'LoadP2SegImageFromFile', 'LoadP2SegAnnotations',
        'P2SegPhotoMetricDistortion', 'PointRandomResize', 'PointRandomCrop',
        'PointPad', 'PointRandomFlip', 'GenerateS2ITargets', 'PackP2SegInputs'
    ]
    # one source of the class count: the dataset's classes fill it in
    assert 'num_classes' not in cfg.train_pipeline[7]
    assert 'num_classes' not in cfg.train_pipeline[1]
    from p2seg_mm.datasets.coco_point import _with_num_classes
    classes = cfg.train_dataloader.dataset.get('metainfo', {}).get(
        'classes') or DATASETS.get('CocoPointDataset').METAINFO['classes']
    assert len(classes) == num_classes
    filled, loads_seg = _with_num_classes(list(cfg.train_pipeline),
                                          num_classes)
    assert loads_seg
    assert [t['num_classes'] for t in filled if 'num_classes' in t] == \
        [num_classes] * 2
    TRANSFORMS.build(filled[7])
    wrong = [dict(t, num_classes=num_classes + 1) if t['type'] ==
             'GenerateS2ITargets' else t for t in cfg.train_pipeline]
    with pytest.raises(ValueError, match='drop num_classes'):
        _with_num_classes(wrong, num_classes)
    # the one loading rule (image_io) also reads the test images
    assert cfg.test_pipeline[0].type == 'LoadP2SegImageFromFile'
    for t in cfg.train_pipeline + cfg.test_pipeline:
        if t.type != 'GenerateS2ITargets':
            TRANSFORMS.build(t)
    assert cfg.train_dataloader.dataset.data_prefix.get('seg')
    assert 'seg' not in cfg.val_dataloader.dataset.data_prefix


# ----------------------------------------------------------------------------
# Issue #10: bad input fails when the dataset is built, naming file and fix.
# ----------------------------------------------------------------------------
def test_duplicate_image_ids_are_rejected(tmp_path):
    """Fault 2: a second image entry with id 1 made a.jpg disappear."""
    images = _images()
    images[1]['id'] = 1
    ann_file = _write(tmp_path, images=images)
    with pytest.raises(ValueError, match='image id 1 is used by 2') as err:
        _build(tmp_path, ann_file, test_mode=True)
    assert "'a.jpg'" in str(err.value) and "'b.jpg'" in str(err.value)
    assert ann_file in str(err.value)


def test_background_category_outside_classes_is_allowed(tmp_path):
    ann_file = _write(
        tmp_path,
        categories=[dict(id=0, name='_background_'), dict(id=3, name='cat'),
                    dict(id=7, name='dog')])
    dataset = _build(tmp_path, ann_file, test_mode=True)
    assert dataset.cat2label == {3: 0, 7: 1}


@pytest.mark.parametrize('test_mode', [True, False])
def test_json_size_differs_from_the_file(tmp_path, test_mode, monkeypatch):
    """Fault 3: json says 2x the file: points silently at the wrong scale
    in training, test.py exits 0. Every such image is named at build."""
    monkeypatch.setattr(coco_point, 'print_log', lambda *a, **k: None)
    ann_file = _write(tmp_path)
    for name in ('a.jpg', 'c.jpg'):  # files half the json size
        Image.fromarray(np.zeros((4, 5, 3), np.uint8)).save(
            tmp_path / 'imgs' / name)
    with pytest.raises(ValueError) as err:
        _build(tmp_path, ann_file, test_mode=test_mode,
               filter_cfg=dict(filter_empty_gt=False))
    msg = str(err.value)
    assert '2 problem(s)' in msg
    assert 'image id 1' in msg and 'image id 3' in msg
    assert 'is 4 x 5 (H x W) but the json says 8 x 10' in msg
    assert 'Fix' in msg


def _seg_dataset(tmp_path, value):
    ann_file = _write(tmp_path)
    (tmp_path / 'sem').mkdir(exist_ok=True)
    for img in _images():
        sem = np.zeros((img['height'], img['width']), np.uint8)
        sem[0, 0] = value if img['id'] == 2 else 1
        Image.fromarray(sem).save(tmp_path / 'sem' /
                                  img['file_name'].replace('.jpg', '.png'))
    return ann_file


def test_pseudo_map_values_fail_at_build_with_default_loader(tmp_path):
    """Fault 9: LoadP2SegAnnotations() at its default let value 38 reach the
    loss ("Target 38 is out of bounds") when the image was first sampled;
    now the dataset refuses it before training starts."""
    ann_file = _seg_dataset(tmp_path, 38)
    pipeline = [dict(type='mmdet.LoadP2SegImageFromFile'),
                dict(type='mmdet.LoadP2SegAnnotations')]
    with pytest.raises(ValueError, match=r'holds values \[38\]') as err:
        _build(tmp_path, ann_file, test_mode=True, pipeline=pipeline)
    assert 'b.png' in str(err.value) and 'image id 2' in str(err.value)
    # beyond the decoded sample the loader itself now knows the classes
    dataset = _build(tmp_path, ann_file, test_mode=True, pipeline=pipeline,
                     max_decode_checks=0)
    with pytest.raises(ValueError, match=r'holds values \[38\]'):
        dataset[1]
    # valid maps pass; 255 (ignore) is allowed
    ann_file = _seg_dataset(tmp_path, 255)
    assert len(_build(tmp_path, ann_file, test_mode=True,
                      pipeline=pipeline)) == 3


def test_missing_and_wrong_size_pseudo_maps_listed_together(tmp_path):
    ann_file = _seg_dataset(tmp_path, 2)
    (tmp_path / 'sem' / 'a.png').unlink()
    Image.fromarray(np.zeros((3, 3), np.uint8)).save(tmp_path / 'sem' /
                                                     'c.png')
    pipeline = [dict(type='mmdet.LoadP2SegAnnotations', with_seg=True)]
    with pytest.raises(ValueError) as err:
        _build(tmp_path, ann_file, test_mode=True, pipeline=pipeline)
    msg = str(err.value)
    assert 'a.png does not exist' in msg
    assert 'c.png is 3 x 3 (H x W) but its image is 4 x 4' in msg
    # a pipeline that does not load maps does not need them
    assert len(_build(tmp_path, ann_file, test_mode=True)) == 3


def test_huge_input_is_refused_with_its_path(tmp_path, monkeypatch):
    """Fault 8 (data side): PIL's decompression-bomb error named no file."""
    ann_file = _write(tmp_path)
    monkeypatch.setattr(Image, 'MAX_IMAGE_PIXELS', 20)  # 10x8 = 80 > 2x20
    with pytest.raises(ValueError, match='too large') as err:
        _build(tmp_path, ann_file, test_mode=True)
    assert osp.join('imgs/', 'a.jpg') in str(err.value)
    assert 'Fix' in str(err.value)
