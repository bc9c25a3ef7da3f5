# Copyright (c) p2seg_mm contributors. All rights reserved.
import math

import numpy as np
import pytest

from p2seg_mm.models.task_modules.target_generators.static_s2i import (
    make_center_heatmap, make_static_offsets)


def _pixel_centres(shape):
    ii, jj = np.mgrid[:shape[0], :shape[1]]
    return jj + 0.5, ii + 0.5


def test_heatmap_peak_and_gaussian_values():
    points = np.array([[10.3, 7.8]], dtype=np.float32)  # pixel (7, 10)
    heat = make_center_heatmap(points, np.array([1]), 2, (32, 32), sigma=2.)
    assert heat.shape == (2, 32, 32) and heat.dtype == np.float32
    assert heat[1, 7, 10] == 1.0
    assert heat.max() == 1.0
    assert np.argwhere(heat[1] == 1.0).tolist() == [[7, 10]]
    assert not heat[0].any()
    # distance 3 along x, and distance 5 (3-4-5) diagonally
    assert heat[1, 7, 13] == pytest.approx(math.exp(-9 / 8), rel=1e-6)
    assert heat[1, 11, 13] == pytest.approx(math.exp(-25 / 8), rel=1e-6)
    # window radius ceil(3 sigma) + 1 = 7: inside > 0, outside exactly 0
    assert heat[1, 7, 17] == pytest.approx(math.exp(-49 / 8), rel=1e-6)
    assert heat[1, 7, 18] == 0 and heat[1, 15, 10] == 0


def test_heatmap_release_window_and_border_clip():
    heat = make_center_heatmap(
        np.array([[0.5, 0.5]]), np.array([0]), 1, (50, 50), sigma=6.)
    assert heat[0, 0, 0] == 1.0
    # sigma 6 -> radius 19 -> 39x39 window (6 sigma + 3), clipped at 0
    assert (heat[0] > 0).sum() == 20 * 20
    assert heat[0, 0, 19] > 0 and heat[0, 0, 20] == 0


def test_heatmap_same_class_points_merge_by_max():
    points = np.array([[2.5, 2.5], [5.5, 2.5]])
    heat = make_center_heatmap(points, np.array([0, 0]), 1, (8, 8), 1.)
    assert heat[0, 2, 2] == 1.0 and heat[0, 2, 5] == 1.0
    # pixel (2, 3): distance 1 to the first point, 2 to the second
    assert heat[0, 2, 3] == pytest.approx(math.exp(-0.5), rel=1e-6)
    empty = make_center_heatmap(np.zeros((0, 2)), np.zeros(0), 3, (4, 5))
    assert empty.shape == (3, 4, 5) and not empty.any()


def test_heatmap_rejects_bad_points():
    with pytest.raises(ValueError, match='outside the image'):
        make_center_heatmap(np.array([[8.0, 1.0]]), np.array([0]), 1, (8, 8))
    with pytest.raises(ValueError, match=r'\[0, 2\)'):
        make_center_heatmap(np.array([[1.0, 1.0]]), np.array([2]), 2, (8, 8))


def test_offsets_single_point_points_exactly_to_point():
    seg = np.zeros((16, 16), np.uint8)
    seg[2:10, 3:11] = 1  # class 0, 64 px
    seg[12:, :] = 255
    point = np.array([[6.3, 5.5]], np.float32)
    offset, weight = make_static_offsets(seg, point, np.array([0]))
    assert offset.shape == (2, 16, 16) and weight.shape == (1, 16, 16)
    assert offset.dtype == np.float32 and weight.dtype == np.float32
    cx, cy = _pixel_centres(seg.shape)
    inside = seg == 1
    np.testing.assert_allclose((cx + offset[0])[inside], 6.3, rtol=1e-6)
    np.testing.assert_array_equal((cy + offset[1])[inside], 5.5)
    np.testing.assert_array_equal(weight[0], inside.astype(np.float32))
    assert not offset[:, ~inside].any()
    # one pixel by hand: (i, j) = (2, 3), centre (3.5, 2.5)
    assert offset[1, 2, 3] == 3.0
    assert offset[0, 2, 3] == pytest.approx(2.8, rel=1e-6)


def test_offsets_min_area_and_pointless_component():
    seg = np.zeros((16, 16), np.uint8)
    seg[0:7, 0:7] = 1  # 49 px, holds a point
    seg[9:16, 9:16] = 1  # 49 px, no point
    point = np.array([[3.5, 3.5]])
    _, weight = make_static_offsets(seg, point, np.array([0]))
    assert not weight.any()  # 49 < 50
    _, weight = make_static_offsets(seg, point, np.array([0]), min_area=49)
    assert weight[0, 0:7, 0:7].all()
    assert weight.sum() == 49  # the point-less component stays at 0


def test_offsets_point_of_other_class_does_not_count():
    seg = np.zeros((10, 10), np.uint8)
    seg[:, :] = 2  # class 1 everywhere
    _, weight = make_static_offsets(seg, np.array([[4.5, 4.5]]), np.array([0]))
    assert not weight.any()


def test_offsets_eight_connectivity():
    seg = np.zeros((16, 16), np.uint8)
    seg[0:8, 0:8] = 1
    seg[8:16, 8:16] = 1  # touches the first block only at a corner
    offset, weight = make_static_offsets(seg, np.array([[2.5, 2.5]]),
                                         np.array([0]))
    assert weight.sum() == 128
    assert offset[0, 15, 15] == 2.5 - 15.5 and offset[1, 15, 15] == -13.0


def test_offsets_two_points_dis_group_split():
    seg = np.zeros((8, 16), np.uint8)
    seg[:, :] = 1
    points = np.array([[3.5, 3.5], [12.5, 3.5]])
    labels = np.array([0, 0])
    offset, weight = make_static_offsets(seg, points, labels)
    assert weight.all()
    cx, cy = _pixel_centres(seg.shape)
    target_x = np.where(np.arange(16) <= 7, 3.5, 12.5)[None].repeat(8, 0)
    np.testing.assert_array_equal(cx + offset[0], target_x)
    np.testing.assert_array_equal(cy + offset[1], np.full((8, 16), 3.5))
    offset, weight = make_static_offsets(seg, points, labels, dis_group=False)
    assert not weight.any() and not offset.any()


def test_offsets_to_centroid_release_flag():
    seg = np.zeros((12, 14), np.uint8)
    seg[2:10, 3:13] = 3  # class 2; cv2 centroid (x, y) = (7.5, 5.5)
    offset, weight = make_static_offsets(
        seg, np.array([[4.2, 3.7]]), np.array([2]), offset_to='centroid')
    cx, cy = _pixel_centres(seg.shape)
    inside = seg == 3
    # truncated centroid (7, 5) -> its pixel centre (7.5, 5.5)
    np.testing.assert_array_equal((cx + offset[0])[inside], 7.5)
    np.testing.assert_array_equal((cy + offset[1])[inside], 5.5)
    assert weight.sum() == inside.sum()
    with pytest.raises(ValueError, match='offset_to'):
        make_static_offsets(seg, np.zeros((0, 2)), np.zeros(0), offset_to='x')


def test_offsets_empty_and_bad_input():
    seg = np.ones((6, 6), np.uint8)
    offset, weight = make_static_offsets(seg, np.zeros((0, 2)), np.zeros(0))
    assert offset.shape == (2, 6, 6) and not weight.any()
    with pytest.raises(ValueError, match='outside the image'):
        make_static_offsets(seg, np.array([[-0.1, 2.0]]), np.array([0]))
