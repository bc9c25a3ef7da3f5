# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Annotation-tool points -> our COCO-with-points json.

``tools/dataset_converters/import_points.py`` runs :func:`import_points`:
one of the readers of :mod:`.point_formats`, then

- image sizes from the image files, read by the loading rule of
  :mod:`p2seg_mm.datasets.image_io` (upright: EXIF orientation applied);
  a size the tool recorded must agree;
- categories in the ``classes`` order (else sorted names), ids 1..C;
- images sorted by file name with ids 1..N, annotations ids 1..M with
  ``point`` ``[x, y]``, ``category_id``, ``iscrowd: 0``;
- every point inside its image (``0 <= x < W``, ``0 <= y < H``); a point
  exactly on the far border (``x = W`` or ``y = H``, which tools allow) is
  moved 0.001 px inside and counted.

Unknown classes, points outside an image, images missing on disk or listed
twice raise ``ValueError``/``FileNotFoundError`` naming the file and entry.

labelme with ``keep_masks`` (``--keep-masks``, evaluation jsons): each
point's annotation also gets ``segmentation`` (the labelme polygons, a list
of flat ``[x1, y1, ...]`` polygons in our convention), ``bbox`` and
``area`` (of that polygon as pycocotools rasterises it), by
:func:`pair_masks`.
"""
import math
import os.path as osp
from collections import Counter
from typing import Dict, List, Optional, Sequence, Tuple

import pycocotools.mask as mask_utils

from ..image_io import read_image_size
from .point_formats import (ImportedImage, ImportedMask, ImportedPoint,
                            read_coco_keypoints, read_cvat_xml, read_labelme,
                            read_labelstudio, read_point_csv)

FORMATS = ('labelme', 'cvat', 'coco-keypoints', 'labelstudio', 'csv')
_BORDER_NUDGE = 1e-3


def read_format(fmt: str, input_path: str, img_dir: str,
                **options) -> Tuple[List[ImportedImage], List[ImportedPoint],
                                    Counter]:
    """Run the reader of ``fmt`` (one of :data:`FORMATS`)."""
    if not osp.exists(input_path):
        raise FileNotFoundError(f'input {input_path} does not exist.')
    coords = options.get('coords', 'continuous')
    keep_masks = options.get('keep_masks', False)
    if keep_masks and fmt != 'labelme':
        raise ValueError(f'keep_masks (--keep-masks) reads labelme polygons; '
                         f'format {fmt!r} has none.')
    if fmt == 'labelme':
        return read_labelme(input_path, img_dir, keep_masks)
    if fmt == 'cvat':
        if input_path.lower().endswith('.json'):
            return read_coco_keypoints(input_path, img_dir, coords)
        return read_cvat_xml(input_path, img_dir)
    if fmt == 'coco-keypoints':
        return read_coco_keypoints(input_path, img_dir, coords)
    if fmt == 'labelstudio':
        return read_labelstudio(input_path, img_dir)
    if fmt == 'csv':
        return read_point_csv(input_path, options.get('columns'),
                              options.get('image'),
                              options.get('default_class'), coords)
    raise ValueError(f'unknown format {fmt!r}; use one of {FORMATS}.')


def _categories(points: Sequence[ImportedPoint],
                classes: Optional[Sequence[str]]) -> Dict[str, int]:
    """Class name -> category id (1-based) or ValueError on unknowns."""
    if not classes:
        classes = sorted({p.label for p in points})
    if len(set(classes)) != len(classes):
        raise ValueError(f'--classes {list(classes)} repeats a name.')
    ids = {name: k + 1 for k, name in enumerate(classes)}
    for p in points:
        if p.label not in ids:
            raise ValueError(
                f'{p.where}: unknown class {p.label!r}; the classes are '
                f'{list(classes)}. Fix: add it to --classes (or correct the '
                'label).')
    return ids


def _image_sizes(images: Sequence[ImportedImage], img_dir: str,
                 channel: Optional[int]) -> Dict[str, Tuple[int, int]]:
    """Image name -> (H, W) read from the file; checks the tool's size."""
    seen, sizes = {}, {}
    for image in images:
        if image.name in seen:
            raise ValueError(f'{image.where}: image {image.name!r} is also '
                             f'listed by {seen[image.name]}. Fix: keep one '
                             'entry per image.')
        seen[image.name] = image.where
        path = osp.join(img_dir, image.name)
        if not osp.isfile(path):
            raise FileNotFoundError(
                f'{image.where}: image {image.name!r} is not in --img-dir '
                f'{img_dir} ({path} does not exist). Fix: pass the folder '
                'holding the images.')
        size = read_image_size(path, channel=channel)
        if image.size is not None and tuple(image.size) != size:
            hint = (' The tool recorded the stored size and the file has an'
                    ' EXIF rotation, or the other way round.'
                    if tuple(image.size) == size[::-1] else '')
            raise ValueError(
                f'{image.where}: the export says {image.name} is '
                f'{image.size[0]} x {image.size[1]} (H x W) but the file is '
                f'{size[0]} x {size[1]} (upright, EXIF orientation applied).'
                f'{hint} Fix: annotate the same file you import.')
        sizes[image.name] = size
    return sizes


def _checked_point(p: ImportedPoint, height: int, width: int,
                   counts: Counter) -> List[float]:
    """``[x, y]`` inside the image (far-border points moved inside)."""
    x, y = p.x, p.y
    if x == width or y == height:
        counts['moved inside from the far border'] += 1
        x = min(x, width - _BORDER_NUDGE)
        y = min(y, height - _BORDER_NUDGE)
    if not (0 <= x < width and 0 <= y < height):
        raise ValueError(
            f'{p.where}: point ({p.x}, {p.y}) of image {p.image} lies outside '
            f'it (W {width}, H {height}; need 0 <= x < {width}, 0 <= y < '
            f'{height}). Fix: correct the point, or check --coords and '
            '--columns (x/y swapped?).')
    return [float(x), float(y)]


class _MaskObject:
    """The labelme mask shapes of one object: one shape, or all shapes of
    the image with the same label and ``group_id`` (labelme's instance
    rule, as its ``labelme2coco`` example)."""

    def __init__(self, first: ImportedMask, file: str):
        self.shapes = [first]
        self.label = first.label
        self.group_id = first.group_id
        self.file = file

    @property
    def where(self) -> str:
        numbers = ', '.join(f'#{m.index}' for m in self.shapes)
        group = '' if self.group_id is None else \
            f', group_id {self.group_id}'
        kinds = ', '.join(m.kind for m in self.shapes)
        return (f'{self.file}: shape{"s" if len(self.shapes) > 1 else ""} '
                f'{numbers} ({self.label!r}{group}), {kinds}')


def _mask_objects(masks: Sequence[ImportedMask],
                  file: str) -> List[_MaskObject]:
    objects, grouped = [], {}
    for mask in masks:
        key = (mask.label, mask.group_id)
        if mask.group_id is not None and key in grouped:
            grouped[key].shapes.append(mask)
            continue
        objects.append(_MaskObject(mask, file))
        if mask.group_id is not None:
            grouped[key] = objects[-1]
    return objects


def _numbers(points: Sequence[ImportedPoint]) -> str:
    return ', '.join(f'#{p.index}' for p in points)


def _pixel_rle(x: float, y: float, height: int, width: int) -> dict:
    """RLE of the pixel ``(floor(y), floor(x))`` holding a checked point
    (masks are column-major: that pixel is run position ``col * H + row``)."""
    start = int(math.floor(x)) * height + int(math.floor(y))
    return mask_utils.frPyObjects(
        dict(counts=[start, 1, height * width - start - 1],
             size=[height, width]), height, width)


def _holds(rle: dict, bbox: List[float], xy: Sequence[float],
           pixel: dict) -> bool:
    """Whether the mask ``rle`` (box ``bbox``) holds the pixel of the point
    ``xy`` (one-pixel mask ``pixel``)."""
    col, row = math.floor(xy[0]), math.floor(xy[1])
    if not (bbox[0] <= col < bbox[0] + bbox[2]
            and bbox[1] <= row < bbox[1] + bbox[3]):
        return False
    return mask_utils.area(mask_utils.merge([rle, pixel],
                                            intersect=True)) > 0


def pair_masks(image: ImportedImage, points: Sequence[ImportedPoint],
               xy: Sequence[Sequence[float]], height: int, width: int,
               counts: Counter) -> List[dict]:
    """``segmentation``, ``bbox``, ``area`` of each point of a labelme file.

    Objects: each mask shape (``polygon``, ``rectangle``, ``circle``), or the
    shapes of one label sharing a ``group_id`` (a multi-part object; its
    ``segmentation`` lists their polygons). Pairing, per image:

    1. ``group_id``: an object with a ``group_id`` takes the point of the
       same label and ``group_id``;
    2. otherwise the point of the same label inside the object's mask (the
       pixel ``(floor(y), floor(x))`` holding it is in the rasterised
       mask), among the points not paired by step 1 (a point and an
       object that both have a ``group_id`` pair only by step 1).

    Raises ``ValueError`` naming the file and the shape / point indices for:
    an object with several such points, a point claimed by several objects,
    a point that pairs with no object (every point needs a mask in an
    evaluation json; import without ``keep_masks`` otherwise), a shape
    whose mask has no pixel in the image. An object that pairs with no
    point (e.g. a region of interest) is skipped and counted.

    Masks are rasterised by pycocotools (``frPyObjects`` + ``merge``), whose
    polygon convention is ours (a square with integer corners covers
    exactly the pixels inside it); ``bbox`` ``[x, y, w, h]`` and ``area``
    are of that mask.

    Args:
        image (ImportedImage): The image, with its ``masks``.
        points (Sequence[ImportedPoint]): The image's points.
        xy (Sequence[Sequence[float]]): Their checked ``[x, y]``.
        height (int): Image height.
        width (int): Image width.
        counts (Counter): Skipped objects and points outside their grouped
            mask are counted here.

    Returns:
        list[dict]: Per point, the mask fields of its annotation.
    """
    objects = _mask_objects(image.masks, image.where)
    rles, boxes = [], []
    for obj in objects:
        rle = mask_utils.merge(
            mask_utils.frPyObjects([m.polygon for m in obj.shapes], height,
                                   width))
        if mask_utils.area(rle) == 0:
            raise ValueError(
                f'{obj.where}: its mask has no pixel in the {height} x '
                f'{width} (H x W) image (degenerate, or outside it). Fix: '
                'redraw or delete the shape.')
        rles.append(rle)
        boxes.append([float(v) for v in mask_utils.toBbox(rle)])
    # the pixel holding each point (checked points: 0 <= x < W, 0 <= y < H)
    pixels = [_pixel_rle(x, y, height, width) for x, y in xy]
    owner: Dict[int, int] = {}  # point position -> object position
    # 1. group_id
    for o, obj in enumerate(objects):
        if obj.group_id is None:
            continue
        same = [
            k for k, p in enumerate(points)
            if p.group_id == obj.group_id and p.label == obj.label
        ]
        if len(same) > 1:
            raise ValueError(
                f'{obj.where}: points {_numbers([points[k] for k in same])} '
                'have its label and group_id; an object has one point. Fix: '
                'give each object its own group_id.')
        if same:
            owner[same[0]] = o
            if not _holds(rles[o], boxes[o], xy[same[0]], pixels[same[0]]):
                counts['point outside the mask of its group_id'] += 1
    # 2. the point of the label inside the mask
    paired = set(owner.values())
    claims: Dict[int, List[int]] = {}
    for o, obj in enumerate(objects):
        if o in paired:
            continue
        inside = [
            k for k, p in enumerate(points)
            if k not in owner and p.label == obj.label
            and (p.group_id is None or obj.group_id is None)
            and _holds(rles[o], boxes[o], xy[k], pixels[k])
        ]
        if len(inside) > 1:
            raise ValueError(
                f'{obj.where}: holds points '
                f'{_numbers([points[k] for k in inside])} of its label; an '
                'object has one point. Fix: split the shape, delete the extra '
                'points, or pair each point with its shape by a labelme '
                'group_id.')
        if not inside:
            counts['mask shape without a point of its label skipped'] += 1
            continue
        claims.setdefault(inside[0], []).append(o)
    for k, objs in claims.items():
        if len(objs) > 1:
            shapes = ', '.join(
                f'#{m.index}' for o in objs for m in objects[o].shapes)
            raise ValueError(
                f'{points[k].where}: the point lies in several shapes of its '
                f'label ({shapes}). Fix: pair it with its shape by a labelme '
                'group_id (the same number on both), or move it.')
        owner[k] = objs[0]
    out = []
    for k, p in enumerate(points):
        if k not in owner:
            raise ValueError(
                f'{p.where}: no mask shape pairs with this point (with '
                '--keep-masks every point needs its polygon, rectangle or '
                'circle of the same label: the point inside it, or the same '
                'group_id). Fix: draw its shape, or import without '
                '--keep-masks.')
        o = owner[k]
        out.append(
            dict(
                segmentation=[list(m.polygon) for m in objects[o].shapes],
                bbox=list(boxes[o]),
                area=float(mask_utils.area(rles[o]))))
    return out


def import_points(fmt: str,
                  input_path: str,
                  img_dir: str,
                  classes: Optional[Sequence[str]] = None,
                  channel: Optional[int] = None,
                  keep_masks: bool = False,
                  **options) -> Tuple[dict, Counter]:
    """Read an export and build our COCO-with-points dict.

    Args:
        fmt (str): One of :data:`FORMATS`.
        input_path (str): The export (file or, for labelme, folder).
        img_dir (str): Folder of the images; ``file_name`` is relative to it.
        classes (Sequence[str], optional): Category order. Defaults to None
            (sorted names).
        channel (int, optional): Plane of multi-plane TIFFs (for sizes).
            Defaults to None.
        keep_masks (bool): labelme only: give each point the ``segmentation``,
            ``bbox`` and ``area`` of its polygon / rectangle / circle
            (:func:`pair_masks`; evaluation jsons). Defaults to False.
        **options: ``coords``, ``columns``, ``image``, ``default_class``
            (see :mod:`.point_formats`).

    Returns:
        tuple[dict, Counter]: The COCO dict and counts of what was ignored
        or adjusted (for the summary).
    """
    images, points, counts = read_format(
        fmt, input_path, img_dir, keep_masks=keep_masks, **options)
    if not images:
        raise ValueError(f'{input_path}: the export lists no images.')
    cat_ids = _categories(points, classes)
    sizes = _image_sizes(images, img_dir, channel)
    names = sorted(sizes)
    img_ids = {name: k + 1 for k, name in enumerate(names)}
    coco = dict(
        images=[
            dict(id=img_ids[n], file_name=n, height=sizes[n][0],
                 width=sizes[n][1]) for n in names
        ],
        annotations=[],
        categories=[dict(id=i, name=n) for n, i in cat_ids.items()])
    by_image: Dict[str, List[ImportedPoint]] = {n: [] for n in names}
    for p in points:
        if p.image not in by_image:
            raise ValueError(f'{p.where}: image {p.image!r} is not listed by '
                             'the export. Fix: check its file name.')
        by_image[p.image].append(p)
    by_name = {image.name: image for image in images}
    for name in names:
        height, width = sizes[name]
        xy = [_checked_point(p, height, width, counts) for p in by_image[name]]
        masks = pair_masks(by_name[name], by_image[name], xy, height, width,
                           counts) if keep_masks else [{}] * len(xy)
        for p, point, mask in zip(by_image[name], xy, masks):
            coco['annotations'].append(
                dict(
                    id=len(coco['annotations']) + 1,
                    image_id=img_ids[name],
                    category_id=cat_ids[p.label],
                    point=point,
                    iscrowd=0,
                    **mask))
    counts['images without points'] = sum(1 for n in names
                                          if not by_image[n])
    return coco, counts
