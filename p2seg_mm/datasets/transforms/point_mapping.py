# Copyright (c) p2seg_mm contributors. All rights reserved.
"""How ``gt_points`` follow mmdet's geometric transforms: the mixin of
the ``Point*`` transforms (:mod:`.geometric`) and its coordinate rules.

mmdet's transforms move images, boxes, masks and ``gt_seg_map`` but not
points; they record the change of coordinates in ``homography_matrix``.
Each ``Point*`` transform runs the stock transform and maps
``gt_points`` (continuous ``(x, y)`` pixel coordinates, see
``docs/design.md``) by ``H_after @ inv(H_before)``. This is exact for the
conventions mmdet uses: resize ``x' = x * sx``, horizontal flip
``x' = W - x``, crop ``x' = x - x0``; padding (bottom/right only) does not
move coordinates. Points that end outside the new image
(``not (0 <= x < W and 0 <= y < H)``) get ``gt_ignore_flags = True``; points
are never removed from the arrays, so labels and flags stay aligned.

Only crops remove points from the image. A point inside the image before a
resize, flip or pad stays inside (float32 rounding can put ``x * sx`` on
``W'``: it is moved to the largest float32 below ``W'``). A flip keeps the
point in the mirrored pixel: pixel ``j`` (``[j, j + 1)``) becomes pixel
``W - 1 - j``, so a point on a pixel's left border (integer ``x``, e.g.
``x = 0``, which ``W - x`` would put on the right border of the image, ``W``,
outside it) moves to the right end of the mirrored pixel (the largest float32
below ``W - j``). The same holds for vertical and diagonal flips.
"""
from typing import Optional, Tuple

import numpy as np


class PointTransformMixin:
    """Map ``gt_points`` by the homography the wrapped transform records.

    Put it first in the bases, before the mmdet/mmcv transform class.

    Required Keys:

    - img
    - gt_points (np.float32, optional): shape (N, 2)
    - gt_ignore_flags (bool, optional): shape (N,)
    - homography_matrix (np.float32, optional): shape (3, 3)

    Modified Keys:

    - gt_points
    - gt_ignore_flags (created if absent and there are points)
    - everything the wrapped transform modifies
    """

    #: Whether the transform may move points out of the image (crops).
    may_drop_points = False

    def _expects_homography(self, results: dict) -> bool:
        """Whether the wrapped transform must have recorded a new
        ``homography_matrix`` (guards against a silent no-op mapping)."""
        return True

    def _map_coordinates(self, points: np.ndarray, matrix: np.ndarray,
                         results: dict) -> np.ndarray:
        """Points (K, 2) float32 mapped by ``matrix`` (3, 3), float32."""
        homo = np.concatenate(
            [points.astype(np.float64),
             np.ones((len(points), 1))], axis=1) @ matrix.T
        return (homo[:, :2] / homo[:, 2:3]).astype(np.float32)

    def transform(self, results: dict) -> Optional[dict]:
        """Run the wrapped transform, then map the points.

        Args:
            results (dict): Result dict of the pipeline.

        Returns:
            dict | None: The transformed results, or None when the wrapped
            transform rejects the sample (e.g. mmdet ``RandomCrop`` without
            any box left), so the dataset draws another one.
        """
        h_before = results.get('homography_matrix', None)
        inside_before = None
        if results.get('gt_points', None) is not None:
            inside_before = _inside(
                np.asarray(results['gt_points'],
                           dtype=np.float32).reshape(-1, 2),
                _image_hw(results))
        results = super().transform(results)
        if results is None:
            return None
        h_after = results.get('homography_matrix', None)
        if self._expects_homography(results) and (h_after is None
                                                  or h_after is h_before):
            raise RuntimeError(
                f'{type(self).__name__}: the wrapped transform did not record '
                'homography_matrix, so points cannot be moved. Use mmdet '
                'transforms (e.g. resize_type="Resize" built from mmdet\'s '
                'registry), not the mmcv ones.')
        if results.get('gt_points', None) is not None:
            matrix = _relative_homography(h_before, h_after)
            self._map_points(results, matrix, inside_before)
        return results

    def _map_points(self,
                    results: dict,
                    matrix: Optional[np.ndarray],
                    inside_before: Optional[np.ndarray] = None) -> None:
        """Apply ``matrix`` to ``gt_points`` and flag points outside.

        Args:
            results (dict): Transformed results (``img_shape`` is the new
                image's).
            matrix (np.ndarray, optional): Shape (3, 3), old to new
                coordinates; None is the identity.
            inside_before (np.ndarray, optional): Shape (K,) bool, points
                inside the image before the transform. Unless the
                transform ``may_drop_points``, they are kept inside.
        """
        points = np.asarray(results['gt_points'], dtype=np.float32)
        points = points.reshape(-1, 2)
        if matrix is not None and len(points):
            points = self._map_coordinates(points, matrix, results)
        height, width = results['img_shape'][:2]
        if inside_before is not None and not self.may_drop_points \
                and len(points):
            points[inside_before] = _clip_inside(points[inside_before],
                                                 (height, width))
        inside = _inside(points, (height, width))
        flags = results.get('gt_ignore_flags', None)
        if flags is None:
            flags = np.zeros(len(points), dtype=bool)
        if len(flags) != len(points):
            raise ValueError(
                f'{results.get("img_path")}: {len(points)} gt_points but '
                f'{len(flags)} gt_ignore_flags. Fix: keep the point arrays '
                'aligned (never drop points).')
        results['gt_points'] = points
        results['gt_ignore_flags'] = np.asarray(flags, dtype=bool) | ~inside


def _image_hw(results: dict) -> Tuple[int, int]:
    """``(height, width)`` of the current image of ``results``."""
    if results.get('img_shape') is not None:
        return tuple(int(v) for v in results['img_shape'][:2])
    return tuple(int(v) for v in results['img'].shape[:2])


def _inside(points: np.ndarray, hw: Tuple[int, int]) -> np.ndarray:
    """(K,) bool: ``0 <= x < W and 0 <= y < H`` for points (K, 2)."""
    height, width = hw
    return ((points[:, 0] >= 0) & (points[:, 0] < width)
            & (points[:, 1] >= 0) & (points[:, 1] < height))


def _below(value) -> np.ndarray:
    """Largest float32 strictly below ``value`` (elementwise)."""
    value = np.asarray(value, dtype=np.float32)
    return np.nextafter(value, np.float32(-np.inf))


def _clip_inside(points: np.ndarray, hw: Tuple[int, int]) -> np.ndarray:
    """Clip points (K, 2) float32 into ``[0, W) x [0, H)``."""
    height, width = hw
    out = points.copy()
    out[:, 0] = np.clip(out[:, 0], 0, _below(width))
    out[:, 1] = np.clip(out[:, 1], 0, _below(height))
    return out


def flip_points(points: np.ndarray, hw: Tuple[int, int],
                direction: str) -> np.ndarray:
    """Flip points so each stays in the mirrored pixel.

    ``x' = W - x`` (horizontal; ``y`` for vertical, both for diagonal),
    then a point whose pixel ``j = floor(x)`` would not map to pixel
    ``W - 1 - j`` (a point on a pixel border, integer ``x``) is moved to
    the largest float32 of pixel ``W - 1 - j``. Points outside the image
    are flipped plainly.

    Args:
        points (np.ndarray): Shape (K, 2), ``(x, y)`` float32.
        hw (tuple[int, int]): Image ``(height, width)``.
        direction (str): 'horizontal', 'vertical' or 'diagonal'.

    Returns:
        np.ndarray: Shape (K, 2), float32.
    """
    if direction not in ('horizontal', 'vertical', 'diagonal'):
        raise ValueError(f'flip_points: unknown direction {direction!r}.')
    points = np.asarray(points, dtype=np.float32).reshape(-1, 2)
    out = points.copy()
    axes = {'horizontal': [0], 'vertical': [1], 'diagonal': [0, 1]}
    for axis in axes[direction]:
        size = hw[1] if axis == 0 else hw[0]
        values = points[:, axis].astype(np.float64)
        flipped = (size - values).astype(np.float32)
        pixel = size - 1 - np.floor(values)
        inside = (values >= 0) & (values < size)
        wrong = inside & (np.floor(flipped.astype(np.float64)) != pixel)
        flipped[wrong] = _below(pixel[wrong] + 1)
        out[:, axis] = flipped
    return out


def _relative_homography(
        h_before: Optional[np.ndarray],
        h_after: Optional[np.ndarray]) -> Optional[np.ndarray]:
    """``H_after @ inv(H_before)`` in float64; None means identity."""
    if h_after is None or h_after is h_before:
        return None
    h_after = np.asarray(h_after, dtype=np.float64)
    if h_before is None:
        return h_after
    return h_after @ np.linalg.inv(np.asarray(h_before, dtype=np.float64))
