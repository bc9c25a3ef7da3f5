# Copyright (c) p2seg_mm contributors. All rights reserved.
"""The pseudo-map reading rule (p2seg_mm.datasets.seg_map_io); the
transform that uses it: test_transforms/test_loading.py."""
import numpy as np
from PIL import Image

from p2seg_mm.datasets.seg_map_io import (IGNORE_INDEX, allowed_seg_values,
                                          invalid_seg_values, read_seg_map)


def test_invalid_and_allowed_values():
    values = np.array([0, 1, 2, 3, 254, 255, 256])
    assert invalid_seg_values(values, 2).tolist() == [3, 254, 256]
    assert invalid_seg_values(values, 254).tolist() == [256]
    assert invalid_seg_values(values, None).tolist() == [256]
    assert invalid_seg_values(np.array([-1, 0]), None).tolist() == [-1]
    assert invalid_seg_values(np.array([], np.uint8), 2).size == 0
    assert IGNORE_INDEX == 255
    assert allowed_seg_values(2) == ('0 (background), 1..2 (class + 1) and '
                                     '255 (ignore)')
    assert allowed_seg_values(None) == '0..255'


def _save(path, seg, orientation=None):
    img = Image.fromarray(seg, 'L')
    if orientation is None:
        img.save(path)
        return
    exif = img.getexif()
    exif[274] = orientation
    img.save(path, exif=exif)


def test_read_seg_map_upright_and_as_stored(tmp_path):
    seg = np.arange(12, dtype=np.uint8).reshape(3, 4)
    _save(tmp_path / 'plain.png', seg)
    out = read_seg_map(str(tmp_path / 'plain.png'))
    np.testing.assert_array_equal(out, seg)
    assert out.dtype == np.uint8
    # orientation 6 (rotate 90 clockwise) is applied, as for images
    _save(tmp_path / 'rot.png', seg, orientation=6)
    np.testing.assert_array_equal(
        read_seg_map(str(tmp_path / 'rot.png')), np.rot90(seg, -1))
    # a tag outside 1..8 means no rotation (as the image loading rule)
    _save(tmp_path / 'odd.png', seg, orientation=9)
    np.testing.assert_array_equal(read_seg_map(str(tmp_path / 'odd.png')), seg)
