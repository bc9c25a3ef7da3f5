# Copyright (c) p2seg_mm contributors. All rights reserved.
"""A small points json (3 images, 2 classes with non-contiguous category
ids, crowd and ignored points), its images and pseudo-maps, for the tests of
CocoPointDataset and of the data checks it runs at build."""
import json

import numpy as np
from PIL import Image

from mmdet.registry import DATASETS

CLASSES = ('cat', 'dog')


def point_images():
    """Image entries: 10 x 8, 6 x 5 and 4 x 4 (W x H)."""
    return [
        dict(id=1, file_name='a.jpg', width=10, height=8),
        dict(id=2, file_name='b.jpg', width=6, height=5),
        dict(id=3, file_name='c.jpg', width=4, height=4),
    ]


def point_anns():
    """Annotations of images 1 and 2 (image 3 has none)."""
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


def write_json(tmp_path,
               images=None,
               anns=None,
               categories=None,
               write_images=True):
    """Write ``tmp_path/ann.json`` (and black images under ``imgs/``);
    return its path."""
    images = point_images() if images is None else images
    anns = point_anns() if anns is None else anns
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


def build_dataset(tmp_path, ann_file, **kwargs):
    """CocoPointDataset of ``ann_file`` (images ``imgs/``, maps ``sem/``,
    no pipeline) with ``kwargs`` overriding the config."""
    cfg = dict(
        type='CocoPointDataset',
        data_root=str(tmp_path),
        ann_file=ann_file,
        metainfo=dict(classes=CLASSES),
        data_prefix=dict(img='imgs/', seg='sem/'),
        pipeline=[])
    cfg.update(kwargs)
    return DATASETS.build(cfg)


def write_seg_maps(tmp_path, value):
    """The json, and a pseudo-map per image under ``sem/`` whose pixel
    (0, 0) is 1, ``value`` in the map of image 2; return the json path."""
    ann_file = write_json(tmp_path)
    (tmp_path / 'sem').mkdir(exist_ok=True)
    for img in point_images():
        sem = np.zeros((img['height'], img['width']), np.uint8)
        sem[0, 0] = value if img['id'] == 2 else 1
        Image.fromarray(sem).save(tmp_path / 'sem' /
                                  img['file_name'].replace('.jpg', '.png'))
    return ann_file
