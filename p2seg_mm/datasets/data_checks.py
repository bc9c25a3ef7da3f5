# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Checks of COCO jsons, images and semantic pseudo-maps.

Each check returns a list of :class:`DataProblem` (never stops at the first
one), so ``tools/analysis_tools/check_dataset.py`` reports every problem of
a dataset at once; :class:`~p2seg_mm.datasets.CocoPointDataset` runs the
same checks when it is built (every json and file header, a bounded sample
of decoded pseudo-maps) and raises :class:`DataCheckError` listing them,
so bad data fails before the first training iteration.

Every message names the file, image id and/or annotation id and the fix.
"""
import io
import math
import os.path as osp
from collections import Counter
from dataclasses import dataclass
from numbers import Real
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from PIL import Image

from .categories import category_to_label

#: PIL modes that hold one integer index per pixel (pseudo-maps).
INDEX_MODES = ('P', 'L', '1', 'I', 'I;16', 'I;16B', 'I;16L')
#: PIL modes of 8-bit (or 1-bit) files: every image loader reads them
#: without change.
EIGHT_BIT_MODES = ('L', 'RGB', 'P', 'RGBA', 'LA', 'CMYK', 'YCbCr', '1')
#: The loader of the loading rule (:mod:`.image_io`).
RULE_LOADER = 'LoadP2SegImageFromFile'
IGNORE_INDEX = 255
_EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True)
class DataProblem:
    """One problem found in a dataset.

    Args:
        level (str): ``'error'`` (training would be wrong or crash) or
            ``'warning'`` (suspicious, training runs).
        message (str): What, where (file / image id / annotation id) and
            the fix.
    """

    level: str
    message: str

    def __str__(self) -> str:
        return f'{self.level.upper()}: {self.message}'


class DataCheckError(ValueError):
    """Raised with every error found (up to ``max_listed`` listed)."""

    def __init__(self,
                 problems: Sequence[DataProblem],
                 what: str,
                 max_listed: int = 20) -> None:
        errors = [p for p in problems if p.level == 'error']
        lines = [f'{len(errors)} problem(s) in {what}:']
        lines += [f'  - {p.message}' for p in errors[:max_listed]]
        if len(errors) > max_listed:
            lines.append(f'  ... and {len(errors) - max_listed} more; '
                         'run tools/analysis_tools/check_dataset.py CONFIG '
                         'to list them all.')
        super().__init__('\n'.join(lines))
        self.problems = list(problems)


def errors_of(problems: Sequence[DataProblem]) -> List[DataProblem]:
    """The ``'error'`` problems of ``problems``."""
    return [p for p in problems if p.level == 'error']


def is_number(value) -> bool:
    """Whether ``value`` is a finite real number (bools excluded)."""
    return (isinstance(value, Real) and not isinstance(value, bool)
            and math.isfinite(value))


def _err(message: str) -> DataProblem:
    return DataProblem('error', message)


def _warn(message: str) -> DataProblem:
    return DataProblem('warning', message)


def _repeated(values) -> list:
    return sorted((v for v, n in Counter(values).items() if n > 1), key=str)


# --------------------------------------------------------------------------
# json structure
# --------------------------------------------------------------------------
def check_coco_structure(coco: dict, source: str) -> List[DataProblem]:
    """Ids unique, references resolvable, image entries complete.

    Args:
        coco (dict): A loaded COCO instances json.
        source (str): Its path, for messages.

    Returns:
        list[DataProblem]: Empty image list, repeated image / annotation /
        category ids, image entries without ``file_name`` or a positive
        ``width``/``height``, annotations of unknown images or categories.
    """
    problems = []
    images = coco.get('images') or []
    if not images:
        problems.append(
            _err(f'{source}: the json has no "images" (or an empty list). '
                 'Fix: write one entry per image with "id", "file_name", '
                 '"height" and "width".'))
    img_ids = [img.get('id') for img in images]
    for img_id in _repeated(img_ids):
        files = [img.get('file_name') for img in images
                 if img.get('id') == img_id]
        problems.append(
            _err(f'{source}: image id {img_id} is used by {len(files)} image '
                 f'entries ({files}); pycocotools keeps only the last, so '
                 'the others would silently disappear and their annotations '
                 'move to it. Fix: give every image a unique "id".'))
    for name in _repeated(img.get('file_name') for img in images):
        problems.append(
            _warn(f'{source}: file_name {name!r} is listed by more than one '
                  'image entry. Fix: list each image once.'))
    for img in images:
        where = (f'{source}: image id {img.get("id")} '
                 f'({img.get("file_name")!r})')
        if not img.get('file_name'):
            problems.append(_err(f'{where} has no "file_name". Fix: add it.'))
        width, height = img.get('width'), img.get('height')
        if not (is_number(width) and is_number(height)) or min(
                width, height) <= 0:
            problems.append(
                _err(f'{where} has no valid "width"/"height" (got {width!r}, '
                     f'{height!r}). Fix: write the image size in the json.'))
    anns = coco.get('annotations') or []
    repeated = _repeated(ann.get('id') for ann in anns)
    if repeated:
        problems.append(
            _err(f'{source}: annotation ids {repeated[:10]} are used more '
                 'than once. Fix: give every annotation a unique "id".'))
    known_imgs = set(img_ids)
    cat_ids = {cat.get('id') for cat in coco.get('categories') or []}
    for ann in anns:
        if ann.get('image_id') not in known_imgs:
            problems.append(
                _err(f'{source}: annotation id {ann.get("id")} refers to '
                     f'image id {ann.get("image_id")!r}, which is not in '
                     '"images". Fix: add the image or drop the annotation.'))
        if ann.get('category_id') not in cat_ids:
            problems.append(
                _err(f'{source}: annotation id {ann.get("id")} (image id '
                     f'{ann.get("image_id")}) has category_id '
                     f'{ann.get("category_id")!r}, not in "categories" '
                     f'{sorted(cat_ids, key=str)}. Fix the category_id or '
                     'add the category.'))
    return problems


def check_categories(coco: dict, classes: Optional[Sequence[str]],
                     source: str) -> List[DataProblem]:
    """The json categories against the config classes (the one rule of
    :func:`~p2seg_mm.datasets.categories.category_to_label`)."""
    try:
        category_to_label(coco.get('categories') or [], classes, source)
    except ValueError as err:
        return [_err(str(err))]
    return []


def image_sizes(coco: dict) -> Dict[int, Tuple[float, float]]:
    """``image id -> (height, width)`` of the json's image entries."""
    return {
        img.get('id'): (img.get('height'), img.get('width'))
        for img in coco.get('images') or []
    }


def point_problem(ann: dict, height: Real, width: Real) -> Optional[str]:
    """Why an annotation's ``point`` is invalid (None if it is fine).

    A valid point is ``[x, y]``, two finite numbers with ``0 <= x < width``
    and ``0 <= y < height`` (continuous pixel coordinates).
    """
    if 'point' not in ann:
        return ('has no "point". Fix: convert the json with a point per '
                'annotation ("point": [x, y] in image pixels).')
    point = ann['point']
    if not (isinstance(point, (list, tuple)) and len(point) == 2
            and all(is_number(v) for v in point)):
        return (f'"point" must be a list of 2 finite numbers [x, y], got '
                f'{point!r}. Fix the converter output.')
    x, y = float(point[0]), float(point[1])
    if not (0 <= x < width and 0 <= y < height):
        return (f'point ({x}, {y}) lies outside the image of width {width} '
                f'and height {height} (need 0 <= x < width, 0 <= y < '
                'height). Fix the point or the image size.')
    return None


def check_points(coco: dict, source: str) -> List[DataProblem]:
    """Every non-``ignore`` annotation has a valid point inside its image.

    Returns:
        list[DataProblem]: One error per bad annotation.
    """
    sizes = image_sizes(coco)
    problems = []
    for ann in coco.get('annotations') or []:
        if ann.get('ignore', False) or ann.get('image_id') not in sizes:
            continue
        height, width = sizes[ann['image_id']]
        if not (is_number(width) and is_number(height)):
            continue
        reason = point_problem(ann, height, width)
        if reason is not None:
            problems.append(
                _err(f'{source}: image id {ann["image_id"]}, annotation id '
                     f'{ann.get("id")}: {reason}'))
    return problems


def segmentation_problem(ann: dict, height: int,
                         width: int) -> Optional[str]:
    """Why an annotation's ``segmentation`` would break pycocotools.

    Accepted: a non-empty list of polygons, each an even number (>= 6) of
    finite numbers; an RLE dict of ``size == [height, width]`` whose
    ``counts`` is a string or a list of non-negative integers summing to
    ``height * width``.

    Returns:
        str | None: The reason, or None for a valid segmentation.
    """
    segm = ann.get('segmentation')
    if segm is None:
        return 'has no "segmentation"'
    if isinstance(segm, list):
        if not segm:
            return '"segmentation" is an empty list (no polygon)'
        for k, poly in enumerate(segm):
            if not (isinstance(poly, (list, tuple))
                    and all(is_number(v) for v in poly)):
                return (f'polygon {k} of "segmentation" is not a flat list '
                        'of finite numbers')
            if len(poly) < 6 or len(poly) % 2:
                return (f'polygon {k} of "segmentation" has {len(poly)} '
                        'numbers; a polygon needs an even number, at least '
                        '6 (x1, y1, x2, y2, x3, y3, ...)')
        return None
    if isinstance(segm, dict):
        size = segm.get('size')
        if list(size or []) != [height, width]:
            return (f'RLE "size" {size} differs from the image (height, '
                    f'width) [{height}, {width}]')
        counts = segm.get('counts')
        if isinstance(counts, list):
            if not all(isinstance(c, int) and c >= 0 for c in counts):
                return 'uncompressed RLE "counts" must be non-negative ints'
            if sum(counts) != height * width:
                return (f'uncompressed RLE "counts" sum to {sum(counts)}, '
                        f'not height * width = {height * width}')
            return None
        if not isinstance(counts, (str, bytes)) or not counts:
            return 'compressed RLE "counts" must be a non-empty string'
        return None
    return f'"segmentation" of type {type(segm).__name__} is not supported'


def check_segmentations(coco: dict, source: str) -> List[DataProblem]:
    """Every annotation's mask is one pycocotools can decode.

    For ground-truth jsons of the metrics (``CocoMetric``,
    ``VOCInstanceMetric``, ``eval_pseudo_masks.py``), crowd annotations
    included (COCOeval decodes them too).
    """
    sizes = image_sizes(coco)
    problems = []
    for ann in coco.get('annotations') or []:
        if ann.get('image_id') not in sizes:
            continue
        height, width = sizes[ann['image_id']]
        reason = segmentation_problem(ann, height, width)
        if reason is not None:
            problems.append(
                _err(f'{source}: annotation id {ann.get("id")} of image id '
                     f'{ann["image_id"]} {reason}. Fix: redraw the mask or '
                     'delete the annotation (pycocotools would crash on '
                     'it).'))
    return problems


def validate_segmentation(ann: dict, height: int, width: int,
                          where: str) -> None:
    """Raise ``ValueError`` naming ``where`` if ``segmentation`` is bad."""
    reason = segmentation_problem(ann, height, width)
    if reason is not None:
        raise ValueError(
            f'{where}annotation id {ann.get("id")} of image id '
            f'{ann.get("image_id")} {reason}. Fix: redraw the mask or '
            'delete the annotation.')


# --------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------
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


def _orientation(img: Image.Image) -> int:
    """EXIF (or TIFF) orientation 1..8 of an open image; 1 if absent."""
    try:
        value = int(img.getexif().get(_EXIF_ORIENTATION, 1))
    except Exception:  # noqa: BLE001 (a broken EXIF block: not rotated)
        return 1
    return value if 1 <= value <= 8 else 1


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
        return [_err(f'{where}: image file {path} does not exist. Fix: '
                     'check data_root and data_prefix["img"].')], None
    try:
        with _open_image(data) as img:
            width, height = img.size
            mode = img.mode
            deep = _more_than_8_bits(img)
            orientation = _orientation(img)
            if decode:
                img.load()
    except Image.DecompressionBombError as err:
        return [_err(f'{where}: ' + _bomb_message(path, 'image', err))], None
    except Exception as err:  # noqa: BLE001 (any decoder failure)
        return [_err(f'{where}: image file {path} cannot be read '
                     f'({type(err).__name__}: {err}). Fix: re-export or '
                     'replace the file (truncated or corrupt).')], None
    problems = []
    stored = f'{height} x {width}'
    if orientation in (5, 6, 7, 8):  # shown (and loaded) transposed
        height, width = width, height
    if orientation != 1:
        problems.append(
            _warn(f'{where}: image {path} has EXIF Orientation='
                  f'{orientation}: it is loaded upright ({height} x {width}, '
                  f'H x W), as viewers and annotation tools show it, not as '
                  f'its stored pixels ({stored}). Its points, pseudo-map and '
                  'json size must be in the upright frame (annotation tools '
                  'export them so). Only if they were made on the stored '
                  'pixels: remove the Orientation tag, keeping the pixels.'))
    if (height, width) != tuple(json_hw):
        if orientation in (5, 6, 7, 8) and (width, height) == tuple(json_hw):
            problems.append(
                _err(f'{where}: image file {path} is {height} x {width} (H x'
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
                _err(f'{where}: image file {path} is {height} x {width} (H x'
                     f' W) but the json says {json_hw[0]} x {json_hw[1]}: '
                     'points and pseudo-map would be read at the wrong '
                     'scale. Fix: write the real size in the json "height"/'
                     '"width" (and the points in that image\'s pixels).'))
    if deep:
        message = _bit_depth_message(where, path, mode, loader)
        if message is not None:
            problems.append(_warn(message))
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
    data = _read(path, backend_args)
    if data is None:
        return [_err(f'{where}: semantic pseudo-map {path} does not exist. '
                     'Fix: create it, or point data_prefix["seg"] / '
                     'seg_map_suffix at the pseudo-map folder.')]
    try:
        with _open_image(data) as img:
            width, height = img.size
            if _orientation(img) in (5, 6, 7, 8):  # loaded upright
                width, height = height, width
            mode = img.mode
            if mode not in INDEX_MODES:
                return [_err(
                    f'{where}: semantic pseudo-map {path} has PIL mode '
                    f'{mode!r}; it must be a single-channel index PNG (L or '
                    'P) with 0 = background, c + 1 = class c, 255 = ignore. '
                    'Fix: save the label array, not a colour rendering.')]
            values = None
            if decode:
                values = np.unique(np.asarray(img))
    except Image.DecompressionBombError as err:
        return [_err(f'{where}: ' +
                     _bomb_message(path, 'semantic pseudo-map', err))]
    except Exception as err:  # noqa: BLE001 (any decoder failure)
        return [_err(f'{where}: semantic pseudo-map {path} cannot be read '
                     f'({type(err).__name__}: {err}). Fix: re-write it.')]
    problems = []
    if image_hw is not None and (height, width) != tuple(image_hw):
        problems.append(
            _err(f'{where}: semantic pseudo-map {path} is {height} x {width} '
                 f'(H x W) but its image is {image_hw[0]} x {image_hw[1]}. '
                 + ('The map has the image\'s size transposed: an image '
                    'with EXIF Orientation 5-8 is loaded upright, so its map '
                    'must be in that upright frame. '
                    if (width, height) == tuple(image_hw) else '') +
                 'Fix: write the map at the image resolution.'))
    if values is not None:
        if num_classes is None:
            bad = values[(values < 0) | (values > IGNORE_INDEX)]
        else:
            bad = values[((values < 0) | (values > num_classes))
                         & (values != IGNORE_INDEX)]
        if bad.size:
            allowed = ('0..255' if num_classes is None else
                       f'0 (background), 1..{num_classes} (class + 1) and '
                       f'{IGNORE_INDEX} (ignore)')
            problems.append(
                _err(f'{where}: semantic pseudo-map {path} holds values '
                     f'{bad.tolist()[:10]} that are not classes; allowed '
                     f'are {allowed}. Fix the map (or the config classes).'))
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
                     loader: Optional[str] = None) -> List[DataProblem]:
    """Check the image and pseudo-map files of parsed ``data_info`` dicts.

    Every file's header is checked; the pixels of at most ``max_decode``
    images and pseudo-maps (evenly spread, None = all) are decoded.

    Args:
        data_list (Sequence[dict]): ``img_path``, ``img_id``,
            ``height``, ``width`` and ``seg_map_path`` per image.
        source (str): The json, for messages.
        num_classes (int, optional): Foreground classes of the maps.
        check_seg (bool): Check the pseudo-maps.
        max_decode (int, optional): Images (and maps) decoded in full.
            Defaults to None (all).
        backend_args (dict, optional): File backend. Defaults to None.
        loader (str, optional): Type of the pipeline's image loader (see
            :func:`check_image_file`). Defaults to None (unknown).

    Returns:
        list[DataProblem]: Every problem found.
    """
    decoded = set(sample_indices(len(data_list), max_decode))
    problems = []
    for i, info in enumerate(data_list):
        where = (f'{source}: image id {info["img_id"]} '
                 f'({info["img_path"]})')
        img_problems, file_hw = check_image_file(
            info['img_path'], (info['height'], info['width']), where,
            decode=i in decoded, backend_args=backend_args, loader=loader)
        problems += img_problems
        if check_seg and info.get('seg_map_path'):
            problems += check_seg_map_file(
                info['seg_map_path'], file_hw or
                (info['height'], info['width']), num_classes, where,
                decode=i in decoded, backend_args=backend_args)
    return problems
