# Copyright (c) p2seg_mm contributors. All rights reserved.
"""CocoPointDataset: points, labels and paths from the json, filtering,
and the dataset configs' pipelines. The checks it runs at build:
test_data_checks.py (json) and test_file_checks.py (files)."""
import json
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from mmdet.registry import DATASETS
from p2seg_mm.datasets import coco_point
from p2seg_mm.datasets.coco_point import CocoPointDataset
from tests.test_datasets.point_json import (build_dataset, point_anns,
                                            write_json)


def test_load_points_labels_and_paths(tmp_path):
    ann_file = write_json(tmp_path)
    dataset = build_dataset(tmp_path, ann_file, test_mode=True)
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
    ann_file = write_json(tmp_path)
    dataset = build_dataset(
        tmp_path, ann_file, test_mode=True, seg_map_suffix='_sem.png')
    assert dataset.get_data_info(1)['seg_map_path'].endswith('b_sem.png')
    dataset = build_dataset(
        tmp_path, ann_file, test_mode=True, data_prefix=dict(img='imgs/'))
    assert dataset.get_data_info(0)['seg_map_path'] is None


def test_filter_empty_images_in_training(tmp_path, monkeypatch):
    logged = []
    monkeypatch.setattr(coco_point, 'print_log',
                        lambda msg, **kw: logged.append((msg, kw)))
    ann_file = write_json(tmp_path)
    dataset = build_dataset(
        tmp_path, ann_file, filter_cfg=dict(filter_empty_gt=True))
    # image 3 has no point; image 1 and 2 have a non-crowd point
    assert [dataset.get_data_info(i)['img_id'] for i in range(2)] == [1, 2]
    assert len(dataset) == 2
    assert len(logged) == 1
    msg, kwargs = logged[0]
    assert 'filtered out 1 images without points' in msg
    assert kwargs['level'] == 30  # logging.WARNING
    # min_size filter
    dataset = build_dataset(
        tmp_path, ann_file, filter_cfg=dict(filter_empty_gt=False, min_size=6))
    assert [dataset.get_data_info(i)['img_id']
            for i in range(len(dataset))] == [1]


def test_crowd_only_image_is_filtered(tmp_path, monkeypatch):
    monkeypatch.setattr(coco_point, 'print_log', lambda *a, **k: None)
    anns = point_anns()
    anns[2]['iscrowd'] = 1  # image 2 keeps only a crowd point
    ann_file = write_json(tmp_path, anns=anns)
    dataset = build_dataset(
        tmp_path, ann_file, filter_cfg=dict(filter_empty_gt=True))
    assert [dataset.get_data_info(i)['img_id']
            for i in range(len(dataset))] == [1]


def test_empty_dataset_after_filtering(tmp_path, monkeypatch):
    monkeypatch.setattr(coco_point, 'print_log', lambda *a, **k: None)
    ann_file = write_json(tmp_path, anns=[])
    with pytest.raises(ValueError, match='no image is left') as err:
        build_dataset(
            tmp_path, ann_file, filter_cfg=dict(filter_empty_gt=True))
    assert ann_file in str(err.value)
    assert 'filter_cfg' in str(err.value)
    # test mode keeps images without points
    assert len(build_dataset(tmp_path, ann_file, test_mode=True)) == 3


def test_background_category_outside_classes_is_allowed(tmp_path):
    ann_file = write_json(
        tmp_path,
        categories=[dict(id=0, name='_background_'), dict(id=3, name='cat'),
                    dict(id=7, name='dog')])
    dataset = build_dataset(tmp_path, ann_file, test_mode=True)
    assert dataset.cat2label == {3: 0, 7: 1}


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
    assert len(classes) == num_classes == cfg.num_classes
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


def test_train_scale_is_checked_for_training_only(tmp_path, monkeypatch):
    """Images far below the train resize scale are a warning when a
    training dataset is built; test_mode datasets are not resized for
    training and get none."""
    logged = []
    monkeypatch.setattr(coco_point, 'print_log',
                        lambda msg, **kw: logged.append(msg))
    ann_file = write_json(tmp_path)
    pipeline = [dict(type='mmdet.PointRandomResize', scale=(512, 512),
                     ratio_range=(0.7, 1.3), keep_ratio=True)]
    build_dataset(tmp_path, ann_file, test_mode=True, pipeline=pipeline)
    assert logged == []
    build_dataset(tmp_path, ann_file, pipeline=pipeline)
    [warning] = [m for m in logged if 'resize scale' in m]
    assert warning.startswith(f'{ann_file}: 3 of 3 images are much smaller')
    assert 'x51.2' in warning  # 512 / 10, a.jpg's longer side
