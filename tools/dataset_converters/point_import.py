# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Annotation-tool points -> our COCO-with-points json.

``tools/dataset_converters/import_points.py`` runs :func:`import_points`:
one of the readers of ``point_formats.py`` (labelme:
``labelme_points.py``), then

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
:func:`labelme_masks.pair_masks`.
"""
import os.path as osp
from collections import Counter
from typing import Dict, List, Optional, Sequence, Tuple

from p2seg_mm.datasets.image_io import read_image_size

# sibling modules of tools/dataset_converters/
from labelme_masks import pair_masks
from labelme_points import read_labelme
from point_formats import (ImportedImage, ImportedPoint, read_coco_keypoints,
                           read_cvat_xml, read_labelstudio, read_point_csv)

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
            f'it (W {width}, H {height}; need 0 <= x <= {width}, 0 <= y '
            f'<= {height}; a point on the far border is moved inside). '
            'Fix: correct the point, or check --coords and --columns (x/y '
            'swapped?).')
    return [float(x), float(y)]


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
            (:func:`labelme_masks.pair_masks`; evaluation
            jsons). Defaults to False.
        **options: ``coords``, ``columns``, ``image``, ``default_class``
            (see ``point_formats.py``).

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
