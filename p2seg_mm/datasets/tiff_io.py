# Copyright (c) p2seg_mm contributors. All rights reserved.
"""TIFF part of the loading rule (:mod:`p2seg_mm.datasets.image_io`), read
with ``tifffile``.

The first image series of the file is used. Its axes (tifffile's letters:
``Y``, ``X`` spatial, ``S`` samples, ``C`` channel, ``Z``, ``T``, ``Q``,
``I`` ... pages) decide the layout:

- ``YX`` (or only singleton extra axes): grey;
- ``YXS`` with 3 or 4 samples and RGB photometric: RGB(A);
- anything else is a stack of planes: all non-spatial axes flattened in
  file order; ``channel=k`` picks plane ``k``, without it the file is
  refused with its axes and the fix.
"""
import io
from typing import Optional, Tuple

import numpy as np


def _open_series(data: bytes, path: str):
    """Return ``(array, axes, orientation, is_rgb)`` of the first series."""
    import tifffile
    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            series = tif.series[0]
            array = series.asarray()
            axes = series.axes
            page = tif.pages[0]
            tag = page.tags.get('Orientation')
            orientation = int(tag.value) if tag is not None else 1
            is_rgb = int(page.photometric) == 2  # PHOTOMETRIC.RGB
    except Exception as e:
        raise ValueError(f'TIFF image {path} could not be read ({e}). Fix: '
                         'check that the file is complete, or re-save it.')
    return array, axes, orientation if 1 <= orientation <= 8 else 1, is_rgb


def read_tiff(data: bytes, path: str,
              channel: Optional[int] = None) -> Tuple[np.ndarray, int]:
    """Decode TIFF bytes into one (H, W) or (H, W, 3) array.

    Args:
        data (bytes): The file's content.
        path (str): Used in error messages.
        channel (int, optional): Plane to use when the file holds several.
            Defaults to None.

    Returns:
        tuple[np.ndarray, int]: The array in its stored dtype, as stored
        (not yet upright), and the TIFF orientation tag (1..8).

    Raises:
        ValueError: Unreadable file, no Y/X axes, several planes without
            ``channel``, ``channel`` out of range.
    """
    array, axes, orientation, is_rgb = _open_series(data, path)
    if 'Y' not in axes or 'X' not in axes or array.ndim != len(axes):
        raise ValueError(f'TIFF image {path} has axes {axes!r} (shape '
                         f'{array.shape}) without both Y and X. Fix: save a '
                         '2-D image.')
    spatial = [axes.index('Y'), axes.index('X')]
    others = [k for k in range(len(axes)) if k not in spatial]
    sizes = [array.shape[k] for k in others]
    extra = [(axes[k], array.shape[k]) for k in others if array.shape[k] > 1]
    if (channel is None and is_rgb and len(extra) == 1 and extra[0][0] == 'S'
            and extra[0][1] in (3, 4)):
        rgb = np.moveaxis(array, others, list(range(2, array.ndim)))
        rgb = rgb.reshape(rgb.shape[0], rgb.shape[1], -1)
        return rgb[..., :3], orientation
    planes = np.transpose(array, others + spatial).reshape(
        (-1, ) + tuple(array.shape[k] for k in spatial))
    if len(planes) == 1:
        return planes[0], orientation
    if channel is None:
        raise ValueError(
            f'TIFF image {path} holds {len(planes)} planes (axes {axes!r}, '
            f'shape {array.shape}; planes are the non-Y/X axes '
            f'{"".join(axes[k] for k in others)} = {tuple(sizes)} flattened '
            'in that order). P2Seg needs one grey or RGB image. Fix: choose '
            'a plane with LoadP2SegImageFromFile(channel=K) in the config / '
            '--channel K on the command line, or save one plane per file.')
    if not 0 <= channel < len(planes):
        raise ValueError(f'TIFF image {path} holds {len(planes)} planes '
                         f'(axes {axes!r}); channel={channel} is out of '
                         f'range 0..{len(planes) - 1}.')
    return planes[channel], orientation
