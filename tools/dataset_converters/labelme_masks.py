# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Pairing of labelme mask shapes with the points of an image
(``import_points.py --keep-masks``, evaluation jsons): :func:`pair_masks`.
"""
import math
from collections import Counter
from typing import Dict, List, Sequence

import pycocotools.mask as mask_utils

# sibling module of tools/dataset_converters/
from point_formats import ImportedImage, ImportedMask, ImportedPoint


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
