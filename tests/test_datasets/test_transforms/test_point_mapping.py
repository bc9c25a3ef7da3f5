# Copyright (c) p2seg_mm contributors. All rights reserved.
"""The coordinate rules of p2seg_mm.datasets.transforms.point_mapping; the
registered transforms that use them: test_geometric.py."""
import numpy as np
import pytest

from p2seg_mm.datasets.transforms.point_mapping import flip_points


def test_flip_points_pixel_exact_inside_plain_outside():
    hw = (4, 10)  # (H, W)
    points = np.array([[0.5, 1.5], [0.0, 0.0], [3.0, 3.0], [-2.0, 1.0],
                       [12.0, 5.0]], np.float32)
    out = flip_points(points, hw, 'horizontal')
    assert out.dtype == np.float32 and out.shape == (5, 2)
    # a pixel centre is mirrored exactly, y untouched
    assert out[0].tolist() == [9.5, 1.5]
    # a point on a pixel's left border stays in the mirrored pixel
    # (W - x would be the right border W - j, in the next pixel)
    assert out[1, 0] == np.nextafter(np.float32(10), np.float32(0))
    assert out[2, 0] == np.nextafter(np.float32(7), np.float32(0))
    np.testing.assert_array_equal(out[:3, 1], points[:3, 1])
    # points outside the image: the plain W - x
    assert out[3].tolist() == [12.0, 1.0] and out[4].tolist() == [-2.0, 5.0]
    # vertical flips y by H; diagonal both
    assert flip_points(points[:1], hw, 'vertical').tolist() == [[0.5, 2.5]]
    assert flip_points(points[:1], hw, 'diagonal').tolist() == [[9.5, 2.5]]


def test_flip_points_twice_keeps_the_pixel_and_refuses_directions():
    rng = np.random.default_rng(0)
    points = np.concatenate([
        rng.uniform(0, 10, (50, 1)), rng.uniform(0, 4, (50, 1))
    ], 1).astype(np.float32)
    points[:10] = np.floor(points[:10])  # on pixel borders
    twice = flip_points(flip_points(points, (4, 10), 'diagonal'), (4, 10),
                        'diagonal')
    np.testing.assert_array_equal(np.floor(twice), np.floor(points))
    assert flip_points(np.zeros((0, 2), np.float32), (4, 10),
                       'horizontal').shape == (0, 2)
    with pytest.raises(ValueError, match='unknown direction'):
        flip_points(points, (4, 10), 'up')
