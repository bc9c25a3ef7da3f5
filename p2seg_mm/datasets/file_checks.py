# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Checks of the image and semantic pseudo-map files of a dataset.

Header checks (exists, readable, size against the json, EXIF orientation,
bit depth, index mode) for every file, decoded pixels for a bounded sample
(pseudo-map values; each training point on a pixel of its class or ignore,
:func:`points_off_class`, a warning otherwise); each returns a list of
:class:`~.data_checks.DataProblem`, as the json checks of
:mod:`.data_checks`. Images follow the loading rule of :mod:`.image_io`,
pseudo-maps that of :mod:`.seg_map_io` (0 = background, ``c + 1`` = class
``c``, 255 = ignore).
"""
import io
import os.path as osp
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
from PIL import Image

from .data_checks import DataProblem, error, warning
from .image_io import apply_orientation, orientation_of
from .seg_map_io import (IGNORE_INDEX, INDEX_MODES, allowed_seg_values,
                         invalid_seg_values)

#: PIL modes of 8-bit (or 1-bit) files: every image loader reads them
#: without change.
EIGHT_BIT_MODES = ('L', 'RGB', 'P', 'RGBA', 'LA', 'CMYK', 'YCbCr', '1')
#: The loader of the loading rule (:mod:`.image_io`).
RULE_LOADER = 'LoadP2SegImageFromFile'


def _open_image(source: Union[str, bytes]) -> Image.Image:
    """PIL image of a local path (read lazily: a header check reads only
    the header) or of bytes."""
    if isinstance(source, bytes):
        return Image.open(io.BytesIO(source))
    return Image.open(source)


def _read(path: str,
          backend_args: Optional[dict]) -> Optional[Union[str, bytes]]:
    """``path`` itself for a local file, the bytes for other backends, None
    if the file does not exist."""
    from mmengine.fileio import exists, get
    if (backend_args is None or backend_args.get('backend') == 'local') \
            and '://' not in path:
        return path if osp.isfile(path) else None
    if not exists(path, backend_args=backend_args):
        return None
    return get(path, backend_args=backend_args)


def _bomb_message(path: str, what: str, err: Exception) -> str:
    return (f'{what} {path} is refused by PIL as too large ({err}). Fix: '
            'downscale the image, its points and its pseudo-map together '
            '(P2Seg decodes at full resolution), or raise '
            'PIL.Image.MAX_IMAGE_PIXELS if you trust the file and have the '
            'memory.')


def image_loader_of(pipeline) -> Optional[str]:
    """Type name of the image loader of a pipeline (dicts or transforms):
    its first ``Load*Image*`` step; ``''`` if the pipeline loads no image,
    None if the pipeline is unknown (not a list)."""
    if not isinstance(pipeline, (list, tuple)):
        return None
    for step in pipeline:
        name = (str(step.get('type', '')) if isinstance(step, dict) else
                type(step).__name__).split('.')[-1]
        if name.startswith('Load') and 'Image' in name:
            return name
    return ''


def _more_than_8_bits(img: Image.Image) -> bool:
    """Whether a file holds more than 8 bits per channel (16-bit RGB PNGs
    and TIFFs open in PIL mode 'RGB'; their raw mode tells)."""
    if img.mode not in EIGHT_BIT_MODES:
        return True
    for tile in getattr(img, 'tile', None) or []:
        args = getattr(tile, 'args', None)
        if args is None and len(tile) > 3:
            args = tile[3]
        rawmode = args[0] if isinstance(args, tuple) and args else args
        if isinstance(rawmode, str) and ';16' in rawmode:
            return True
    return False


def _bit_depth_message(where: str, path: str, mode: str,
                       loader: Optional[str]) -> Optional[str]:
    """Warning for a file of more than 8 bits; None if the loader handles
    it (the loading rule stretches it per image) or nothing loads it."""
    if loader in (RULE_LOADER, ''):
        return None
    stretch = (f'{RULE_LOADER} (the loading rule, p2seg_mm.datasets.'
               'image_io) stretches it per image to 8 bits between the '
               'percentiles 1 and 99.8 of its values')
    if loader is None:
        return (f'{where}: image {path} has more than 8 bits per channel '
                f'(PIL mode {mode!r}). {stretch}; mmcv\'s LoadImageFromFile'
                ' would keep only its high byte (a dark or black image). '
                f'Fix: load it with {RULE_LOADER} in every pipeline.')
    return (f'{where}: image {path} has more than 8 bits per channel (PIL '
            f'mode {mode!r}) but the pipeline loads it with {loader}, which '
            'keeps only its high byte: the image is darkened (values below '
            f'256 become black). Fix: use {RULE_LOADER} (same arguments): '
            f'{stretch}.')


def check_image_file(path: str,
                     json_hw: Tuple[int, int],
                     where: str,
                     decode: bool = False,
                     backend_args: Optional[dict] = None,
                     loader: Optional[str] = None
                     ) -> Tuple[List[DataProblem], Optional[Tuple[int, int]]]:
    """Check one image file against its json entry.

    Header checks (fast): exists, readable, size ``(height, width)`` equal
    to the json's **in the upright frame** (the loading rule applies the
    EXIF orientation, so orientations 5-8 swap the stored width and
    height), EXIF orientation, bit depth. With ``decode`` the pixels are
    decoded too (truncated files).

    Args:
        path (str): Image path.
        json_hw (tuple[int, int]): ``(height, width)`` of the json entry.
        where (str): ``'<json>: image id <id>'`` prefix of messages.
        decode (bool): Decode the pixels. Defaults to False.
        backend_args (dict, optional): File backend. Defaults to None.
        loader (str, optional): Type of the pipeline's image loader
            (:func:`image_loader_of`); more than 8 bits are fine for
            ``LoadP2SegImageFromFile`` (stretched per image) and ``''`` (no
            loader), a warning for other loaders (darkened) and, with None
            (unknown), a warning naming both. Defaults to None.

    Returns:
        tuple: ``(problems, upright (height, width) of the file or None)``.
    """
    data = _read(path, backend_args)
    if data is None:
        return [error(f'{where}: image file {path} does not exist. Fix: '
                      'check data_root and data_prefix["img"].')], None
    try:
        with _open_image(data) as img:
            width, height = img.size
            mode = img.mode
            deep = _more_than_8_bits(img)
            orientation = orientation_of(img)
            if decode:
                img.load()
    except Image.DecompressionBombError as err:
        return [error(f'{where}: ' + _bomb_message(path, 'image', err))], None
    except Exception as err:  # noqa: BLE001 (any decoder failure)
        return [error(f'{where}: image file {path} cannot be read '
                      f'({type(err).__name__}: {err}). Fix: re-export or '
                      'replace the file (truncated or corrupt).')], None
    problems = []
    stored = f'{height} x {width}'
    if orientation in (5, 6, 7, 8):  # shown (and loaded) transposed
        height, width = width, height
    if orientation != 1:
        problems.append(
            warning(f'{where}: image {path} has EXIF Orientation='
                    f'{orientation}: it is loaded upright ({height} x '
                    f'{width}, H x W), as viewers and annotation tools show '
                    f'it, not as its stored pixels ({stored}). Its points, '
                    'pseudo-map and json size must be in the upright frame '
                    '(annotation tools export them so). Only if they were '
                    'made on the stored pixels: remove the Orientation tag, '
                    'keeping the pixels.'))
    if (height, width) != tuple(json_hw):
        if orientation in (5, 6, 7, 8) and (width, height) == tuple(json_hw):
            problems.append(
                error(f'{where}: image file {path} is {height} x {width} (H x'
                      f' W) upright but the json says {json_hw[0]} x '
                      f'{json_hw[1]}, its stored size: the file carries EXIF '
                      f'Orientation={orientation}, which the loader applies '
                      '(images are used upright, as viewers and annotation '
                      'tools show them). Fix: write the upright size in the '
                      'json "height"/"width", with points and pseudo-map in '
                      'that frame; only if the points were made on the stored'
                      ' pixels, remove the Orientation tag instead, keeping '
                      'the pixels.'))
        else:
            problems.append(
                error(f'{where}: image file {path} is {height} x {width} (H x'
                      f' W) but the json says {json_hw[0]} x {json_hw[1]}: '
                      'points and pseudo-map would be read at the wrong '
                      'scale. Fix: write the real size in the json "height"/'
                      '"width" (and the points in that image\'s pixels).'))
    if deep:
        message = _bit_depth_message(where, path, mode, loader)
        if message is not None:
            problems.append(warning(message))
    return problems, (height, width)


def check_seg_map_file(path: str,
                       image_hw: Optional[Tuple[int, int]],
                       num_classes: Optional[int],
                       where: str,
                       decode: bool = True,
                       backend_args: Optional[dict] = None
                       ) -> List[DataProblem]:
    """Check one semantic pseudo-map.

    Header checks: exists, readable, single-channel index mode, size equal
    to the image's (both upright: an EXIF orientation of the map is applied
    as the loader does). With ``decode``: values only ``0..num_classes`` and
    ``255``.

    Args:
        path (str): Pseudo-map path.
        image_hw (tuple[int, int], optional): The image's ``(height,
            width)``; None skips the size check.
        num_classes (int, optional): Foreground classes C; None allows
            ``0..255``.
        where (str): Message prefix (json and image id).
        decode (bool): Decode and check the values. Defaults to True.
        backend_args (dict, optional): File backend. Defaults to None.

    Returns:
        list[DataProblem]: The problems found.
    """
    return _check_seg_map(path, image_hw, num_classes, where, decode,
                          backend_args)[0]


def _check_seg_map(path: str, image_hw: Optional[Tuple[int, int]],
                   num_classes: Optional[int], where: str, decode: bool,
                   backend_args: Optional[dict]
                   ) -> Tuple[List[DataProblem], Optional[np.ndarray]]:
    """:func:`check_seg_map_file`, and the decoded map, upright (as
    :func:`~.seg_map_io.read_seg_map` gives it), when it was decoded and
    has the image's size (None otherwise)."""
    data = _read(path, backend_args)
    if data is None:
        return [error(f'{where}: semantic pseudo-map {path} does not exist. '
                      'Fix: create it, or point data_prefix["seg"] / '
                      'seg_map_suffix at the pseudo-map folder.')], None
    try:
        with _open_image(data) as img:
            width, height = img.size
            orientation = orientation_of(img)
            if orientation in (5, 6, 7, 8):  # loaded upright
                width, height = height, width
            mode = img.mode
            if mode not in INDEX_MODES:
                return [error(
                    f'{where}: semantic pseudo-map {path} has PIL mode '
                    f'{mode!r}; it must be a single-channel index PNG (L or '
                    'P) with 0 = background, c + 1 = class c, 255 = ignore. '
                    'Fix: save the label array, not a colour rendering.')
                        ], None
            seg_map = values = None
            if decode:
                seg_map = np.asarray(img)
                values = np.unique(seg_map)
    except Image.DecompressionBombError as err:
        return [error(f'{where}: ' +
                      _bomb_message(path, 'semantic pseudo-map', err))], None
    except Exception as err:  # noqa: BLE001 (any decoder failure)
        return [error(f'{where}: semantic pseudo-map {path} cannot be read '
                      f'({type(err).__name__}: {err}). Fix: re-write it.')
                ], None
    problems = []
    if image_hw is not None and (height, width) != tuple(image_hw):
        seg_map = None
        problems.append(
            error(f'{where}: semantic pseudo-map {path} is {height} x {width} '
                  f'(H x W) but its image is {image_hw[0]} x {image_hw[1]}. '
                  + ('The map has the image\'s size transposed: an image '
                    'with EXIF Orientation 5-8 is loaded upright, so its map '
                    'must be in that upright frame. '
                    if (width, height) == tuple(image_hw) else '') +
                  'Fix: write the map at the image resolution.'))
    if values is not None:
        bad = invalid_seg_values(values, num_classes)
        if bad.size:
            problems.append(
                error(f'{where}: semantic pseudo-map {path} holds values '
                      f'{bad.tolist()[:10]} that are not classes; allowed '
                      f'are {allowed_seg_values(num_classes)}. Fix the map '
                      '(or the config classes).'))
    if seg_map is not None:
        if seg_map.dtype == bool:
            seg_map = seg_map.astype(np.uint8)
        if seg_map.ndim != 2:
            seg_map = None
        elif orientation != 1:
            seg_map = apply_orientation(seg_map, orientation)
    return problems, seg_map


def points_off_class(seg_map: np.ndarray, points: Sequence[dict],
                     num_classes: Optional[int]) -> List[Tuple[dict, int]]:
    """The points whose pseudo-map pixel gives their object to another
    class.

    A point ``(x, y)`` lies on pixel ``(floor(y), floor(x))`` (continuous
    pixel coordinates, docs/design.md). Map values: ``0`` background,
    ``label + 1`` class ``label``, ``255`` ignore. A point is off class when
    its pixel holds neither ``label + 1`` nor 255, i.e. background or
    another class. Pixels outside the map and values that are no class
    (an error of :func:`check_seg_map_file`) are skipped.

    Args:
        seg_map (np.ndarray): The (H, W) pseudo-map, upright.
        points (Sequence[dict]): ``dict(ann_id, point=(x, y), label)``
            (:func:`~.data_checks.point_records`).
        num_classes (int, optional): Foreground classes C; None allows
            every value below 255.

    Returns:
        list[tuple[dict, int]]: ``(point record, map value)`` per off-class
        point, in the order of ``points``.
    """
    height, width = seg_map.shape[:2]
    top = IGNORE_INDEX - 1 if num_classes is None else num_classes
    found = []
    for record in points:
        x, y = record['point']
        row, col = int(np.floor(y)), int(np.floor(x))
        if not (0 <= row < height and 0 <= col < width):
            continue
        value = int(seg_map[row, col])
        if value in (record['label'] + 1, IGNORE_INDEX) or not \
                0 <= value <= top:
            continue
        found.append((record, value))
    return found


#: Points off their class listed one by one per dataset; the rest counted.
MAX_LISTED_POINTS = 10


def _value_meaning(value: int, classes: Optional[Sequence[str]]) -> str:
    """What a pseudo-map value stands for, for messages."""
    if value == 0:
        return 'background'
    if classes is not None and value <= len(classes):
        return f'class {classes[value - 1]!r}'
    return f'class {value - 1}'


def _class_name(label: int, classes: Optional[Sequence[str]]) -> str:
    if classes is not None and 0 <= label < len(classes):
        return repr(classes[label])
    return str(label)


def off_class_warnings(found: Sequence[Tuple[str, str, dict, int]],
                       source: str,
                       classes: Optional[Sequence[str]],
                       max_listed: int = MAX_LISTED_POINTS
                       ) -> List[DataProblem]:
    """Warnings for the points of a dataset that lie off their class.

    Args:
        found (Sequence[tuple]): ``(where, map path, point record, map
            value)`` per off-class point (:func:`points_off_class`), where
            is the ``'<json>: image id <id> (<image>)'`` prefix.
        source (str): The json, for the summary.
        classes (Sequence[str], optional): Class names (label order).
        max_listed (int): Points listed one by one; one more warning counts
            the rest. Defaults to :data:`MAX_LISTED_POINTS`.

    Returns:
        list[DataProblem]: One warning per listed point (json, image id,
        annotation id, the point, its class, the map value and what it
        means, the fix), and a summary of the rest if there are more.
    """
    problems = []
    for where, path, record, value in found[:max_listed]:
        x, y = record['point']
        meaning = _value_meaning(value, classes)
        problems.append(
            warning(f'{where}, annotation id {record["ann_id"]}: point '
                    f'({x}, {y}) of class '
                    f'{_class_name(record["label"], classes)} lies on a '
                    f'pixel of value {value} ({meaning}) in the semantic '
                    f'pseudo-map {path}, not {record["label"] + 1} (its '
                    f'class) or {IGNORE_INDEX} (ignore): the pseudo-map '
                    f'gives this object\'s pixel to {meaning}, so the point '
                    'will likely get the fallback square / no mask. Fix the '
                    'point (onto its object) or the map.'))
    rest = found[max_listed:]
    if rest:
        ids = [record['ann_id'] for _, _, record, _ in rest]
        problems.append(
            warning(f'{source}: {len(rest)} more point(s) lie on a '
                    'semantic pseudo-map pixel that is neither their class '
                    f'nor {IGNORE_INDEX} (ignore), {len(found)} in all '
                    f'(annotation ids {ids[:20]}'
                    f'{" ..." if len(ids) > 20 else ""}): the pseudo-map '
                    'gives those objects\' pixels to another class or '
                    'background, so their points will likely get the '
                    'fallback square / no mask. Fix the points or the '
                    'maps.'))
    return problems


def sample_indices(num: int, limit: Optional[int]) -> List[int]:
    """``limit`` evenly spread positions of ``range(num)`` (all if None)."""
    if limit is None or limit >= num:
        return list(range(num))
    if limit <= 0:
        return []
    return sorted({int(i) for i in np.linspace(0, num - 1, limit)})


def check_data_files(data_list: Sequence[dict],
                     source: str,
                     num_classes: Optional[int],
                     check_seg: bool,
                     max_decode: Optional[int] = None,
                     backend_args: Optional[dict] = None,
                     loader: Optional[str] = None,
                     classes: Optional[Sequence[str]] = None
                     ) -> List[DataProblem]:
    """Check the image and pseudo-map files of parsed ``data_info`` dicts.

    Every file's header is checked; the pixels of at most ``max_decode``
    images and pseudo-maps (evenly spread, None = all) are decoded. In a
    decoded pseudo-map of the image's size, each of the image's ``points``
    must lie on its class or on ignore (:func:`points_off_class`: pixel
    ``(floor(y), floor(x))`` holds ``label + 1`` or 255); a point on
    background (0) or on another class is a warning
    (:func:`off_class_warnings`: the first :data:`MAX_LISTED_POINTS` of the
    dataset listed, the rest counted). Missing maps are an error of their
    own, with no point check.

    Args:
        data_list (Sequence[dict]): ``img_path``, ``img_id``,
            ``height``, ``width`` and ``seg_map_path`` per image, and
            optionally ``points``, the image's training points
            (:func:`~.data_checks.point_records`).
        source (str): The json, for messages.
        num_classes (int, optional): Foreground classes of the maps.
        check_seg (bool): Check the pseudo-maps.
        max_decode (int, optional): Images (and maps) decoded in full.
            Defaults to None (all).
        backend_args (dict, optional): File backend. Defaults to None.
        loader (str, optional): Type of the pipeline's image loader (see
            :func:`check_image_file`). Defaults to None (unknown).
        classes (Sequence[str], optional): Class names in label order, for
            the messages of points off their class. Defaults to None.

    Returns:
        list[DataProblem]: Every problem found.
    """
    decoded = set(sample_indices(len(data_list), max_decode))
    problems, off_class = [], []
    for i, info in enumerate(data_list):
        where = (f'{source}: image id {info["img_id"]} '
                 f'({info["img_path"]})')
        img_problems, file_hw = check_image_file(
            info['img_path'], (info['height'], info['width']), where,
            decode=i in decoded, backend_args=backend_args, loader=loader)
        problems += img_problems
        if check_seg and info.get('seg_map_path'):
            seg_problems, seg_map = _check_seg_map(
                info['seg_map_path'], file_hw or
                (info['height'], info['width']), num_classes, where,
                i in decoded, backend_args)
            problems += seg_problems
            if seg_map is not None and info.get('points'):
                off_class += [
                    (where, info['seg_map_path'], record, value)
                    for record, value in points_off_class(
                        seg_map, info['points'], num_classes)
                ]
    return problems + off_class_warnings(off_class, source, classes)
