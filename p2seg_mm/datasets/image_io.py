# Copyright (c) p2seg_mm contributors. All rights reserved.
"""The one image-loading rule of p2seg_mm (training, export, inference,
pipeline overlays, point importers).

Every image becomes an 8-bit array, upright:

- **8-bit** grey, RGB, RGBA and palette images (PNG, JPEG, BMP, 8-bit TIFF,
  ...) keep their values; grey is repeated to three channels, the alpha
  channel is dropped (not composited) and a palette is expanded to its
  colours. This is bit-identical to mmcv's ``LoadImageFromFile``
  (``color_type='color'``, cv2 backend) for these files.
- **16-bit, 32-bit and float** images (PNG, TIFF) are stretched per image:
  the ``percentiles`` (low, high) of its finite values (all channels
  together) map to 0 and 255, values outside are clipped, NaN becomes 0.
  If the two percentiles coincide (e.g. a few bright objects on a flat
  background) min..max is used instead and a warning says so.
- **Multi-page or multi-channel TIFF** (any axis besides Y, X and RGB(A)
  samples, e.g. ``CYX``, ``ZYX``, ``TYX``): ``channel=k`` picks plane ``k``
  of the non-spatial axes (flattened in file order) as a grey image;
  without it the file is refused with its axes and the fix.
- **EXIF orientation is applied** (as OpenCV's ``imread``, browsers,
  labelme, CVAT and Label Studio do): the array is what a viewer shows.
  Points, pseudo-maps and the json's ``width``/``height`` must therefore be
  given in this upright frame, which is the frame annotation tools export.
  A file whose stored pixels are rotated by its EXIF tag gets a warning
  (once per file) so that points made on the stored pixels are noticed.
- A result whose grey levels span fewer than ``min_dynamic_range`` values
  gets a warning (once per file): no silent all-black input.
- Truncated or unreadable files raise ``ValueError`` naming the file.

Coordinates are unaffected by the rule: pixel (row i, column j) covers
``[j, j+1) x [i, i+1)`` of the upright image.
"""
import io
import logging
from typing import NamedTuple, Optional, Sequence, Set, Tuple

import cv2
import numpy as np
from mmengine.fileio import get
from mmengine.logging import print_log
from PIL import Image

#: Default (low, high) percentiles of the per-image stretch to 8 bit.
DEFAULT_PERCENTILES: Tuple[float, float] = (1.0, 99.8)
#: Fewer grey levels than this between min and max of the result: warning.
DEFAULT_MIN_DYNAMIC_RANGE = 8
_ORIENTATION_TAG = 274
_TIFF_MAGIC = (b'II*\x00', b'MM\x00*', b'II+\x00', b'MM\x00+')
_WARNED: Set[Tuple[str, str]] = set()


class LoadedImage(NamedTuple):
    """An image read by the rule and what the rule did to it.

    Attributes:
        image (np.ndarray): uint8, (H, W, 3) or (H, W), upright.
        orientation (int): EXIF/TIFF orientation applied (1 = none).
        stored_dtype (np.dtype): Pixel type in the file.
    """
    image: np.ndarray
    orientation: int
    stored_dtype: np.dtype


def warn_once(path: str, kind: str, message: str) -> None:
    """Log ``message`` as a warning once per ``(path, kind)``."""
    if (path, kind) in _WARNED:
        return
    _WARNED.add((path, kind))
    print_log(message, logger='current', level=logging.WARNING)


def read_image_file(path: str,
                    channel_order: str = 'rgb',
                    percentiles: Sequence[float] = DEFAULT_PERCENTILES,
                    channel: Optional[int] = None,
                    min_dynamic_range: int = DEFAULT_MIN_DYNAMIC_RANGE,
                    backend_args: Optional[dict] = None) -> np.ndarray:
    """Read one image file by the loading rule (see the module docstring).

    Args:
        path (str): Image file (any mmengine file backend).
        channel_order (str): ``'rgb'``, ``'bgr'`` (both give (H, W, 3)) or
            ``'grey'`` (gives (H, W); colour images are converted with
            OpenCV's luma weights). Defaults to 'rgb'.
        percentiles (Sequence[float]): (low, high) percentiles of the stretch
            of non-8-bit images, ``0 <= low < high <= 100``.
            Defaults to (1.0, 99.8).
        channel (int, optional): Plane of a multi-page/multi-channel image
            to use as a grey image. Defaults to None.
        min_dynamic_range (int): Warn below this many grey levels.
            Defaults to 8.
        backend_args (dict, optional): mmengine file backend arguments.
            Defaults to None.

    Returns:
        np.ndarray: uint8, shape (H, W, 3) or (H, W) (``'grey'``), upright.

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: Unreadable or truncated file, unsupported layout, a
            multi-plane TIFF without ``channel``, bad arguments.
    """
    try:
        data = get(path, backend_args=backend_args)
    except FileNotFoundError:
        raise FileNotFoundError(f'image {path} does not exist.')
    return decode_image(data, path, channel_order, percentiles, channel,
                        min_dynamic_range).image


def decode_image(data: bytes,
                 path: str,
                 channel_order: str = 'rgb',
                 percentiles: Sequence[float] = DEFAULT_PERCENTILES,
                 channel: Optional[int] = None,
                 min_dynamic_range: int = DEFAULT_MIN_DYNAMIC_RANGE
                 ) -> LoadedImage:
    """Decode the bytes of image ``path``; see :func:`read_image_file`.

    Returns:
        LoadedImage: The array and the orientation and stored dtype.
    """
    if channel_order not in ('rgb', 'bgr', 'grey'):
        raise ValueError("channel_order must be 'rgb', 'bgr' or 'grey', got "
                         f'{channel_order!r}.')
    low, high = check_percentiles(percentiles)
    if _is_tiff(data):
        from .tiff_io import read_tiff
        raw, orientation = read_tiff(data, path, channel)
    else:
        raw, orientation = _decode_other(data, path)
        raw = _select_channel(raw, path, channel)
    image = _to_uint8(raw, path, low, high)
    image = apply_orientation(image, orientation)
    if orientation in (5, 6, 7, 8):
        warn_once(
            path, 'exif', f'image {path} carries EXIF orientation '
            f'{orientation}: it is used upright ({image.shape[1]} x '
            f'{image.shape[0]}, W x H), as viewers and annotation tools show '
            'it. Its points, pseudo-map and json size must be in that frame;'
            ' if they were made on the stored (rotated) pixels, remove the '
            'EXIF orientation tag from the file instead.')
    _check_dynamic_range(image, path, raw.dtype, min_dynamic_range)
    if channel_order == 'grey':
        if image.ndim == 3:
            image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    else:
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        if channel_order == 'bgr':
            image = image[..., ::-1]
    return LoadedImage(np.ascontiguousarray(image), orientation, raw.dtype)


def check_percentiles(percentiles: Sequence[float]) -> Tuple[float, float]:
    """Return ``(low, high)`` or raise ValueError unless 0<=low<high<=100."""
    try:
        low, high = (float(v) for v in percentiles)
    except (TypeError, ValueError):
        raise ValueError('percentiles must be two numbers (low, high), got '
                         f'{percentiles!r}.')
    if not 0.0 <= low < high <= 100.0:
        raise ValueError('percentiles must satisfy 0 <= low < high <= 100, '
                         f'got {percentiles!r}.')
    return low, high


def _is_tiff(data: bytes) -> bool:
    return data[:4] in _TIFF_MAGIC


def _decode_other(data: bytes, path: str) -> Tuple[np.ndarray, int]:
    """Decode a non-TIFF file: (H, W[, C]) RGB(A) array, EXIF orientation."""
    _check_complete(data, path)
    raw = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if raw is None:  # formats OpenCV lacks (e.g. some GIF): try PIL
        try:
            with Image.open(io.BytesIO(data)) as img:
                raw = np.array(img.convert('RGBA' if img.mode in (
                    'RGBA', 'LA', 'PA') else 'RGB' if img.mode in (
                        'P', 'RGB', 'CMYK', 'YCbCr') else img.mode))
        except Exception as e:
            raise ValueError(
                f'image {path} could not be decoded (not an image, or a '
                f'format neither OpenCV nor PIL reads: {e}). Fix: convert '
                'it to PNG, JPEG or TIFF.')
    elif raw.ndim == 3 and raw.shape[2] in (3, 4):
        raw = raw[..., [2, 1, 0] + ([3] if raw.shape[2] == 4 else [])]
    return raw, exif_orientation(data)


def _check_complete(data: bytes, path: str) -> None:
    """Raise ValueError if a JPEG or PNG file is truncated.

    A file whose end marker is missing (JPEG ``FFD9``, PNG ``IEND``) is
    fully decoded by PIL, which stops at the marker (so trailing data such as
    motion-photo videos is fine) and raises on a real truncation.
    """
    if data[:3] == b'\xff\xd8\xff':
        complete = data.rstrip(b'\x00\r\n ').endswith(b'\xff\xd9')
    elif data[:8] == b'\x89PNG\r\n\x1a\n':
        complete = data[-12:-4] == b'\x00\x00\x00\x00IEND'
    else:
        return
    if complete:
        return
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
    except Exception as e:
        raise ValueError(
            f'image {path} is truncated or corrupt ({e}; {len(data)} '
            'bytes). Fix: copy or export the file again.')


def exif_orientation(data: bytes) -> int:
    """EXIF orientation (1..8) of encoded image bytes; 1 if absent."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            return orientation_of(img)
    except Exception:
        return 1


def orientation_of(img: Image.Image) -> int:
    """EXIF (or TIFF) orientation 1..8 of an open PIL image (only its
    header is read); 1 if absent, unreadable or out of range."""
    try:
        value = int(img.getexif().get(_ORIENTATION_TAG, 1))
    except Exception:  # noqa: BLE001 (a broken EXIF block: not rotated)
        return 1
    return value if 1 <= value <= 8 else 1


def apply_orientation(array: np.ndarray, orientation: int) -> np.ndarray:
    """Turn an (H, W[, C]) array as stored into its upright view.

    Same operations as ``PIL.ImageOps.exif_transpose``: 2 mirror, 3 rotate
    180, 4 flip, 5 transpose, 6 rotate 90 clockwise, 7 transverse, 8 rotate
    90 counter-clockwise. Orientations 5-8 swap H and W.
    """
    ops = {
        1: lambda a: a,
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: np.rot90(a, 2).swapaxes(0, 1),
        8: lambda a: np.rot90(a, 1),
    }
    return np.ascontiguousarray(ops.get(int(orientation), ops[1])(array))


def _select_channel(raw: np.ndarray, path: str,
                    channel: Optional[int]) -> np.ndarray:
    """Pick plane ``channel`` of an (H, W, C) array; check the layout."""
    if raw.ndim == 3 and raw.shape[2] == 1:
        raw = raw[..., 0]
    if channel is not None and raw.ndim == 3:
        if not 0 <= channel < raw.shape[2]:
            raise ValueError(f'image {path} has {raw.shape[2]} channels; '
                             f'channel={channel} is out of range.')
        return raw[..., channel]
    if raw.ndim == 3 and raw.shape[2] == 2:  # grey + alpha
        return raw[..., 0]
    if raw.ndim == 2 or (raw.ndim == 3 and raw.shape[2] in (3, 4)):
        return raw[..., :3] if raw.ndim == 3 else raw
    raise ValueError(f'image {path} has shape {raw.shape}; expected grey, '
                     'RGB or RGBA. Fix: pick a plane with channel=K.')


def _to_uint8(raw: np.ndarray, path: str, low: float,
              high: float) -> np.ndarray:
    """uint8 as is, bool x 255, anything else stretched per image."""
    if raw.dtype == np.uint8:
        return raw
    if raw.dtype == bool:
        return raw.astype(np.uint8) * 255
    if not (np.issubdtype(raw.dtype, np.integer)
            or np.issubdtype(raw.dtype, np.floating)):
        raise ValueError(f'image {path} has pixel type {raw.dtype}; only '
                         'integer and float images are supported.')
    values = raw.astype(np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        warn_once(path, 'range', f'image {path} holds no finite value: it '
                  'becomes all black. Fix: check the file.')
        return np.zeros(raw.shape, np.uint8)
    valid = values[finite]
    lo, hi = (float(v) for v in np.percentile(valid, [low, high]))
    if hi <= lo:
        lo, hi = float(valid.min()), float(valid.max())
        if hi > lo:
            warn_once(
                path, 'percentiles', f'image {path}: its {low} and {high} '
                f'percentiles are equal ({lo:g}); stretching min..max '
                f'({lo:g}..{hi:g}) instead. Fix: widen the percentiles if '
                'the objects are that sparse.')
        else:
            hi = lo + 1.0
    out = np.clip((np.where(finite, values, lo) - lo) / (hi - lo), 0.0, 1.0)
    return np.round(out * 255.0).astype(np.uint8)


def _check_dynamic_range(image: np.ndarray, path: str, raw_dtype: np.dtype,
                         min_dynamic_range: int) -> None:
    """Warn (once per file) when the 8-bit result is almost uniform."""
    lo, hi = int(image.min()), int(image.max())
    if hi - lo + 1 >= min_dynamic_range:
        return
    warn_once(
        path, 'range', f'image {path} ({raw_dtype}) spans only grey levels '
        f'{lo}..{hi} after loading: the network sees an almost uniform '
        'image and its masks will be meaningless. Fix: check the file (wrong '
        'channel or page? an 8-bit export of 16-bit data?) or save it with '
        'its full dynamic range.')


def read_image_size(path: str,
                    channel: Optional[int] = None,
                    backend_args: Optional[dict] = None) -> Tuple[int, int]:
    """(H, W) of the upright image, as :func:`read_image_file` gives it."""
    image = read_image_file(path, 'rgb', channel=channel,
                            backend_args=backend_args)
    return int(image.shape[0]), int(image.shape[1])
