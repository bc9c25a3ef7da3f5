# Copyright (c) p2seg_mm contributors. All rights reserved.
import os

import cv2
import numpy as np
import pytest

from p2seg_mm.visualization.overlay import (IGNORE_COLOR, class_color,
                                            instance_colors, overlay_instances,
                                            overlay_points, overlay_semantic,
                                            save_png)


def _image(h=24, w=32, value=100):
    return np.full((h, w, 3), value, np.uint8)


def test_overlay_semantic_blend():
    img = _image()
    seg = np.zeros((24, 32), np.uint8)
    seg[2:6, 2:6] = 1
    seg[10:12, 10:12] = 2
    seg[20, 20] = 255
    out = overlay_semantic(img, seg, alpha=0.5)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert (img == 100).all()  # input untouched
    np.testing.assert_array_equal(out[seg == 0], img[seg == 0])
    expect1 = np.round(0.5 * 100 + 0.5 * np.array(class_color(0)))
    np.testing.assert_array_equal(out[3, 3], expect1)
    expect2 = np.round(0.5 * 100 + 0.5 * np.array(class_color(1)))
    np.testing.assert_array_equal(out[10, 10], expect2)
    np.testing.assert_array_equal(out[20, 20],
                                  np.round(50 + 0.5 * np.array(IGNORE_COLOR)))
    assert class_color(0) != class_color(1)
    with pytest.raises(ValueError, match='seg_map shape'):
        overlay_semantic(img, seg[:-1])
    with pytest.raises(ValueError, match='uint8'):
        overlay_semantic(img.astype(np.float32), seg)


def test_overlay_points_markers():
    img = _image()
    pts = np.array([[5.5, 5.5], [20.5, 12.5], [26.5, 19.5]], np.float32)
    out = overlay_points(
        img,
        pts,
        np.array([0, 1, 0]),
        class_names=['cell', 'nucleus'],
        ignored=np.array([False, False, True]))
    np.testing.assert_array_equal(out[5, 5], class_color(0))
    np.testing.assert_array_equal(out[12, 20], class_color(1))
    assert (out[19, 26] == 100).all()  # ignored: hollow ring, centre kept
    assert not (out[19, 20:32] == 100).all()  # but the ring is drawn
    assert (out[23, 0] == 100).all()  # far away pixels unchanged
    with pytest.raises(ValueError, match='labels'):
        overlay_points(img, pts, np.array([0, 1]))
    empty = overlay_points(img, np.zeros((0, 2)), np.zeros(0))
    np.testing.assert_array_equal(empty, img)


def test_overlay_instances_colours_and_contours():
    img = _image(value=0)
    masks = np.zeros((2, 24, 32), bool)
    masks[0, 4:12, 4:12] = True
    masks[1, 4:12, 14:30] = True
    out = overlay_instances(img, masks, np.array([0, 1]))
    assert (out[13:, :] == 0).all()  # outside masks and captions
    assert (out[10, 6] != out[10, 24]).any()  # distinct instance colours
    colors = instance_colors(2)
    np.testing.assert_array_equal(out[11, 6], colors[0])  # contour pixel
    np.testing.assert_array_equal(out[10, 6],
                                  np.round(0.4 *
                                           colors[0].astype(float)))  # fill
    pts = np.array([[8.5, 8.5], [20.5, 8.5]])
    out2 = overlay_instances(
        img,
        masks,
        np.array([0, 1]), ['a', 'b'],
        scores=[0.9, 0.5],
        points=pts)
    np.testing.assert_array_equal(out2[8, 20], colors[1])  # point marker
    assert (out2[13:, :] == 0).all()
    with pytest.raises(ValueError, match='masks must be'):
        overlay_instances(img, masks[:, :-1], np.array([0, 1]))


def test_save_png_roundtrip_atomic(tmp_path):
    rgb = np.zeros((5, 7, 3), np.uint8)
    rgb[..., 0] = 200  # red
    path = tmp_path / 'a' / 'b' / 'x.png'
    save_png(str(path), rgb)
    bgr = cv2.imread(str(path))
    np.testing.assert_array_equal(bgr[..., 2], 200)
    np.testing.assert_array_equal(bgr[..., :2], 0)
    gray = np.arange(35, dtype=np.uint8).reshape(5, 7)
    save_png(str(tmp_path / 'a' / 'b' / 'g.png'), gray)
    np.testing.assert_array_equal(
        cv2.imread(str(tmp_path / 'a' / 'b' / 'g.png'), cv2.IMREAD_UNCHANGED),
        gray)
    assert sorted(os.listdir(tmp_path / 'a' / 'b')) == ['g.png', 'x.png']
    with pytest.raises(ValueError, match='uint8'):
        save_png(str(tmp_path / 'f.png'), rgb.astype(np.float32))
    with pytest.raises(ValueError):
        save_png(str(tmp_path / 'f.png'), np.zeros((2, 2, 4), np.uint8))


def test_overlay_instances_without_instances():
    from p2seg_mm.visualization.overlay import (instance_colors,
                                                overlay_instances)
    assert instance_colors(0).shape == (0, 3)
    image = np.zeros((6, 7, 3), np.uint8)
    out = overlay_instances(image, np.zeros((0, 6, 7), bool), [])
    assert out.shape == image.shape


def test_overlay_instances_summary_instead_of_many_captions():
    image = np.zeros((80, 120, 3), np.uint8)
    masks = np.zeros((3, 80, 120), bool)
    for k in range(3):
        masks[k, 50:60, 10 + 35 * k:25 + 35 * k] = True
    labels = np.array([0, 1, 1])
    names = ('ecoli', 'hela')
    with_captions = overlay_instances(image, masks, labels, names)
    summary = overlay_instances(image, masks, labels, names, max_captions=2)
    band = (slice(38, 49), slice(0, 120))  # just above the masks
    assert with_captions[band].any()  # captions above each mask
    assert not summary[band].any()  # no per-instance caption
    assert summary[:16].any() and not with_captions[:16].any()  # counts
    outside = np.ones((80, 120), bool)
    outside[:49] = False
    np.testing.assert_array_equal(summary[outside], with_captions[outside])


def test_save_png_permissions_follow_umask(tmp_path):
    old = os.umask(0o022)
    try:
        save_png(str(tmp_path / 'p.png'), np.zeros((2, 2), np.uint8))
    finally:
        os.umask(old)
    assert (os.stat(tmp_path / 'p.png').st_mode & 0o777) == 0o644


def test_overlay_instances_summary_when_captions_cover_a_small_image():
    """Six captions with scores would cover most of a 96 x 96 crop: the
    overlay writes the count line instead (as with too many instances);
    on a 512 x 512 frame the same instances keep their captions."""
    names = ('hela_nucleus', )
    labels = np.zeros(6, np.int64)
    scores = np.full(6, 0.93)

    def draw(size, **kw):
        masks = np.zeros((6, size, size), bool)
        for k in range(6):
            masks[k, 60:70, 5 + 14 * k:15 + 14 * k] = True
        return overlay_instances(np.zeros((size, size, 3), np.uint8), masks,
                                 labels, names, scores=scores, **kw)

    np.testing.assert_array_equal(draw(96), draw(96, max_captions=0))
    assert not np.array_equal(draw(512), draw(512, max_captions=0))
