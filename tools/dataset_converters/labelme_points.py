# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Reader of labelme files (the other formats: ``point_formats.py``).

labelme's point shapes (``shape_type: "point"``) are Qt canvas positions
in image pixels, origin at the image's top-left *corner*: already our
continuous convention. With ``keep_masks`` its ``polygon``, ``rectangle``
(two opposite corners) and ``circle`` (centre, then a point on the circle)
shapes are kept as :class:`ImportedMask` polygons in the same convention
(the convention in which pycocotools rasterises polygons: a square with
integer corners covers exactly the pixels inside it); they are paired with
the points by ``labelme_masks.py``.
"""
import math
import os.path as osp
from collections import Counter
from typing import List, Optional

# sibling module of tools/dataset_converters/
from point_formats import (Imported, ImportedImage, ImportedMask,
                           ImportedPoint, load_json, parse_number)

#: labelme shape types kept as masks by ``keep_masks``.
LABELME_MASK_SHAPES = ('polygon', 'rectangle', 'circle')


def _relative(found: str, img_dir: str, where: str) -> str:
    rel = osp.relpath(osp.abspath(found), osp.abspath(img_dir))
    if rel.startswith('..'):
        raise ValueError(f'{where}: image {found} lies outside --img-dir '
                         f'{img_dir}. Fix: pass the folder holding it.')
    return rel.replace(osp.sep, '/')


def _group_id(shape: dict, where: str) -> Optional[int]:
    """labelme's ``group_id`` (None, or an integer)."""
    value = shape.get('group_id')
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            value != int(value):
        raise ValueError(f'{where}: group_id {value!r} is not an integer.')
    return int(value)


def labelme_polygon(kind: str, pts: list, where: str) -> List[float]:
    """Flat polygon ``[x1, y1, ...]`` of a labelme mask shape.

    ``polygon``: its vertices (at least 3); ``rectangle``: two opposite
    corners, in any order -> the 4 corners; ``circle``: centre and a point
    on the circle -> a regular polygon with a vertex every ~2 px of arc
    (16 to 720 vertices, rounded to 0.001 px), inscribed in the circle.
    """
    xy = []
    for pt in pts:
        if not isinstance(pt, (list, tuple)) or len(pt) != 2:
            raise ValueError(f'{where}: a vertex must be [x, y], got {pt!r}.')
        xy.append((parse_number(pt[0], where), parse_number(pt[1], where)))
    if kind == 'polygon':
        if len(xy) < 3:
            raise ValueError(f'{where}: a polygon needs at least 3 vertices, '
                             f'got {len(xy)}.')
        return [v for pt in xy for v in pt]
    if len(xy) != 2:
        raise ValueError(f'{where}: a {kind} shape needs 2 points, got '
                         f'{len(xy)}.')
    (x0, y0), (x1, y1) = xy
    if kind == 'rectangle':
        left, right = sorted((x0, x1))
        top, bottom = sorted((y0, y1))
        return [left, top, right, top, right, bottom, left, bottom]
    radius = math.hypot(x1 - x0, y1 - y0)
    num = int(min(720, max(16, math.ceil(math.pi * radius))))
    return [
        round(v, 3) for k in range(num)
        for v in (x0 + radius * math.cos(2 * math.pi * k / num),
                  y0 + radius * math.sin(2 * math.pi * k / num))
    ]


def read_labelme(input_path: str,
                 img_dir: str,
                 keep_masks: bool = False) -> Imported:
    """labelme files: one ``.json`` or a folder of them (recursive).

    With ``keep_masks`` the :data:`LABELME_MASK_SHAPES` become the images'
    :class:`ImportedMask` (paired with points by
    :func:`labelme_masks.pair_masks`); other non-point shapes are counted
    and ignored, as every non-point shape is without it.
    """
    if osp.isdir(input_path):
        import glob
        files = sorted(
            glob.glob(osp.join(input_path, '**', '*.json'), recursive=True))
        if not files:
            raise FileNotFoundError(f'no labelme .json files in {input_path}.')
    else:
        files = [input_path]
    images, points, ignored = [], [], Counter()
    for path in files:
        doc = load_json(path)
        if not isinstance(doc, dict) or 'shapes' not in doc or \
                'imagePath' not in doc:
            if len(files) == 1:
                raise ValueError(f'{path}: not a labelme file (needs '
                                 '"shapes" and "imagePath").')
            ignored['.json without "shapes"/"imagePath" ignored'] += 1
            continue
        image_path = str(doc['imagePath']).replace('\\', '/')
        candidates = [
            osp.normpath(osp.join(osp.dirname(path), image_path)),
            osp.join(img_dir, osp.basename(image_path))
        ]
        found = next((c for c in candidates if osp.isfile(c)), None)
        if found is None:
            where = ' nor '.join(dict.fromkeys(candidates))
            raise FileNotFoundError(
                f'{path}: its image {image_path!r} is not at {where}. Fix: '
                'pass the image folder as --img-dir.')
        name = _relative(found, img_dir, path)
        size = None
        if doc.get('imageHeight') and doc.get('imageWidth'):
            size = (int(doc['imageHeight']), int(doc['imageWidth']))
        image = ImportedImage(name, path, size)
        images.append(image)
        for k, shape in enumerate(doc['shapes']):
            kind = shape.get('shape_type') or 'polygon'
            where = f'{path}: shape #{k} ({shape.get("label")!r})'
            pts = shape.get('points') or []
            if keep_masks and kind in LABELME_MASK_SHAPES:
                image.masks.append(
                    ImportedMask(
                        labelme_polygon(kind, pts, f'{where}, {kind}'),
                        str(shape.get('label')), _group_id(shape, where), k,
                        kind, f'{where}, {kind}'))
                continue
            if kind != 'point':
                ignored[f'{kind} shape ignored'] += 1
                continue
            if len(pts) != 1 or len(pts[0]) != 2:
                raise ValueError(f'{where}: a point shape needs one [x, y], '
                                 f'got {pts!r}.')
            points.append(
                ImportedPoint(name, parse_number(pts[0][0], where),
                              parse_number(pts[0][1], where),
                              str(shape.get('label')), where,
                              _group_id(shape, where) if keep_masks else None,
                              k))
    if not images:
        raise ValueError(f'{input_path}: no labelme file (with "shapes" and '
                         '"imagePath") found.')
    return images, points, ignored
