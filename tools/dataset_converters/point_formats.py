# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Readers of point annotations exported by annotation tools.

Each reader returns the images it lists and the points it finds
(:data:`Imported`), in our continuous pixel convention: pixel (row i,
column j) covers ``[j, j+1) x [i, i+1)``, its centre is
``(j + 0.5, i + 0.5)``. Per format:

- **labelme**: ``labelme_points.py``.
- **CVAT for images 1.1 XML** (``<points points="x,y;...">``): CVAT's
  canvas, the image spans ``[0, W] x [0, H]`` (corner origin): already ours.
  Each ``x,y`` of a multi-point shape is one object.
- **COCO keypoints** (one labelled keypoint per annotation): ``--coords
  continuous`` (default; CVAT's COCO Keypoints export writes its canvas
  coordinates) or ``--coords index`` (integer pixel indices, the COCO
  dataset's own keypoint convention as detectron2 reads it: + 0.5).
- **Label Studio** JSON export (``keypointlabels``): ``x``, ``y`` in percent
  of ``original_width``/``original_height``, corner origin:
  ``x_px = x / 100 * original_width``.
- **CSV** (``file,x,y,class``; ``--columns`` maps other headers):
  ``--coords continuous`` (default; Fiji/ImageJ's pixel coordinates, whose
  origin is the image's top-left corner) or ``--coords index`` (pixel
  centres at integers, e.g. napari's ``axis-1``/``axis-0`` = x/y: + 0.5).

Every error names the file (and the entry) and the fix.
"""
import csv
import json
import math
import os.path as osp
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple
from urllib.parse import parse_qs, unquote, urlparse

#: How integer coordinates are read: ``continuous`` (corner origin, ours)
#: or ``index`` (pixel centres at integers, shifted by + 0.5).
COORDS = ('continuous', 'index')


@dataclass
class ImportedMask:
    """A mask shape of an image (labelme ``--keep-masks``): ``polygon``
    ``[x1, y1, x2, y2, ...]`` in our continuous convention, class name,
    labelme ``group_id`` (None if unset), shape index, shape type and
    source."""
    polygon: List[float]
    label: str
    group_id: Optional[int]
    index: int
    kind: str
    where: str


@dataclass
class ImportedImage:
    """An image an export lists: ``name`` relative to the image folder,
    ``size`` (H, W) the tool recorded (None if it records none), and its
    mask shapes (only read by labelme's ``keep_masks``)."""
    name: str
    where: str
    size: Optional[Tuple[int, int]] = None
    masks: List[ImportedMask] = field(default_factory=list)


@dataclass
class ImportedPoint:
    """One object's point ``(x, y)`` (ours), class name and source;
    ``group_id`` and ``index`` (shape index) only for labelme."""
    image: str
    x: float
    y: float
    label: str
    where: str
    group_id: Optional[int] = None
    index: Optional[int] = None


Imported = Tuple[List[ImportedImage], List[ImportedPoint], Counter]


def parse_number(value, where: str) -> float:
    """A finite float or ValueError naming ``where``."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f'{where}: coordinate {value!r} is not a number.')
    if not math.isfinite(out):
        raise ValueError(f'{where}: coordinate {value!r} is not finite.')
    return out


def load_json(path: str):
    """The parsed json file, or ValueError naming it."""
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f'{path}: not valid JSON ({e}).')


def _shift(coords: str) -> float:
    if coords not in COORDS:
        raise ValueError(f'coords must be one of {COORDS}, got {coords!r}.')
    return 0.5 if coords == 'index' else 0.0


def read_cvat_xml(path: str, img_dir: str) -> Imported:
    """CVAT for images 1.1 XML: ``<image name width height>`` elements."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        raise ValueError(f'{path}: not valid XML ({e}).')
    if root.tag != 'annotations' or root.find('image') is None:
        raise ValueError(f'{path}: not a "CVAT for images 1.1" export (no '
                         '<annotations><image> elements; the "CVAT for '
                         'video" export is not supported).')
    images, points, ignored = [], [], Counter()
    for image in root.iter('image'):
        name = image.get('name', '').replace('\\', '/')
        where = f'{path}: <image id="{image.get("id")}" name="{name}">'
        size = (int(image.get('height')), int(image.get('width'))) \
            if image.get('height') and image.get('width') else None
        images.append(ImportedImage(name, where, size))
        for child in image:
            if child.tag != 'points':
                ignored[f'<{child.tag}> ignored'] += 1
                continue
            for k, pair in enumerate(child.get('points', '').split(';')):
                xy = pair.split(',')
                w = f'{where}, <points label="{child.get("label")}"> #{k}'
                if len(xy) != 2:
                    raise ValueError(f'{w}: expected "x,y", got {pair!r}.')
                points.append(
                    ImportedPoint(name, parse_number(xy[0], w),
                                  parse_number(xy[1], w),
                                  str(child.get('label')), w))
    return images, points, ignored


def read_coco_keypoints(path: str, img_dir: str,
                        coords: str = 'continuous') -> Imported:
    """COCO keypoints json with one labelled keypoint per annotation."""
    doc = load_json(path)
    shift = _shift(coords)
    try:
        names = {c['id']: c['name'] for c in doc['categories']}
        files = {im['id']: im['file_name'] for im in doc['images']}
        images = [
            ImportedImage(im['file_name'], f'{path}: image id {im["id"]}',
                          (int(im['height']), int(im['width'])))
            for im in doc['images']
        ]
        anns = doc['annotations']
    except (KeyError, TypeError) as e:
        raise ValueError(f'{path}: not a COCO keypoints json ({e!r} '
                         'missing).')
    points, ignored = [], Counter()
    for ann in anns:
        where = f'{path}: annotation id {ann.get("id")}'
        kps = ann.get('keypoints') or []
        if len(kps) % 3:
            raise ValueError(f'{where}: "keypoints" must be x, y, v triples.')
        labelled = [kps[i:i + 2] for i in range(0, len(kps), 3)
                    if kps[i + 2] > 0]
        if not labelled:
            ignored['annotation without a labelled keypoint ignored'] += 1
            continue
        if len(labelled) > 1:
            raise ValueError(f'{where} has {len(labelled)} labelled '
                             'keypoints; one object must have one point. '
                             'Fix: export one keypoint per object.')
        if ann.get('image_id') not in files or \
                ann.get('category_id') not in names:
            raise ValueError(f'{where}: unknown image_id or category_id.')
        points.append(
            ImportedPoint(files[ann['image_id']],
                          parse_number(labelled[0][0], where) + shift,
                          parse_number(labelled[0][1], where) + shift,
                          names[ann['category_id']], where))
    return images, points, ignored


def _labelstudio_name(ref: str, img_dir: str) -> str:
    """Image file of a Label Studio ``data`` reference, in ``img_dir``.

    ``/data/local-files/?d=dir/a.png`` gives ``a.png`` (the path's
    basename); uploads ``/data/upload/3/1a2b3c4d-a.png`` give ``a.png`` when
    the prefixed name is not in ``img_dir``.
    """
    parsed = urlparse(ref)
    query = parse_qs(parsed.query)
    path = query['d'][0] if 'd' in query else unquote(parsed.path)
    base = osp.basename(path)
    if not osp.isfile(osp.join(img_dir, base)) and '-' in base:
        prefix, rest = base.split('-', 1)
        if len(prefix) == 8 and all(c in '0123456789abcdef' for c in prefix):
            return rest
    return base


def read_labelstudio(path: str, img_dir: str) -> Imported:
    """Label Studio JSON export (list of tasks) with ``keypointlabels``."""
    tasks = load_json(path)
    if not isinstance(tasks, list):
        raise ValueError(f'{path}: a Label Studio JSON export is a list of '
                         'tasks (not JSON-MIN or CSV).')
    images, points, ignored = [], [], Counter()
    for task in tasks:
        where = f'{path}: task id {task.get("id")}'
        data = task.get('data') or {}
        ref = data.get('image') or next(
            (v for v in data.values() if isinstance(v, str)), None)
        if ref is None:
            raise ValueError(f'{where}: no image reference in "data".')
        name = _labelstudio_name(ref, img_dir)
        annotations = [
            a for a in task.get('annotations', [])
            if not a.get('was_cancelled')
        ]
        ignored['extra annotation of a task ignored (first used)'] += max(
            0, len(annotations) - 1)
        size = None
        for k, res in enumerate(annotations[0]['result'] if annotations
                                else []):
            if res.get('type') != 'keypointlabels':
                ignored[f'{res.get("type")} result ignored'] += 1
                continue
            w = f'{where}, result {res.get("id", k)}'
            value = res['value']
            if res.get('image_rotation', 0) or value.get('rotation', 0):
                raise ValueError(f'{w}: image rotated in Label Studio; '
                                 'export it unrotated.')
            width, height = (int(res['original_width']),
                             int(res['original_height']))
            if size is not None and size != (height, width):
                raise ValueError(f'{w}: original size {width} x {height} '
                                 'differs from the other results of the '
                                 'task. Fix: export the task again.')
            size = (height, width)
            points.append(
                ImportedPoint(name, parse_number(value['x'], w) / 100 * width,
                              parse_number(value['y'], w) / 100 * height,
                              str(value['keypointlabels'][0]), w))
        images.append(ImportedImage(name, where, size))
    return images, points, ignored


def read_point_csv(path: str,
                   columns: Optional[Dict[str, str]] = None,
                   image: Optional[str] = None,
                   default_class: Optional[str] = None,
                   coords: str = 'continuous') -> Imported:
    """CSV/TSV point table with a header row.

    Args:
        path (str): The table (delimiter ``,``, tab or ``;``, sniffed).
        columns (dict, optional): Role (``file``, ``x``, ``y``, ``class``)
            -> header name. Defaults to None (the roles' own names).
        image (str, optional): Image of every row when there is no file
            column (napari, Fiji tables of one image). Defaults to None.
        default_class (str, optional): Class of every row when there is no
            class column. Defaults to None.
        coords (str): ``'continuous'`` or ``'index'``.
            Defaults to 'continuous'.
    """
    shift = _shift(coords)
    roles = {r: r for r in ('file', 'x', 'y', 'class')}
    roles.update(columns or {})
    with open(path, newline='', encoding='utf-8-sig') as f:
        sample = f.read(4096)
        f.seek(0)
        try:
            dialect = csv.Sniffer().sniff(sample, delimiters=',\t;')
        except csv.Error:
            dialect = csv.excel
        reader = csv.DictReader(f, dialect=dialect)
        header = [h.strip() for h in reader.fieldnames or []]
        reader.fieldnames = header
        need = {'x', 'y'} | ({'file'} if image is None else set()) | (
            {'class'} if default_class is None else set())
        missing = [f'{r} (column {roles[r]!r})' for r in sorted(need)
                   if roles[r] not in header]
        if missing:
            raise ValueError(
                f'{path}: columns {header} lack {", ".join(missing)}. Fix: '
                'map them with --columns ROLE=HEADER (roles file, x, y, '
                'class), or give --image / --class for a table of one image '
                'or one class.')
        points = []
        for line_no, row in enumerate(reader, start=2):
            where = f'{path}, line {line_no}'
            name = image if image is not None else row[roles['file']].strip()
            label = default_class if default_class is not None else row[
                roles['class']].strip()
            points.append(
                ImportedPoint(name.replace('\\', '/'),
                              parse_number(row[roles['x']], where) + shift,
                              parse_number(row[roles['y']], where) + shift,
                              label, where))
    names = sorted({p.image for p in points})
    return [ImportedImage(n, path) for n in names], points, Counter()
