# Copyright (c) p2seg_mm contributors. All rights reserved.
import numpy as np
import pytest
from mmcv.transforms import Resize as MMCVResize
from mmengine.registry import DefaultScope

from mmdet.datasets.transforms import Resize as MMDetResize
from mmdet.registry import TRANSFORMS
from mmdet.structures.bbox import HorizontalBoxes
from p2seg_mm.datasets.transforms.geometric import (
    PointPad, PointRandomChoiceResize, PointRandomCrop, PointRandomFlip,
    PointRandomResize, PointResize, PointTransformMixin)


def _results(h=8, w=10, points=((0.5, 1.5), (9.5, 7.5)), flags=None):
    points = np.array(points, np.float32).reshape(-1, 2)
    results = dict(
        img=np.zeros((h, w, 3), np.uint8),
        img_shape=(h, w),
        ori_shape=(h, w),
        gt_seg_map=np.zeros((h, w), np.uint8),
        gt_points=points,
        gt_points_labels=np.arange(len(points), dtype=np.int64))
    if flags is not None:
        results['gt_ignore_flags'] = np.array(flags, bool)
    return results


def test_flip_continuous_convention():
    flip = TRANSFORMS.build(dict(type='PointRandomFlip', prob=1.0))
    assert isinstance(flip, PointRandomFlip)
    results = flip(_results(points=[(0.5, 1.5), (9.99, 0.0)]))
    np.testing.assert_allclose(
        results['gt_points'], [[9.5, 1.5], [0.01, 0.0]], atol=1e-5)
    np.testing.assert_array_equal(results['gt_ignore_flags'], [0, 0])
    flip = PointRandomFlip(prob=1.0, direction='vertical')
    results = flip(_results(points=[(0.5, 1.5)]))
    np.testing.assert_allclose(results['gt_points'], [[0.5, 6.5]])
    flip = PointRandomFlip(prob=1.0, direction='diagonal')
    results = flip(_results(points=[(0.5, 1.5)]))
    np.testing.assert_allclose(results['gt_points'], [[9.5, 6.5]])


def test_flip_twice_is_identity_and_no_flip_is_noop():
    flip = PointRandomFlip(prob=1.0)
    results = flip(flip(_results()))
    np.testing.assert_allclose(results['gt_points'], _results()['gt_points'])
    results = PointRandomFlip(prob=0.0)(_results())
    assert results['flip'] is False
    np.testing.assert_array_equal(results['gt_points'],
                                  _results()['gt_points'])


def test_resize_times_two():
    resize = PointResize(scale_factor=2.0, keep_ratio=True)
    results = resize(_results(points=[(1.5, 2.5)]))
    assert results['img_shape'] == (16, 20)
    np.testing.assert_allclose(results['gt_points'], [[3.0, 5.0]])
    resize = PointResize(scale=(5, 2), keep_ratio=False)
    results = resize(_results(points=[(1.5, 2.5)]))
    assert results['img_shape'] == (2, 5)
    np.testing.assert_allclose(results['gt_points'], [[0.75, 0.625]])


def test_crop_offset_and_ignored_points():
    img = np.zeros((20, 30, 3), np.uint8)
    points = np.array([[x + 0.5, y + 0.5] for y in range(0, 20, 3)
                       for x in range(0, 30, 4)], np.float32)
    for i, (x, y) in enumerate(points.astype(int)):
        img[y, x] = i + 1  # marker under each point
    crop = TRANSFORMS.build(dict(type='PointRandomCrop', crop_size=(12, 7)))
    assert isinstance(crop, PointRandomCrop)
    for seed in range(5):
        np.random.seed(seed)
        results = _results(20, 30, points)
        results['img'] = img.copy()
        results = crop(results)
        assert results['img_shape'] == (7, 12)
        offset = -results['homography_matrix'][:2, 2]
        np.testing.assert_allclose(results['gt_points'], points - offset)
        # points are never dropped; the ones cropped away are ignored
        assert len(results['gt_points']) == len(points)
        assert len(results['gt_points_labels']) == len(points)
        x, y = results['gt_points'].T
        outside = (x < 0) | (x >= 12) | (y < 0) | (y >= 7)
        np.testing.assert_array_equal(results['gt_ignore_flags'], outside)
        assert 0 < (~outside).sum() < len(points)
        for i in np.flatnonzero(~outside):
            px, py = np.floor(results['gt_points'][i]).astype(int)
            assert results['img'][py, px, 0] == i + 1


def test_crop_keeps_existing_flags_and_handles_none():
    results = _results(flags=[True, False])
    results = PointRandomCrop(crop_size=(20, 20))(results)
    np.testing.assert_array_equal(results['gt_ignore_flags'], [True, False])
    # with boxes and none left in the crop, mmdet's RandomCrop gives None
    results = _results(20, 30)
    results['gt_bboxes'] = HorizontalBoxes(
        np.array([[0, 0, 1, 1]], np.float32))
    np.random.seed(0)
    crop = PointRandomCrop(crop_size=(5, 5))
    crop._rand_offset = lambda margin: (10, 10)
    assert crop(results) is None


def test_pad_keeps_points_and_flags():
    pad = TRANSFORMS.build(
        dict(type='PointPad', size=(16, 12), pad_val=dict(img=0, seg=255)))
    assert isinstance(pad, PointPad)
    results = pad(_results(flags=[False, True]))
    assert results['img_shape'] == (12, 16)
    assert results['gt_seg_map'][11, 15] == 255
    np.testing.assert_array_equal(results['gt_points'],
                                  _results()['gt_points'])
    np.testing.assert_array_equal(results['gt_ignore_flags'], [False, True])
    assert 'homography_matrix' not in results


def test_random_resize_uses_mmdet_resize():
    cfg = dict(
        type='PointRandomResize',
        scale=(20, 16),
        ratio_range=(0.5, 2.0),
        keep_ratio=True)
    resize = TRANSFORMS.build(cfg)
    assert isinstance(resize, PointRandomResize)
    assert isinstance(resize.resize, MMDetResize)
    assert resize.resize.keep_ratio and resize.ratio_range == (0.5, 2.0)
    # mmcv would build its own Resize (no homography) under another scope
    cfg.pop('type')
    with DefaultScope.overwrite_default_scope('mmengine'):
        assert isinstance(PointRandomResize(**cfg).resize, MMDetResize)
    for seed in range(4):
        np.random.seed(seed)
        results = resize(_results(points=[(1.5, 2.5), (9.9, 7.9)]))
        sx, sy = results['scale_factor']
        np.testing.assert_allclose(
            results['gt_points'], [[1.5 * sx, 2.5 * sy], [9.9 * sx, 7.9 * sy]],
            rtol=1e-5)
        assert not results['gt_ignore_flags'].any()
    with pytest.raises(ValueError, match='resize_type="Resize"'):
        PointRandomResize(
            scale=(20, 16), ratio_range=(0.5, 2.0), resize_type='PointResize')


def test_random_choice_resize():
    resize = TRANSFORMS.build(
        dict(
            type='PointRandomChoiceResize',
            scales=[(20, 16), (5, 4)],
            keep_ratio=False))
    assert isinstance(resize, PointRandomChoiceResize)
    assert isinstance(resize.resize, MMDetResize)
    seen = set()
    for seed in range(8):
        np.random.seed(seed)
        results = resize(_results(points=[(1.5, 2.5)]))
        seen.add(results['img_shape'])
        sx, sy = results['scale_factor']
        np.testing.assert_allclose(
            results['gt_points'], [[1.5 * sx, 2.5 * sy]], rtol=1e-6)
    assert seen == {(16, 20), (4, 5)}


def test_chain_composes_with_previous_homography():
    results = _results(points=[(1.5, 2.5), (9.5, 0.5)])
    results = PointResize(scale_factor=2.0, keep_ratio=True)(results)
    results = PointRandomFlip(prob=1.0)(results)  # width 20
    crop = PointRandomCrop(crop_size=(10, 10))
    crop._rand_offset = lambda margin: (3, 4)  # (offset_h, offset_w)
    results = crop(results)
    results = PointPad(size=(12, 12))(results)
    # (1.5, 2.5) -> (3, 5) -> (17 - eps, 5) -> (13 - eps, 2): right of the
    # crop (x = 3 is the left border of pixel 3, whose mirror is pixel 16)
    # (9.5, 0.5) -> (19, 1) -> (1, 1) -> (-3, -2): left of the crop
    np.testing.assert_allclose(
        results['gt_points'], [[13, 2], [-3, -2]], atol=1e-5)
    assert results['gt_points'][0, 0] < 13
    np.testing.assert_array_equal(results['gt_ignore_flags'], [True, True])


def test_empty_points_and_no_points_key():
    results = PointRandomFlip(prob=1.0)(_results(points=[]))
    assert results['gt_points'].shape == (0, 2)
    assert results['gt_ignore_flags'].shape == (0, )
    results = _results()
    del results['gt_points']
    results = PointResize(scale_factor=2.0)(results)
    assert 'gt_points' not in results and 'gt_ignore_flags' not in results


def test_missing_homography_is_an_error():

    class BadResize(PointTransformMixin, MMCVResize):
        pass

    with pytest.raises(RuntimeError, match='homography_matrix'):
        BadResize(scale_factor=2.0)(_results())


def test_misaligned_flags_is_an_error():
    results = _results(flags=[False])
    with pytest.raises(ValueError, match='2 gt_points but 1'):
        PointRandomFlip(prob=1.0)(results)


def test_crop_min_points_redraws_until_a_point_is_inside():
    # one point in the bottom-right corner of a 100 x 100 image: a 50 x 50
    # crop drawn once holds it ~1 % of the time (5/51 per axis)
    points = np.array([[95.5, 95.5]], np.float32)
    hits = {0: 0, 1: 0}
    for min_points in (0, 1):
        crop = PointRandomCrop(
            crop_size=(50, 50), min_points=min_points, max_retries=2000)
        for seed in range(20):
            np.random.seed(seed)
            results = crop(_results(100, 100, points))
            hits[min_points] += int(not results['gt_ignore_flags'][0])
            offset = -results['homography_matrix'][:2, 2]
            np.testing.assert_allclose(results['gt_points'], points - offset)
    assert hits[1] == 20
    assert hits[0] <= 3


def test_crop_min_points_ignores_flagged_points_and_gives_up():
    points = np.array([[95.5, 95.5]], np.float32)
    # the only point is already ignored: nothing can satisfy min_points,
    # the last draw is kept (no error, no None)
    crop = PointRandomCrop(crop_size=(10, 10), min_points=1, max_retries=3)
    np.random.seed(0)
    results = crop(_results(100, 100, points, flags=[True]))
    assert results['img_shape'] == (10, 10)
    assert results['gt_ignore_flags'][0]
    with pytest.raises(ValueError, match='min_points'):
        PointRandomCrop(crop_size=(10, 10), min_points=-1)


@pytest.mark.parametrize('direction', ['horizontal', 'vertical', 'diagonal'])
def test_flip_keeps_border_points_in_the_mirrored_pixel(direction):
    """Issue #10 fault 10: x = 0 (allowed) became x = W after a flip and was
    ignored in every flipped sample; any point on a pixel border (integer
    coordinate) moved to the neighbour of its mirrored pixel."""
    h, w = 8, 10
    points = [(0.0, 0.0), (3.0, 5.0), (9.999999, 7.9999995), (1e-7, 2.5),
              (4.5, 3.5)]
    results = PointRandomFlip(prob=1.0, direction=direction)(
        _results(h, w, points=points))
    assert not results['gt_ignore_flags'].any()
    flipped = results['gt_points']
    for (x, y), (fx, fy) in zip(points, flipped):
        col, row = int(np.floor(x)), int(np.floor(y))
        if direction in ('horizontal', 'diagonal'):
            col = w - 1 - col
        if direction in ('vertical', 'diagonal'):
            row = h - 1 - row
        assert (int(np.floor(fx)), int(np.floor(fy))) == (col, row), (
            (x, y), (fx, fy))
        assert 0 <= fx < w and 0 <= fy < h


def test_resize_and_pad_never_push_inside_points_out():
    """A point just below W stays inside whatever float32 rounding does."""
    w = 7
    x = float(np.nextafter(np.float32(w), np.float32(0)))
    results = PointResize(scale=(3 * w, 8 * 3), keep_ratio=False)(
        _results(8, w, points=[(x, 7.9999995)]))
    px, py = results['gt_points'][0]
    assert px < 3 * w and py < 24 and not results['gt_ignore_flags'].any()
    results = PointPad(size=(16, 16))(_results(8, w, points=[(x, 0.0)]))
    assert not results['gt_ignore_flags'].any()


def test_crop_still_drops_points_outside():
    results = PointRandomCrop(crop_size=(4, 4))(
        _results(8, 10, points=[(0.0, 0.0), (9.5, 7.5)]))
    x, y = results['gt_points'][:, 0], results['gt_points'][:, 1]
    outside = (x < 0) | (x >= 4) | (y < 0) | (y >= 4)
    np.testing.assert_array_equal(results['gt_ignore_flags'], outside)
