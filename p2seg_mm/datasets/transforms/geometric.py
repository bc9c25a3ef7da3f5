# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Point-aware versions of mmdet's geometric transforms.

Each ``Point*`` transform runs the stock transform and maps ``gt_points``
by the homography it records (:class:`~.point_mapping.PointTransformMixin`,
whose module states the coordinate rules); points that leave the image are
flagged ignored, never removed.
"""
from typing import Optional, Tuple

import numpy as np
from mmcv.transforms import RandomChoiceResize, RandomResize

from mmdet.datasets.transforms import Pad, RandomCrop, RandomFlip, Resize
from mmdet.registry import TRANSFORMS
from .point_mapping import PointTransformMixin, flip_points

__all__ = [
    'PointTransformMixin', 'PointResize', 'PointRandomResize',
    'PointRandomChoiceResize', 'PointRandomFlip', 'PointRandomCrop', 'PointPad'
]


@TRANSFORMS.register_module()
class PointResize(PointTransformMixin, Resize):
    """mmdet :class:`Resize` that also rescales ``gt_points``.

    Args are those of mmdet ``Resize``.
    """


class _MMDetResizeMixin:
    """Build the inner resize of mmcv's random resizes from mmdet, so
    ``resize_type='Resize'`` is mmdet's ``Resize`` (which records
    ``homography_matrix``) whatever the default scope is."""

    def __init__(self, *args, resize_type: str = 'Resize', **kwargs) -> None:
        if str(resize_type).startswith('Point'):
            raise ValueError(
                f'{type(self).__name__} maps the points itself: use '
                f'resize_type="Resize", not {resize_type!r}.')
        # mmcv builds its inner resize from the root registry; replace it.
        super().__init__(*args, resize_type='Resize', **kwargs)
        self.resize_cfg['type'] = resize_type
        if resize_type in ('Resize', 'mmdet.Resize'):
            resize_kwargs = dict(self.resize_cfg)
            resize_kwargs.pop('type')
            self.resize = Resize(scale=0, **resize_kwargs)
        else:
            self.resize = TRANSFORMS.build({'scale': 0, **self.resize_cfg})


@TRANSFORMS.register_module()
class PointRandomResize(PointTransformMixin, _MMDetResizeMixin, RandomResize):
    """mmcv :class:`RandomResize` (inner mmdet ``Resize``) that also rescales
    ``gt_points``.

    Args are those of mmcv ``RandomResize``; ``resize_kwargs`` (e.g.
    ``keep_ratio``) go to mmdet ``Resize``.
    """


@TRANSFORMS.register_module()
class PointRandomChoiceResize(PointTransformMixin, _MMDetResizeMixin,
                              RandomChoiceResize):
    """mmcv :class:`RandomChoiceResize` (inner mmdet ``Resize``) that also
    rescales ``gt_points``.

    Args are those of mmcv ``RandomChoiceResize``.
    """


@TRANSFORMS.register_module()
class PointRandomFlip(PointTransformMixin, RandomFlip):
    """mmdet :class:`RandomFlip` that also flips ``gt_points``
    (horizontal: ``x' = W - x``).

    Args are those of mmdet ``RandomFlip``.
    """

    def _expects_homography(self, results: dict) -> bool:
        # mmcv's RandomFlip records nothing when it does not flip.
        return bool(results.get('flip', False))

    def _map_coordinates(self, points: np.ndarray, matrix: np.ndarray,
                         results: dict) -> np.ndarray:
        """Pixel-exact flip (:func:`flip_points`), not the plain
        homography, so border points stay in the mirrored pixel."""
        return flip_points(points, results['img_shape'][:2],
                           results['flip_direction'])


@TRANSFORMS.register_module()
class PointRandomCrop(PointTransformMixin, RandomCrop):
    """mmdet :class:`RandomCrop` that also shifts ``gt_points`` and flags the
    points cropped away (they stay in the arrays).

    Without ``gt_bboxes`` (the P2Seg pipeline) the crop is never rejected,
    as in the release: a crop may hold no point. Do not load ``gt_bboxes``
    together with points: mmdet filters ``gt_ignore_flags`` by the boxes,
    which would misalign them with ``gt_points`` (this raises an error).

    Args:
        min_points (int): Redraw the crop offset (up to ``max_retries``
            times) until at least this many kept points fall inside the
            crop; the last draw is used if none qualifies. Helps classes
            with few, small objects (in the spirit of mmseg's
            ``cat_max_ratio``). 0 (default) draws once, as the release.
        max_retries (int): Extra draws allowed by ``min_points``.
            Defaults to 10.
        **kwargs: Those of mmdet ``RandomCrop``.
    """

    may_drop_points = True

    def __init__(self,
                 *args,
                 min_points: int = 0,
                 max_retries: int = 10,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if min_points < 0 or max_retries < 0:
            raise ValueError('min_points and max_retries must be >= 0, got '
                             f'{min_points} and {max_retries}')
        self.min_points = min_points
        self.max_retries = max_retries
        self._offset = None

    def _crop_data(self, results: dict, crop_size: Tuple[int, int],
                   allow_negative_crop: bool) -> Optional[dict]:
        """Choose the offset (point-aware), then crop as mmdet does."""
        self._offset = self._choose_offset(results, crop_size)
        try:
            return super()._crop_data(results, crop_size, allow_negative_crop)
        finally:
            self._offset = None

    def _rand_offset(self, margin: Tuple[int, int]) -> Tuple[int, int]:
        if self._offset is not None:
            return self._offset
        return super()._rand_offset(margin)

    def _choose_offset(self, results: dict,
                       crop_size: Tuple[int, int]) -> Tuple[int, int]:
        """Draw ``(offset_h, offset_w)``, redrawing while the crop holds
        fewer than ``min_points`` kept points."""
        height, width = results['img'].shape[:2]
        margin = (max(height - crop_size[0], 0), max(width - crop_size[1], 0))
        offset = super()._rand_offset(margin)
        points = results.get('gt_points', None)
        if self.min_points == 0 or points is None or len(points) == 0:
            return offset
        points = np.asarray(points, dtype=np.float32).reshape(-1, 2)
        flags = results.get('gt_ignore_flags', None)
        if flags is not None:
            points = points[~np.asarray(flags, dtype=bool)]
        for _ in range(self.max_retries):
            off_h, off_w = offset
            inside = ((points[:, 0] >= off_w)
                      & (points[:, 0] < off_w + crop_size[1])
                      & (points[:, 1] >= off_h)
                      & (points[:, 1] < off_h + crop_size[0]))
            if int(inside.sum()) >= self.min_points:
                break
            offset = super()._rand_offset(margin)
        return offset


@TRANSFORMS.register_module()
class PointPad(PointTransformMixin, Pad):
    """mmdet :class:`Pad` that keeps ``gt_points`` consistent.

    Padding is added at the bottom/right, so coordinates do not change; the
    points' inside test is redone on the padded ``img_shape``. Args are those
    of mmdet ``Pad``.
    """

    def _expects_homography(self, results: dict) -> bool:
        return False
