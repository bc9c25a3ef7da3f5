# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Property test: after any chain of point-aware geometric transforms, every
kept point still lies on its own instance, and every point outside the image
is ignored.

Instances are discs drawn into an instance-id map that travels as
``gt_seg_map`` (so mmdet moves it with nearest interpolation); each point is
the centre of a pixel at least ``MARGIN`` px inside its disc, so the
sub-pixel shifts of nearest-neighbour resizing cannot separate them.
"""
import cv2
import numpy as np

from p2seg_mm.datasets.transforms.geometric import (PointPad, PointRandomCrop,
                                                    PointRandomFlip,
                                                    PointRandomResize,
                                                    PointResize)

MARGIN = 4
NUM_TRIALS = 200


def _random_scene(rng):
    """Image, instance-id map, points and their instance ids."""
    h, w = rng.integers(40, 100, size=2)
    ids = np.zeros((h, w), np.uint8)
    for inst_id in range(1, rng.integers(2, 7)):
        radius = int(rng.integers(6, 14))
        cx, cy = rng.integers(0, w), rng.integers(0, h)
        cv2.circle(ids, (int(cx), int(cy)), radius, inst_id, thickness=-1)
    points, point_ids = [], []
    for inst_id in np.unique(ids[ids > 0]):
        mask = (ids == inst_id).astype(np.uint8)
        # distance to the nearest pixel outside the instance (or the border)
        padded = np.pad(mask, 1)
        dist = cv2.distanceTransform(padded, cv2.DIST_L2, 5)[1:-1, 1:-1]
        rows, cols = np.nonzero(dist > MARGIN)
        if len(rows) == 0:
            continue
        k = rng.integers(len(rows))
        points.append((cols[k] + 0.5, rows[k] + 0.5))
        point_ids.append(inst_id)
    img = rng.integers(0, 255, size=(h, w, 3)).astype(np.uint8)
    return img, ids, np.array(points, np.float32).reshape(-1, 2), point_ids


def _random_resize(rng, shape):
    """A resize by a factor in about [0.56, 1.95] (nearest-neighbour shifts
    of at most 2 px, below ``MARGIN``)."""
    h, w = shape
    if rng.integers(2):
        return PointRandomResize(
            scale=(int(w * rng.uniform(0.8, 1.5)),
                   int(h * rng.uniform(0.8, 1.5))),
            ratio_range=(0.7, 1.3),
            keep_ratio=bool(rng.integers(2)))
    return PointResize(
        scale_factor=float(rng.uniform(0.6, 1.9)), keep_ratio=True)


def _random_exact_transform(rng, shape):
    """A transform that moves pixels without resampling."""
    h, w = shape
    kind = rng.integers(3)
    if kind == 0:
        crop_w = int(rng.integers(max(1, w // 3), w + 10))
        crop_h = int(rng.integers(max(1, h // 3), h + 10))
        return PointRandomCrop(crop_size=(crop_w, crop_h))
    if kind == 1:
        directions = ['horizontal', 'vertical', 'diagonal']
        return PointRandomFlip(prob=0.5, direction=directions[rng.integers(3)])
    return PointPad(
        size_divisor=int(rng.integers(2, 17)), pad_val=dict(img=0, seg=255))


def _check(results, point_ids, ever_outside):
    h, w = results['img_shape']
    assert results['img'].shape[:2] == (h, w)
    assert results['gt_seg_map'].shape == (h, w)
    points, flags = results['gt_points'], results['gt_ignore_flags']
    assert points.shape == (len(point_ids), 2) and points.dtype == np.float32
    x, y = points[:, 0], points[:, 1]
    outside = (x < 0) | (x >= w) | (y < 0) | (y >= h)
    ever_outside |= outside
    # flagged exactly when the point left the image at some step
    np.testing.assert_array_equal(flags, ever_outside)
    for i in np.flatnonzero(~flags):
        col, row = int(np.floor(x[i])), int(np.floor(y[i]))
        assert results['gt_seg_map'][row, col] == point_ids[i], (
            f'point {i} at ({x[i]}, {y[i]}) is not on instance '
            f'{point_ids[i]}')
    return ever_outside


def test_points_stay_on_their_instances():
    rng = np.random.default_rng(2024)
    np.random.seed(2024)  # mmcv/mmdet transforms draw from np.random
    num_kept = num_ignored = 0
    for _ in range(NUM_TRIALS):
        img, ids, points, point_ids = _random_scene(rng)
        results = dict(
            img=img,
            img_shape=img.shape[:2],
            ori_shape=img.shape[:2],
            gt_seg_map=ids,
            gt_points=points,
            gt_points_labels=np.zeros(len(points), np.int64),
            gt_ignore_flags=np.zeros(len(points), bool))
        ever_outside = np.zeros(len(points), bool)
        # one resampling resize at a random place among exact transforms
        num_steps = int(rng.integers(1, 6))
        resize_step = int(rng.integers(num_steps))
        for step in range(num_steps):
            if step == resize_step:
                transform = _random_resize(rng, results['img_shape'])
            else:
                transform = _random_exact_transform(rng, results['img_shape'])
            results = transform(results)
            ever_outside = _check(results, point_ids, ever_outside)
        num_kept += int((~results['gt_ignore_flags']).sum())
        num_ignored += int(results['gt_ignore_flags'].sum())
    # the chains must exercise both outcomes
    assert num_kept > 50 and num_ignored > 5
