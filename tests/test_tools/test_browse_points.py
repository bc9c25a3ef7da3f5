# Copyright (c) p2seg_mm contributors. All rights reserved.
"""tools/misc/browse_points.py reads images, maps and labels by the
project's rules (image_io, read_seg_map, category_to_label)."""
import argparse
import json

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from tests.tool_loader import load_tool


def _tool():
    return load_tool('tools/misc/browse_points.py')


def _args(tmp_path, **extra):
    defaults = dict(
        ann_file=str(tmp_path / 'a.json'),
        img_dir=str(tmp_path),
        seg_dir=None,
        seg_suffix='.png',
        show_masks=False,
        no_names=False,
        classes=None)
    defaults.update(extra)
    return argparse.Namespace(**defaults)


def _write(tmp_path, categories, height=4, width=6, exif=None):
    """A JPEG stored as 6 x 4 (W x H), optionally EXIF-rotated, and its
    json with one point per category."""
    stored = np.full((4, 6, 3), 128, np.uint8)
    img = Image.fromarray(stored)
    if exif is None:
        img.save(tmp_path / 'a.jpg', quality=100)
    else:
        tags = Image.Exif()
        tags[274] = exif
        img.save(tmp_path / 'a.jpg', quality=100, exif=tags)
    anns = [
        dict(id=k + 1, image_id=1, category_id=c['id'], point=[0.5, 0.5 + k],
             bbox=[0, 0, 1, 1], area=1, iscrowd=0)
        for k, c in enumerate(categories)
    ]
    with open(tmp_path / 'a.json', 'w') as f:
        json.dump(
            dict(
                images=[
                    dict(id=1, file_name='a.jpg', height=height, width=width)
                ],
                annotations=anns,
                categories=categories), f)
    return COCO(str(tmp_path / 'a.json'))


def _capture(monkeypatch, tool):
    seen = {}

    def fake(img, points, labels, class_names=None, ignored=None):
        seen.update(img=img, labels=labels.tolist(), names=class_names)
        return img

    monkeypatch.setattr(tool, 'overlay_points', fake)
    return seen


def test_labels_follow_the_json_category_order(tmp_path, monkeypatch):
    """Category ids [7, 3] listed in that order: label 0 is id 7 (the
    training rule), not the smallest id."""
    tool = _tool()
    seen = _capture(monkeypatch, tool)
    coco = _write(tmp_path, [dict(id=7, name='x'), dict(id=3, name='y')])
    tool.draw_image(coco, 1, _args(tmp_path))
    assert seen['labels'] == [0, 1] and seen['names'] == ['x', 'y']
    # --classes: other categories are not drawn; a wrong order is refused
    tool.draw_image(coco, 1, _args(tmp_path, classes=['y']))
    assert seen['labels'] == [0] and seen['names'] == ['y']
    with pytest.raises(ValueError, match='order'):
        tool.draw_image(coco, 1, _args(tmp_path, classes=['y', 'x']))


def test_exif_image_and_palette_map_are_read_by_the_rules(
        tmp_path, monkeypatch):
    tool = _tool()
    seen = _capture(monkeypatch, tool)
    coco = _write(tmp_path, [dict(id=1, name='x')], height=6, width=4,
                  exif=6)
    seg = np.zeros((6, 4), np.uint8)
    seg[0, 0] = 1
    pal = Image.fromarray(seg, 'P')
    pal.putpalette([0, 0, 0, 200, 10, 10] + [0] * 762)
    (tmp_path / 'maps').mkdir()
    pal.save(tmp_path / 'maps' / 'a.png')
    tool.draw_image(coco, 1, _args(tmp_path, seg_dir=str(tmp_path / 'maps')))
    assert seen['img'].shape == (6, 4, 3)  # upright, as in training
    # the palette index 1 (class 0) is painted, the rest is untouched
    assert not np.array_equal(seen['img'][0, 0], [128, 128, 128])
    assert (np.abs(seen['img'][1:].astype(int) - 128) <= 1).all()
