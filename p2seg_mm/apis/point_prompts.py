# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Point prompts for inference: read, check and match them to images.

Points are ``(x, y)`` in continuous pixel coordinates (the centre of pixel
(row i, column j) is ``(j + 0.5, i + 0.5)``), see ``docs/design.md``; the
class is a class name of the model or its 0-based index. Sources:

- JSON: ``{"<image file name>": [[x, y, "class_name_or_id"], ...], ...}``;
- our COCO-with-points json (what ``import_points.py`` writes): each
  annotation's ``point`` with its category *name* (``iscrowd: 1`` skipped);
- CSV: rows ``file,x,y,class`` (an optional header row ``file,x,y,class``);
- the command line (``--point X Y CLASS`` of ``tools/infer.py``).

Every error names the file (and row/point) and the fix.
"""
import csv
import json
import math
import os.path as osp
from typing import Dict, List, Sequence, Tuple, Union

import numpy as np

PointSpec = Tuple[float, float, Union[int, str]]
PointsByImage = Dict[str, List[PointSpec]]


def _number(value, where: str) -> float:
    """Convert a coordinate to a finite float or raise ValueError."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f'{where}: coordinate {value!r} is not a number.')
    if not math.isfinite(out) or isinstance(value, bool):
        raise ValueError(f'{where}: coordinate {value!r} is not a finite '
                         'number.')
    return out


def _class_token(value, where: str) -> Union[int, str]:
    """Check a class given as a name (str) or a 0-based index (int)."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f'{where}: class {value!r} must be a class name '
                         '(string) or a 0-based class index (integer).')
    return value


def load_points_json(path: str) -> PointsByImage:
    """Read ``{"<image>": [[x, y, class], ...]}`` from a JSON file.

    Returns:
        dict[str, list[tuple]]: ``(x, y, class)`` per point, by image name.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'points file {path} does not exist.')
    with open(path) as f:
        try:
            raw = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f'{path}: not valid JSON ({e}).')
    if not isinstance(raw, dict):
        raise ValueError(f'{path}: expected an object {{"<image file name>": '
                         '[[x, y, class], ...]}}, got a '
                         f'{type(raw).__name__}.')
    if 'images' in raw and 'annotations' in raw:
        return points_from_coco(raw, path)
    out: PointsByImage = {}
    for name, entries in raw.items():
        if not isinstance(entries, list):
            raise ValueError(f'{path}: image {name!r} must map to a list of '
                             '[x, y, class] entries.')
        out[name] = []
        for k, entry in enumerate(entries):
            where = f'{path}: image {name!r}, point #{k}'
            if not isinstance(entry, (list, tuple)) or len(entry) != 3:
                raise ValueError(f'{where}: expected [x, y, class], got '
                                 f'{entry!r}.')
            out[name].append((_number(entry[0], where),
                              _number(entry[1], where),
                              _class_token(entry[2], where)))
    return out


def points_from_coco(coco: dict, path: str) -> PointsByImage:
    """Points by image ``file_name`` from a COCO json with ``point``s.

    Classes are the category names; crowd points are skipped. Images
    without points are kept (with an empty list).
    """
    try:
        names = {c['id']: c['name'] for c in coco.get('categories', [])}
        files = {im['id']: im['file_name'] for im in coco['images']}
    except (KeyError, TypeError) as e:
        raise ValueError(f'{path}: COCO json without proper "images"/'
                         f'"categories" entries ({e!r}).')
    out: PointsByImage = {name: [] for name in files.values()}
    for ann in coco['annotations']:
        where = f'{path}: annotation id {ann.get("id")}'
        if ann.get('iscrowd', 0):
            continue
        point = ann.get('point')
        if not isinstance(point, (list, tuple)) or len(point) != 2:
            raise ValueError(f'{where} has no "point" [x, y]. Fix: make the '
                             'json with tools/dataset_converters/'
                             'import_points.py or masks_to_points.py.')
        if ann.get('image_id') not in files:
            raise ValueError(f'{where}: image_id {ann.get("image_id")!r} is '
                             'not in "images". Fix the image_id or add the '
                             'image entry.')
        if ann.get('category_id') not in names:
            raise ValueError(f'{where}: category_id '
                             f'{ann.get("category_id")!r} is not in '
                             f'"categories" {list(names)}. Fix the '
                             'category_id or add the category.')
        out[files[ann['image_id']]].append(
            (_number(point[0], where), _number(point[1], where),
             names[ann['category_id']]))
    return out


def load_points_csv(path: str) -> PointsByImage:
    """Read rows ``file,x,y,class`` (optional header) from a CSV file."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'points file {path} does not exist.')
    out: PointsByImage = {}
    with open(path, newline='') as f:
        for line_no, row in enumerate(csv.reader(f), start=1):
            row = [cell.strip() for cell in row]
            if not row or all(not cell for cell in row):
                continue
            if line_no == 1 and [c.lower() for c in row] == [
                    'file', 'x', 'y', 'class'
            ]:
                continue
            where = f'{path}, line {line_no}'
            if len(row) != 4 or not row[0]:
                raise ValueError(f'{where}: expected "file,x,y,class", got '
                                 f'{",".join(row)!r}.')
            out.setdefault(row[0], []).append(
                (_number(row[1], where), _number(row[2], where), row[3]))
    return out


def points_from_cli(point_args: Sequence[Sequence[str]],
                    image_name: str) -> PointsByImage:
    """Turn repeated ``--point X Y CLASS`` into ``{image_name: points}``."""
    points = []
    for k, (x, y, cls) in enumerate(point_args):
        where = f'--point #{k} ({x} {y} {cls})'
        points.append((_number(x, where), _number(y, where), cls))
    return {image_name: points}


def load_points(path: str) -> PointsByImage:
    """Read a points file, JSON or CSV by its extension."""
    ext = osp.splitext(path)[1].lower()
    if ext == '.json':
        return load_points_json(path)
    if ext == '.csv':
        return load_points_csv(path)
    raise ValueError(f'points file {path}: use a .json or .csv file.')


def resolve_class(token: Union[int, str], class_names: Sequence[str],
                  where: str) -> int:
    """Map a class name or 0-based index (int or digit string) to a label.

    A string equal to a class name wins over its reading as an index.

    Raises:
        ValueError: A string that is neither a class name nor an integer
            (one message, not chained to ``int()``'s), or an index out of
            range; the message names ``where`` and the valid classes.
    """
    if isinstance(token, str):
        if token in class_names:
            return list(class_names).index(token)
        try:
            token = int(token)
        except ValueError:
            # the user gave a name: int()'s own error is no information
            raise ValueError(
                f'{where}: unknown class {token!r}. Valid class names: '
                f'{", ".join(class_names)} (or indices 0..'
                f'{len(class_names) - 1}).') from None
    if not 0 <= token < len(class_names):
        raise ValueError(f'{where}: class index {token} is out of range '
                         f'0..{len(class_names) - 1} ({len(class_names)} '
                         'classes).')
    return int(token)


def prepare_points(points: Sequence[PointSpec], class_names: Sequence[str],
                   image_name: str, height: int,
                   width: int) -> Tuple[np.ndarray, np.ndarray]:
    """Check the points of one image and map their classes to labels.

    Args:
        points (Sequence[tuple]): ``(x, y, class)`` per point.
        class_names (Sequence[str]): The model's classes, label order.
        image_name (str): Used in error messages.
        height (int): Image height H.
        width (int): Image width W.

    Returns:
        tuple[np.ndarray, np.ndarray]: Points (N, 2) float32 ``(x, y)`` and
        labels (N,) int64.

    Raises:
        ValueError: No points, a point outside ``0 <= x < W, 0 <= y < H``,
            or an unknown class.
    """
    if len(points) == 0:
        raise ValueError(f'image {image_name} has no points. Fix: give at '
                         'least one [x, y, class] for it.')
    xy = np.zeros((len(points), 2), dtype=np.float32)
    labels = np.zeros(len(points), dtype=np.int64)
    for k, (x, y, cls) in enumerate(points):
        where = f'image {image_name}, point #{k} ({x}, {y})'
        if not (0 <= x < width and 0 <= y < height):
            raise ValueError(f'{where} lies outside the image (width {width},'
                             f' height {height}; need 0 <= x < {width} and '
                             f'0 <= y < {height}).')
        xy[k] = (x, y)
        labels[k] = resolve_class(cls, class_names, where)
    return xy, labels


def match_images(input_path: str, points: PointsByImage) -> Dict[str, str]:
    """Map each image name of ``points`` to its file.

    Args:
        input_path (str): An image file or a folder of images.
        points (dict): Points by image name (file name, or path relative to
            the folder).

    Returns:
        dict[str, str]: Image name -> existing file path.
    """
    if not osp.exists(input_path):
        raise FileNotFoundError(f'input {input_path} does not exist.')
    if not points:
        raise ValueError(f'no points given for {input_path}.')
    if osp.isfile(input_path):
        base = osp.basename(input_path)
        others = [n for n in points if n not in (base, input_path)]
        if others:
            raise FileNotFoundError(
                f'points are given for {others}, but the input is the single '
                f'image {input_path}. Fix: pass the folder holding them.')
        return {name: input_path for name in points}
    paths = {}
    for name in points:
        path = osp.join(input_path, name)
        if not osp.isfile(path):
            raise FileNotFoundError(f'image {name!r} named in the points does '
                                    f'not exist in {input_path}.')
        paths[name] = path
    return paths
