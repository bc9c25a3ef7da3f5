# Copyright (c) p2seg_mm contributors. All rights reserved.
"""The release's photometric distortion (docs/method.md §3.1).

mmdet's ``PhotoMetricDistortion`` has the same brightness / contrast /
saturation / hue steps in the same two orders, but it also permutes the
colour channels of about 40 % of the images (``swap_flag``; no switch) and
returns an unclipped float image. The release never swaps channels and clips
to [0, 255] as uint8. ``P2SegPhotoMetricDistortion`` is mmdet's transform
with those two differences removed.
"""
from typing import Sequence, Union

import numpy as np
from mmcv.transforms.utils import cache_randomness

from mmdet.datasets.transforms import PhotoMetricDistortion
from mmdet.registry import TRANSFORMS

Number = Union[int, float]

# Position of ``swap_flag`` in mmdet 3.x's
# ``PhotoMetricDistortion._random_flags()`` tuple: (mode, brightness_flag,
# contrast_flag, saturation_flag, hue_flag, swap_flag, delta_value,
# alpha_value, saturation_value, hue_value, swap_value).
_SWAP_FLAG_INDEX = 5
_NUM_FLAGS = 11


@TRANSFORMS.register_module()
class P2SegPhotoMetricDistortion(PhotoMetricDistortion):
    """mmdet's ``PhotoMetricDistortion`` without channel swap, clipped to
    [0, 255] uint8, as the P2Seg release's ``PhotometricDistort``.

    Each step is applied with probability 0.5: brightness (add
    U(-brightness_delta, brightness_delta)); then, in one of two random
    orders, contrast (multiply by U(*contrast_range)) before or after the
    HSV steps (saturation, hue shift U(-hue_delta, hue_delta) degrees). The
    release draws no saturation change: use ``saturation_range=(1.0, 1.0)``.
    Arguments and random draws are mmdet's (same order, numpy's global
    RNG); only the channel permutation is never applied.

    Required Keys:

    - img

    Modified Keys:

    - img (np.uint8, values in [0, 255])

    Args:
        brightness_delta (int): Delta of brightness. Defaults to 32.
        contrast_range (Sequence[Number]): Range of contrast.
            Defaults to (0.5, 1.5).
        saturation_range (Sequence[Number]): Range of saturation.
            Defaults to (0.5, 1.5).
        hue_delta (int): Delta of hue in degrees. Defaults to 18.
    """

    @cache_randomness
    def _random_flags(self) -> Sequence[Number]:
        """Draw mmdet's random flags and values, with the swap switched off.

        Returns:
            Sequence[Number]: mmdet's flag tuple with ``swap_flag = 0``.
        """
        flags = list(super()._random_flags())
        assert len(flags) == _NUM_FLAGS, (
            'mmdet PhotoMetricDistortion._random_flags changed layout; '
            'update P2SegPhotoMetricDistortion')
        flags[_SWAP_FLAG_INDEX] = 0
        return tuple(flags)

    def transform(self, results: dict) -> dict:
        """Distort ``results['img']`` and clip it to [0, 255] uint8.

        Args:
            results (dict): Result dict from the loading pipeline.

        Returns:
            dict: Result dict with the distorted uint8 image.
        """
        results = super().transform(results)
        # The release: np.clip(img, 0, 255).astype(np.uint8) (truncation).
        results['img'] = np.clip(results['img'], 0, 255).astype(np.uint8)
        return results
