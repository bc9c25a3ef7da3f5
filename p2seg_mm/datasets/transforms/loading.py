# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Loading of an image (by the loading rule of :mod:`..image_io`), its
points and its semantic pseudo-map (:mod:`..seg_map_io`)."""
from typing import Optional, Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform, LoadImageFromFile
from mmengine.fileio import exists, get

from mmdet.registry import TRANSFORMS
from ..image_io import (DEFAULT_MIN_DYNAMIC_RANGE, DEFAULT_PERCENTILES,
                        check_percentiles, decode_image)
from ..seg_map_io import (IGNORE_INDEX, allowed_seg_values,
                          invalid_seg_values, read_seg_map)

__all__ = ['LoadP2SegImageFromFile', 'LoadP2SegAnnotations', 'read_seg_map']


@TRANSFORMS.register_module()
class LoadP2SegImageFromFile(LoadImageFromFile):
    """Load an image by p2seg_mm's loading rule (:mod:`..image_io`).

    A drop-in for mmcv's ``LoadImageFromFile`` (same keys, BGR order): 8-bit
    images give the same array, 16-bit/float images are stretched per image
    between the ``percentiles`` instead of losing their low byte,
    multi-plane TIFFs need ``channel``, EXIF orientation is applied (points
    and maps are in the upright frame) and a collapsed dynamic range is
    warned about. The upright size is checked against the json's
    ``height``/``width`` when the dataset gives them.

    Required Keys:

    - img_path

    Modified Keys:

    - img (np.uint8 or np.float32): (H, W, 3) BGR, or (H, W) with
      ``color_type='grayscale'``
    - img_shape, ori_shape

    Added Keys:

    - exif_orientation (int): the orientation applied (1 = none)

    Args:
        to_float32 (bool): Return float32 instead of uint8.
            Defaults to False.
        color_type (str): ``'color'`` or ``'grayscale'``.
            Defaults to 'color'.
        percentiles (Sequence[float]): (low, high) percentiles of the
            stretch of non-8-bit images. Defaults to (1.0, 99.8).
        channel (int, optional): Plane of a multi-page/multi-channel image.
            Defaults to None.
        min_dynamic_range (int): Warn when fewer grey levels remain.
            Defaults to 8.
        check_size (bool): Raise if the image's size differs from the
            json's ``height``/``width``. Defaults to True.
        ignore_empty (bool): Return None for unreadable files instead of
            raising. Defaults to False.
        backend_args (dict, optional): mmengine file backend arguments.
            Defaults to None.
    """

    def __init__(self,
                 to_float32: bool = False,
                 color_type: str = 'color',
                 percentiles: Sequence[float] = DEFAULT_PERCENTILES,
                 channel: Optional[int] = None,
                 min_dynamic_range: int = DEFAULT_MIN_DYNAMIC_RANGE,
                 check_size: bool = True,
                 ignore_empty: bool = False,
                 backend_args: Optional[dict] = None) -> None:
        if color_type not in ('color', 'grayscale'):
            raise ValueError("LoadP2SegImageFromFile: color_type must be "
                             f"'color' or 'grayscale', got {color_type!r}.")
        super().__init__(
            to_float32=to_float32,
            color_type=color_type,
            ignore_empty=ignore_empty,
            backend_args=backend_args)
        self.percentiles = check_percentiles(percentiles)
        self.channel = channel
        self.min_dynamic_range = min_dynamic_range
        self.check_size = check_size

    def transform(self, results: dict) -> Optional[dict]:
        """Read ``results['img_path']`` into ``results['img']``."""
        path = results['img_path']
        try:
            loaded = decode_image(
                get(path, backend_args=self.backend_args), path,
                'grey' if self.color_type == 'grayscale' else 'bgr',
                self.percentiles, self.channel, self.min_dynamic_range)
        except (FileNotFoundError, ValueError):
            if self.ignore_empty:
                return None
            raise
        img = loaded.image
        if self.check_size:
            _check_json_size(results, img.shape[:2], loaded.orientation)
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        results['exif_orientation'] = loaded.orientation
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(to_float32={self.to_float32}, '
                f"color_type='{self.color_type}', "
                f'percentiles={self.percentiles}, channel={self.channel}, '
                f'min_dynamic_range={self.min_dynamic_range}, '
                f'check_size={self.check_size}, '
                f'ignore_empty={self.ignore_empty}, '
                f'backend_args={self.backend_args})')


def _exif_hint(orientation: int, got: Tuple[int, int],
               expected: Tuple[int, int]) -> str:
    """Explain a size mismatch caused by an applied EXIF rotation."""
    if orientation in (5, 6, 7, 8) and tuple(got) == tuple(expected)[::-1]:
        return (f' The file carries EXIF orientation {orientation}, which '
                'p2seg_mm applies (the image is used upright, as viewers and '
                'annotation tools show it); the other size is the stored, '
                'unrotated one. Fix: give sizes, points and pseudo-maps in '
                'the upright frame, or remove the EXIF orientation tag from '
                'the file if they were made on the stored pixels.')
    return ''


def _check_json_size(results: dict, shape: Tuple[int, int],
                     orientation: int) -> None:
    """Raise if the loaded (H, W) differs from the json's height/width."""
    height, width = results.get('height'), results.get('width')
    if height is None or width is None:
        return
    expected = (int(height), int(width))
    if tuple(shape) != expected:
        raise ValueError(
            f'image {results["img_path"]} is {shape[0]} x {shape[1]} (H x W)'
            f' but its json entry (image id {results.get("img_id")}) says '
            f'{expected[0]} x {expected[1]}.'
            + (_exif_hint(orientation, shape, expected) or
               ' Fix: correct "height"/"width" in the json (and the points '
               'if they were made for the other size).'))


@TRANSFORMS.register_module()
class LoadP2SegAnnotations(BaseTransform):
    """Load the points and the semantic pseudo-map of one image.

    Points come from ``results['instances']`` (made by
    :class:`CocoPointDataset`); the pseudo-map is a single-channel PNG
    (``0`` = background, ``c + 1`` = class ``c``, ``255`` = ignore). Palette
    ('P' mode) PNGs give their palette indices, not colours
    (:func:`~p2seg_mm.datasets.seg_map_io.read_seg_map`). Run it after the
    image loader (``LoadP2SegImageFromFile``): the map must have the loaded
    image's size.

    Required Keys:

    - instances (list[dict]): each with ``point`` ``[x, y]``,
      ``bbox_label`` and ``ignore_flag``
    - seg_map_path (str, only with ``with_seg=True``)
    - img_shape or ori_shape (optional, used to check the map size)

    Modified Keys:

    - seg_fields (appended ``'gt_seg_map'``, only with ``with_seg=True``)

    Added Keys:

    - gt_points (np.float32): shape (N, 2), ``(x, y)`` per point
    - gt_points_labels (np.int64): shape (N,), 0-based class
    - gt_ignore_flags (bool): shape (N,), True for crowd points
    - gt_seg_map (np.uint8): shape (H, W) (only with ``with_seg=True``)
    - ignore_index (int): 255 (only with ``with_seg=True``)

    Args:
        with_seg (bool): Whether to load the semantic pseudo-map.
            Defaults to True.
        num_classes (int, optional): Number of foreground classes C. When
            given, the map may only hold ``0..C`` and ``255``. Defaults to
            None (values not checked).
        backend_args (dict, optional): Arguments of the file backend.
            Defaults to None.
    """

    ignore_index = IGNORE_INDEX

    def __init__(self,
                 with_seg: bool = True,
                 num_classes: Optional[int] = None,
                 backend_args: Optional[dict] = None) -> None:
        if num_classes is not None and not 0 < num_classes < 255:
            raise ValueError(
                f'num_classes must be in 1..254, got {num_classes}.')
        self.with_seg = with_seg
        self.num_classes = num_classes
        self.backend_args = backend_args

    def transform(self, results: dict) -> dict:
        """Add the point arrays and, optionally, ``gt_seg_map``.

        Args:
            results (dict): Result dict from the dataset.

        Returns:
            dict: ``results`` with the added keys.
        """
        self._load_points(results)
        if self.with_seg:
            self._load_seg_map(results)
        return results

    @staticmethod
    def _load_points(results: dict) -> None:
        """Turn ``results['instances']`` into the point arrays."""
        instances = results.get('instances', [])
        points, labels, flags = [], [], []
        for i, instance in enumerate(instances):
            if 'point' not in instance:
                raise ValueError(
                    f'{results.get("img_path")}: instance {i} has no '
                    '"point". Fix: load the data with CocoPointDataset.')
            points.append(instance['point'])
            labels.append(instance['bbox_label'])
            flags.append(bool(instance.get('ignore_flag', 0)))
        results['gt_points'] = np.array(
            points, dtype=np.float32).reshape(-1, 2)
        results['gt_points_labels'] = np.array(labels, dtype=np.int64)
        results['gt_ignore_flags'] = np.array(flags, dtype=bool)

    def _load_seg_map(self, results: dict) -> None:
        """Read, check and store the semantic pseudo-map."""
        path = results.get('seg_map_path')
        if path is None:
            raise ValueError(
                f'{results.get("img_path")}: no seg_map_path. Fix: set '
                'data_prefix=dict(seg=...) in the dataset config or use '
                'LoadP2SegAnnotations(with_seg=False).')
        if not exists(path, backend_args=self.backend_args):
            raise FileNotFoundError(
                f'Semantic pseudo-map {path} does not exist. Fix: create it '
                'or point data_prefix["seg"] / seg_map_suffix at the '
                'pseudo-map folder.')
        seg_map = self._read_index_png(path)
        expected = _expected_shape(results)
        if expected is not None and seg_map.shape != expected:
            hint = _exif_hint(results.get('exif_orientation', 1),
                              seg_map.shape, expected)
            raise ValueError(
                f'Semantic pseudo-map {path} has size {seg_map.shape} '
                f'(H, W) but its image {results.get("img_path")} has '
                f'{expected}.' +
                (hint or ' Fix: write the map at the image resolution.'))
        self._check_values(seg_map, path)
        results['gt_seg_map'] = seg_map.astype(np.uint8)
        results['ignore_index'] = self.ignore_index
        seg_fields = results.setdefault('seg_fields', [])
        if 'gt_seg_map' not in seg_fields:
            seg_fields.append('gt_seg_map')

    def _read_index_png(self, path: str) -> np.ndarray:
        """Read a single-channel index image; see :func:`read_seg_map`."""
        return read_seg_map(path, self.backend_args)

    def _check_values(self, seg_map: np.ndarray, path: str) -> None:
        """Check that the map only holds 0..C and 255."""
        bad = invalid_seg_values(np.unique(seg_map), self.num_classes)
        if bad.size:
            raise ValueError(
                f'Semantic pseudo-map {path} holds values {bad.tolist()[:10]}'
                f'; allowed are {allowed_seg_values(self.num_classes)}. Fix '
                'the map or num_classes.')

    def __repr__(self) -> str:
        repr_str = self.__class__.__name__
        repr_str += f'(with_seg={self.with_seg}, '
        repr_str += f'num_classes={self.num_classes}, '
        repr_str += f'backend_args={self.backend_args})'
        return repr_str


def _expected_shape(results: dict) -> Optional[Tuple[int, int]]:
    """(H, W) the map must have: the loaded image's, if known."""
    for key in ('img_shape', 'ori_shape'):
        if results.get(key) is not None:
            return tuple(int(v) for v in results[key][:2])
    if results.get('height') is not None and results.get('width'):
        return int(results['height']), int(results['width'])
    return None
