# Copyright (c) p2seg_mm contributors. All rights reserved.
"""P2SegPhotoMetricDistortion: the release's distortion (docs/method.md §3.1),
i.e. mmdet's without the channel swap and clipped to [0, 255] uint8."""
import itertools

import numpy as np
import pytest
from mmdet.datasets.transforms import PhotoMetricDistortion
from mmdet.registry import TRANSFORMS

from p2seg_mm.datasets.transforms import P2SegPhotoMetricDistortion

# Every effect off: only the channel swap (and a lossless HSV round trip)
# can change the image.
NO_EFFECT = dict(
    brightness_delta=0,
    contrast_range=(1.0, 1.0),
    saturation_range=(1.0, 1.0),
    hue_delta=0)
PERMUTATIONS = list(itertools.permutations(range(3)))
NUM_DRAWS = 300


def _image() -> np.ndarray:
    """8 x 8 uint8 BGR image whose three channels are far apart."""
    img = np.empty((8, 8, 3), np.uint8)
    img[..., 0], img[..., 1], img[..., 2] = 20, 120, 220
    return img


def _permutation_of(out: np.ndarray, img: np.ndarray) -> tuple:
    """The channel permutation that best explains ``out`` from ``img``."""
    errors = [
        np.abs(out.astype(np.float64) - img[..., list(p)]).max()
        for p in PERMUTATIONS
    ]
    assert min(errors) <= 1.0  # nothing but a permutation happened
    return PERMUTATIONS[int(np.argmin(errors))]


def _count_permuted(transform) -> int:
    np.random.seed(0)
    img = _image()
    permuted = 0
    for _ in range(NUM_DRAWS):
        out = transform.transform(dict(img=img.copy()))['img']
        permuted += _permutation_of(out, img) != (0, 1, 2)
    return permuted


def test_mmdet_photometric_distortion_swaps_channels():
    # the defect the new transform removes (shows the test below can fail)
    permuted = _count_permuted(PhotoMetricDistortion(**NO_EFFECT))
    assert permuted > NUM_DRAWS // 4


def test_never_swaps_channels():
    transform = TRANSFORMS.build(
        dict(type='P2SegPhotoMetricDistortion', **NO_EFFECT))
    assert isinstance(transform, P2SegPhotoMetricDistortion)
    assert _count_permuted(transform) == 0


def test_clips_to_uint8_range():
    img = np.zeros((8, 8, 3), np.uint8)
    img[:4] = 255
    img[4:, :, 1] = 128
    strong = dict(
        brightness_delta=120,
        contrast_range=(0.2, 3.0),
        saturation_range=(1.0, 1.0),
        hue_delta=36)
    np.random.seed(0)
    mmdet_out = [
        PhotoMetricDistortion(**strong).transform(dict(img=img.copy()))['img']
        for _ in range(50)
    ]
    # mmdet's output leaves [0, 255] for these parameters
    assert min(o.min() for o in mmdet_out) < 0
    assert max(o.max() for o in mmdet_out) > 255
    transform = P2SegPhotoMetricDistortion(**strong)
    np.random.seed(0)
    changed = 0
    for _ in range(50):
        out = transform.transform(dict(img=img.copy()))['img']
        assert out.dtype == np.uint8 and out.shape == img.shape
        changed += not np.array_equal(out, img)
    # still a distortion
    assert changed > 10


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_same_draws_as_mmdet_without_swap(seed):
    """Brightness, contrast and hue are mmdet's own draws: on an image that
    stays inside [0, 255], the output is mmdet's with the permutation undone.
    """
    params = dict(
        brightness_delta=16,
        contrast_range=(0.9, 1.1),
        saturation_range=(1.0, 1.0),
        hue_delta=36)
    rng = np.random.RandomState(seed)
    img = rng.randint(60, 190, (6, 7, 3)).astype(np.uint8)
    for _ in range(20):
        state = np.random.get_state()
        ours = P2SegPhotoMetricDistortion(**params).transform(
            dict(img=img.copy()))['img']
        np.random.set_state(state)
        mmdet = PhotoMetricDistortion(**params)
        flags = mmdet._random_flags()
        np.random.set_state(state)
        theirs = mmdet.transform(dict(img=img.copy()))['img']
        swap_flag, swap_value = flags[5], flags[10]
        if swap_flag:
            theirs = theirs[..., np.argsort(swap_value)]
        # ours truncates to uint8 as the release
        np.testing.assert_allclose(ours, np.floor(theirs), atol=1)
