# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Checks of COCO jsons, and the problem type of every data check.

Each check returns a list of :class:`DataProblem` (never stops at the first
one), so ``tools/analysis_tools/check_dataset.py`` reports every problem of
a dataset at once; :class:`~p2seg_mm.datasets.CocoPointDataset` runs the
same checks when it is built (every json and file header, a bounded sample
of decoded pseudo-maps) and raises :class:`DataCheckError` listing them,
so bad data fails before the first training iteration. The checks of the
image and pseudo-map files are in :mod:`.file_checks`.

Every message names the file, image id and/or annotation id and the fix.
"""
import math
from collections import Counter
from dataclasses import dataclass
from numbers import Real
from typing import Dict, List, Optional, Sequence, Tuple

from .categories import category_to_label


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


def error(message: str) -> DataProblem:
    """An ``'error'`` problem."""
    return DataProblem('error', message)


def warning(message: str) -> DataProblem:
    """A ``'warning'`` problem."""
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
            error(f'{source}: the json has no "images" (or an empty list). '
                  'Fix: write one entry per image with "id", "file_name", '
                  '"height" and "width".'))
    img_ids = [img.get('id') for img in images]
    for img_id in _repeated(img_ids):
        files = [img.get('file_name') for img in images
                 if img.get('id') == img_id]
        problems.append(
            error(f'{source}: image id {img_id} is used by {len(files)} image '
                  f'entries ({files}); pycocotools keeps only the last, so '
                  'the others would silently disappear and their annotations '
                  'move to it. Fix: give every image a unique "id".'))
    for name in _repeated(img.get('file_name') for img in images):
        problems.append(
            warning(f'{source}: file_name {name!r} is listed by more than one '
                    'image entry. Fix: list each image once.'))
    for img in images:
        where = (f'{source}: image id {img.get("id")} '
                 f'({img.get("file_name")!r})')
        if not img.get('file_name'):
            problems.append(error(f'{where} has no "file_name". Fix: add it.'))
        width, height = img.get('width'), img.get('height')
        if not (is_number(width) and is_number(height)) or min(
                width, height) <= 0:
            problems.append(
                error(f'{where} has no valid "width"/"height" (got {width!r}, '
                      f'{height!r}). Fix: write the image size in the json.'))
    anns = coco.get('annotations') or []
    repeated = _repeated(ann.get('id') for ann in anns)
    if repeated:
        problems.append(
            error(f'{source}: annotation ids {repeated[:10]} are used more '
                  'than once. Fix: give every annotation a unique "id".'))
    known_imgs = set(img_ids)
    cat_ids = {cat.get('id') for cat in coco.get('categories') or []}
    for ann in anns:
        if ann.get('image_id') not in known_imgs:
            problems.append(
                error(f'{source}: annotation id {ann.get("id")} refers to '
                      f'image id {ann.get("image_id")!r}, which is not in '
                      '"images". Fix: add the image or drop the annotation.'))
        if ann.get('category_id') not in cat_ids:
            problems.append(
                error(f'{source}: annotation id {ann.get("id")} (image id '
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
        return [error(str(err))]
    return []


def category_problem(ann: dict, cat2label: Dict[int, int],
                     classes: Sequence[str]) -> Optional[str]:
    """Why an annotation's category gets no label (None if it has one).

    The rule by which :class:`~p2seg_mm.datasets.CocoPointDataset` refuses
    an annotation: its ``category_id`` must be one of the categories of the
    config classes (``cat2label`` of :func:`~p2seg_mm.datasets.categories.
    category_to_label`); a json category that is not a class (e.g.
    ``_background_``) may be listed, but no point may use it.

    Args:
        ann (dict): The annotation.
        cat2label (dict[int, int]): ``category_id -> label`` of the classes.
        classes (Sequence[str]): The config classes, for the message.

    Returns:
        str | None: The reason with the fix, or None.
    """
    cat_id = ann.get('category_id')
    if cat_id in cat2label:
        return None
    return (f'category_id {cat_id!r} is not one of the dataset categories '
            f'{list(cat2label)} (metainfo classes {list(classes)}). Fix the '
            'category_id or the metainfo classes.')


def check_point_categories(coco: dict, classes: Optional[Sequence[str]],
                           source: str) -> List[DataProblem]:
    """Every non-``ignore`` annotation has a category of the classes
    (:func:`category_problem`, the check ``CocoPointDataset`` runs when it
    is built, with its message).

    Annotations of images or categories missing from the json (reported
    by :func:`check_coco_structure`) and jsons whose categories do not fit
    the classes (:func:`check_categories`) are left to those checks.

    Returns:
        list[DataProblem]: One error per annotation whose category is not
        a class.
    """
    categories = coco.get('categories') or []
    try:
        cat2label = category_to_label(categories, classes, source)
    except ValueError:
        return []  # reported by check_categories
    if classes is None:
        classes = [cat.get('name') for cat in categories]
    json_cats = {cat.get('id') for cat in categories}
    files = {img.get('id'): img.get('file_name')
             for img in coco.get('images') or []}
    problems = []
    for ann in coco.get('annotations') or []:
        if ann.get('ignore', False) or ann.get('image_id') not in files \
                or ann.get('category_id') not in json_cats:
            continue
        reason = category_problem(ann, cat2label, classes)
        if reason is not None:
            problems.append(
                error(f'{source}: image id {ann["image_id"]} '
                      f'({files[ann["image_id"]]!r}), annotation id '
                      f'{ann.get("id")}: {reason}'))
    return problems


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
                error(f'{source}: image id {ann["image_id"]}, annotation id '
                      f'{ann.get("id")}: {reason}'))
    return problems


def point_records(anns: Sequence[dict], cat2label: Dict[int, int],
                  height: Real, width: Real) -> List[dict]:
    """The points of one image that training uses, for the pseudo-map
    checks (:func:`~.file_checks.check_data_files`).

    Kept: annotations that are neither ``ignore`` nor ``iscrowd`` (crowd
    points get no target), whose point is valid (:func:`point_problem`)
    and whose category is a class (in ``cat2label``); the others are the
    business of :func:`check_points` and :func:`check_point_categories`.

    Args:
        anns (Sequence[dict]): The image's json annotations.
        cat2label (dict[int, int]): ``category_id -> label`` of the classes.
        height (Real): Image height (json).
        width (Real): Image width (json).

    Returns:
        list[dict]: ``dict(ann_id, point=(x, y), label)`` per kept point,
        in json order.
    """
    records = []
    for ann in anns:
        if ann.get('ignore', False) or ann.get('iscrowd', False) \
                or ann.get('category_id') not in cat2label \
                or point_problem(ann, height, width) is not None:
            continue
        records.append(
            dict(
                ann_id=ann.get('id'),
                point=(float(ann['point'][0]), float(ann['point'][1])),
                label=cat2label[ann['category_id']]))
    return records


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
                error(f'{source}: annotation id {ann.get("id")} of image id '
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
