# Copyright (c) p2seg_mm contributors. All rights reserved.
"""The loading rule (p2seg_mm/datasets/image_io.py) on fabricated files."""
import logging

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image, ImageOps

from p2seg_mm.datasets import image_io
from p2seg_mm.datasets.image_io import (apply_orientation, read_image_file,
                                        read_image_size)

RNG = np.random.RandomState(0)
RGB = RNG.randint(0, 256, (6, 10, 3)).astype(np.uint8)


@pytest.fixture(autouse=True)
def _fresh_warnings():
    image_io._WARNED.clear()
    yield
    image_io._WARNED.clear()


@pytest.fixture
def warnings_seen(monkeypatch):
    seen = []
    monkeypatch.setattr(image_io, 'print_log',
                        lambda msg, logger, level: seen.append((msg, level)))
    return seen


def _stretch(values, low=1.0, high=99.8):
    """The rule's stretch, written out: percentiles -> 0..255, rounded."""
    lo, hi = np.percentile(values.astype(np.float64), [low, high])
    return np.round(np.clip((values - lo) / (hi - lo), 0, 1) * 255).astype(
        np.uint8)


@pytest.mark.parametrize('name, array, mode', [
    ('grey.png', RGB[..., 0], 'L'),
    ('rgb.png', RGB, 'RGB'),
    ('rgba.png', np.dstack([RGB, RGB[..., :1]]), 'RGBA'),
    ('rgb.jpg', RGB, 'RGB'),
    ('rgb.bmp', RGB, 'RGB'),
])
def test_8bit_equals_mmcv_loader(tmp_path, name, array, mode):
    """8-bit files give exactly what cv2.imread(IMREAD_COLOR) gives (the
    array mmcv's LoadImageFromFile used): no change for existing data."""
    path = str(tmp_path / name)
    Image.fromarray(array, mode).save(path)
    np.testing.assert_array_equal(read_image_file(path, 'bgr'),
                                  cv2.imread(path, cv2.IMREAD_COLOR))


def test_palette_png(tmp_path):
    index = RGB[..., 0] % 4
    img = Image.fromarray(index, 'L').convert('P')
    img.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9] + [0] * 756)
    img.save(tmp_path / 'p.png')
    colours = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [9, 9, 9]])
    np.testing.assert_array_equal(read_image_file(str(tmp_path / 'p.png')),
                                  colours[index])


@pytest.mark.parametrize('writer', ['png', 'tif'])
def test_16bit_is_stretched_per_image(tmp_path, writer):
    """The issue's case: values 0..235 in 16 bits were read as black."""
    values = (np.arange(64).reshape(8, 8) * 235 // 63).astype(np.uint16)
    path = str(tmp_path / f'a16.{writer}')
    if writer == 'png':
        cv2.imwrite(path, values)
    else:
        tifffile.imwrite(path, values)
    grey = read_image_file(path, 'grey')
    np.testing.assert_array_equal(grey, _stretch(values))
    assert grey.max() == 255 and grey.min() == 0
    # other percentiles: the stretch follows them
    np.testing.assert_array_equal(
        read_image_file(path, 'grey', percentiles=(0, 100)),
        _stretch(values, 0, 100))
    assert read_image_size(path) == (8, 8)


def test_float_tiff_with_nan(tmp_path):
    values = np.linspace(-1, 1, 40, dtype=np.float32).reshape(5, 8)
    values[0, 0] = np.nan
    tifffile.imwrite(tmp_path / 'f.tif', values)
    grey = read_image_file(str(tmp_path / 'f.tif'), 'grey')
    finite = values[np.isfinite(values)]
    lo, hi = np.percentile(finite.astype(np.float64), [1.0, 99.8])
    assert grey[0, 0] == 0
    expected = np.round(np.clip((values[0, 1:] - lo) / (hi - lo), 0, 1) *
                        255).astype(np.uint8)
    np.testing.assert_array_equal(grey[0, 1:], expected)


def test_multi_plane_tiff_needs_channel(tmp_path):
    planes = RNG.randint(0, 4000, (3, 6, 10)).astype(np.uint16)
    path = str(tmp_path / 'cyx.tif')
    tifffile.imwrite(path, planes, photometric='minisblack',
                     metadata={'axes': 'CYX'})
    with pytest.raises(ValueError, match=r"cyx.tif holds 3 planes \(axes "
                       r"'CYX'.*channel=K.*--channel K"):
        read_image_file(path)
    np.testing.assert_array_equal(read_image_file(path, 'grey', channel=2),
                                  _stretch(planes[2]))
    with pytest.raises(ValueError, match='channel=3 is out of range 0..2'):
        read_image_file(path, channel=3)
    # a multi-page stack (one page per frame) follows the same rule
    tifffile.imwrite(tmp_path / 'pages.tif', planes, photometric='minisblack')
    assert read_image_file(str(tmp_path / 'pages.tif'), 'grey',
                           channel=1).shape == (6, 10)
    # RGB TIFF: colour, no channel needed
    tifffile.imwrite(tmp_path / 'rgb.tif', RGB, photometric='rgb')
    np.testing.assert_array_equal(read_image_file(str(tmp_path / 'rgb.tif')),
                                  RGB)


@pytest.mark.parametrize('orientation', range(1, 9))
def test_exif_orientation_applied_like_pil_and_opencv(tmp_path, orientation):
    img = Image.fromarray(RGB)
    exif = img.getexif()
    exif[274] = orientation
    path = str(tmp_path / f'o{orientation}.jpg')
    img.save(path, exif=exif, quality=95)
    got = read_image_file(path)
    with Image.open(path) as pil:
        expected = np.array(ImageOps.exif_transpose(pil))
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(got[..., ::-1], cv2.imread(path))
    size = (10, 6) if orientation >= 5 else (6, 10)
    assert read_image_size(path) == size


def test_exif_rotation_warns_once(tmp_path, warnings_seen):
    img = Image.fromarray(RGB)
    exif = img.getexif()
    exif[274] = 6
    img.save(tmp_path / 'r.jpg', exif=exif)
    for _ in range(2):
        read_image_file(str(tmp_path / 'r.jpg'))
    assert len(warnings_seen) == 1
    msg, level = warnings_seen[0]
    assert level == logging.WARNING
    assert 'r.jpg carries EXIF orientation 6' in msg and '(6 x 10' in msg


def test_tiff_orientation_tag(tmp_path):
    tifffile.imwrite(tmp_path / 'o.tif', RGB, photometric='rgb',
                     extratags=[(274, 'H', 1, 3, True)])
    np.testing.assert_array_equal(read_image_file(str(tmp_path / 'o.tif')),
                                  apply_orientation(RGB, 3))


def test_collapsed_dynamic_range_warns(tmp_path, warnings_seen):
    dark = np.zeros((6, 10), np.uint8)
    dark[2, 3] = 3
    cv2.imwrite(str(tmp_path / 'dark.png'), dark)
    read_image_file(str(tmp_path / 'dark.png'))
    assert len(warnings_seen) == 1
    assert 'dark.png (uint8) spans only grey levels 0..3' in \
        warnings_seen[0][0]
    # sparse bright objects: percentiles coincide, min..max used, warned
    sparse = np.full((100, 100), 100, np.uint16)
    sparse[0, 0] = 900
    cv2.imwrite(str(tmp_path / 'sparse.png'), sparse)
    grey = read_image_file(str(tmp_path / 'sparse.png'), 'grey')
    assert grey[0, 0] == 255 and grey[1, 1] == 0
    assert 'stretching min..max (100..900)' in warnings_seen[1][0]
    # a constant 16-bit image: black, warned
    cv2.imwrite(str(tmp_path / 'flat.png'), np.full((4, 4), 7, np.uint16))
    assert read_image_file(str(tmp_path / 'flat.png')).max() == 0
    assert 'flat.png (uint16) spans only grey levels 0..0' in \
        warnings_seen[2][0]
    # a normal image: no warning
    cv2.imwrite(str(tmp_path / 'ok.png'), RGB)
    read_image_file(str(tmp_path / 'ok.png'))
    assert len(warnings_seen) == 3


@pytest.mark.parametrize('ext', ['jpg', 'png'])
def test_truncated_file_is_named(tmp_path, ext):
    path = tmp_path / f'full.{ext}'
    cv2.imwrite(str(path), RNG.randint(0, 256, (64, 64, 3)).astype(np.uint8))
    data = path.read_bytes()
    cut = tmp_path / f'cut.{ext}'
    cut.write_bytes(data[:len(data) // 2])
    with pytest.raises(ValueError, match=f'image .*cut.{ext} is truncated or '
                       'corrupt.*Fix'):
        read_image_file(str(cut))


def test_trailing_data_after_jpeg_end_is_fine(tmp_path):
    """Motion photos append a video after the JPEG's end marker."""
    path = tmp_path / 'motion.jpg'
    cv2.imwrite(str(path), RGB)
    path.write_bytes(path.read_bytes() + b'ftypmp42' + bytes(100))
    assert read_image_file(str(path)).shape == (6, 10, 3)


def test_not_an_image_and_missing(tmp_path):
    (tmp_path / 'x.png').write_bytes(b'hello')
    with pytest.raises(ValueError, match='x.png could not be decoded'):
        read_image_file(str(tmp_path / 'x.png'))
    with pytest.raises(FileNotFoundError, match='nope.png does not exist'):
        read_image_file(str(tmp_path / 'nope.png'))
    with pytest.raises(ValueError, match='0 <= low < high <= 100'):
        read_image_file(str(tmp_path / 'x.png'), percentiles=(50, 10))
