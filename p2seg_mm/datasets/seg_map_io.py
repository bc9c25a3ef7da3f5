# Copyright (c) p2seg_mm contributors. All rights reserved.
"""The one reading rule of semantic pseudo-maps (training, checks, tools).

A pseudo-map is a single-channel index image of its image's upright size:
``0`` = background, ``c + 1`` = class ``c``, ``255`` = ignore. Palette
('P' mode) PNGs give their palette indices, not colours; an EXIF orientation
stored in the map is applied, as for images (:mod:`.image_io`).
"""
import io
from typing import Optional

import numpy as np
from mmengine.fileio import get
from PIL import Image

from .image_io import apply_orientation, orientation_of

#: PIL modes that hold one integer index per pixel.
INDEX_MODES = ('P', 'L', '1', 'I', 'I;16', 'I;16B', 'I;16L')
#: The pseudo-map value of pixels without a label.
IGNORE_INDEX = 255


def read_seg_map(path: str,
                 backend_args: Optional[dict] = None) -> np.ndarray:
    """Read a semantic pseudo-map as an integer (H, W) array, upright.

    The map must be a single-channel index image (PIL mode L, P, 1 or I):
    palette PNGs give their indices, not colours. An EXIF orientation
    stored in the map is applied, as for images.

    Raises:
        ValueError: A colour (RGB/RGBA) rendering or another layout.
    """
    with Image.open(io.BytesIO(get(path, backend_args))) as img:
        orientation = orientation_of(img)
        mode = img.mode
        if mode not in INDEX_MODES:
            raise ValueError(
                f'Semantic pseudo-map {path} has PIL mode {mode!r}; it '
                'must be a single-channel index PNG (mode L or P) whose '
                'values are 0 = background, c + 1 = class c, 255 = '
                'ignore. Fix: save the label array itself, not a '
                'colour rendering (RGB/RGBA) of it.')
        seg_map = np.array(img)
    if seg_map.dtype == bool:
        seg_map = seg_map.astype(np.uint8)
    if orientation != 1 and seg_map.ndim == 2:
        seg_map = apply_orientation(seg_map, orientation)
    if seg_map.ndim != 2 or not np.issubdtype(seg_map.dtype, np.integer):
        raise ValueError(
            f'Semantic pseudo-map {path} is not a (H, W) integer map '
            f'(shape {seg_map.shape}, dtype {seg_map.dtype}). Fix: save '
            'a single-channel uint8 index PNG.')
    return seg_map


def invalid_seg_values(values: np.ndarray,
                       num_classes: Optional[int]) -> np.ndarray:
    """The entries of ``values`` a pseudo-map may not hold.

    Allowed are ``0..num_classes`` and :data:`IGNORE_INDEX`, or ``0..255``
    when ``num_classes`` is None.
    """
    values = np.asarray(values)
    if num_classes is None:
        return values[(values < 0) | (values > IGNORE_INDEX)]
    return values[((values < 0) | (values > num_classes))
                  & (values != IGNORE_INDEX)]


def allowed_seg_values(num_classes: Optional[int]) -> str:
    """The values :func:`invalid_seg_values` allows, for messages."""
    if num_classes is None:
        return '0..255'
    return (f'0 (background), 1..{num_classes} (class + 1) and '
            f'{IGNORE_INDEX} (ignore)')
