# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Write the nearest-point baseline's pseudo-masks of a points json.

Example::

    python tools/export_nearest_point_baseline.py \
        data/demo_cells/annotations/train_points.json \
        data/demo_cells/pseudo_sem --out train_nearest.json \
        --classes ecoli hela_nucleus

Every foreground pixel of class ``c`` of an image's semantic pseudo-map
goes to the nearest point of class ``c``
(:func:`p2seg_mm.evaluation.nearest_point_baseline.nearest_point_masks`);
the output is a COCO instances json like ``tools/export_pseudo_masks.py``'s,
one mask per point. ``tools/run_pipeline.py`` trains a second stage on it
next to the P2Seg pseudo-masks.

``--grouping geodesic --img-dir data/demo_cells/images`` cuts each class's
foreground by the shortest path inside it that avoids image edges instead
(not in the paper; docs/method.md §3.5; the images are read by the project's
loading rule, ``--percentiles`` for non-8-bit files).
"""
import argparse
import json
import logging
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmengine.logging import print_log
from mmengine.utils import ProgressBar
from PIL import Image

from p2seg_mm.datasets.categories import category_to_label
from p2seg_mm.datasets.data_checks import (DataCheckError,
                                           check_coco_structure, errors_of,
                                           point_problem)
from p2seg_mm.datasets.image_io import DEFAULT_PERCENTILES, read_image_file
from p2seg_mm.datasets.seg_map_io import (allowed_seg_values,
                                          invalid_seg_values, read_seg_map)
from p2seg_mm.evaluation.nearest_point_baseline import (GROUPINGS,
                                                        nearest_point_masks)
from p2seg_mm.models.task_modules.geodesic_grouping import \
    DEFAULT_EDGE_WEIGHT
from p2seg_mm.structures.mask_codec import mask_to_annotation
from p2seg_mm.utils.atomic_io import dump_json_atomic


def export_nearest_point_baseline(points_json: str,
                                  seg_dir: str,
                                  out_file: str,
                                  seg_suffix: str = '.png',
                                  progress: bool = True,
                                  classes: Optional[Sequence[str]] = None,
                                  grouping: str = 'euclidean',
                                  img_dir: Optional[str] = None,
                                  edge_weight: float = DEFAULT_EDGE_WEIGHT,
                                  percentiles: Sequence[float] = (
                                      DEFAULT_PERCENTILES)) -> str:
    """Write the baseline's pseudo-masks for every image of a points json.

    Categories map to labels (and pseudo-map values ``label + 1``) by the
    project's one rule, :func:`~p2seg_mm.datasets.categories.
    category_to_label`: by name in ``classes`` order. Points of other
    categories are skipped. Crowd points keep ``iscrowd: 1``.

    Args:
        points_json (str): COCO json whose annotations carry ``point``.
        seg_dir (str): Folder of semantic pseudo-maps
            (``<file_name stem><seg_suffix>``).
        out_file (str): Output COCO instances json (written atomically).
        seg_suffix (str): Pseudo-map suffix (the dataset config's
            ``seg_map_suffix``). Defaults to '.png'.
        progress (bool): Show a progress bar. Defaults to True.
        classes (Sequence[str], optional): The config's classes, label
            order. None uses every json category in json order.
            Defaults to None.
        grouping (str): ``'euclidean'`` (nearest point) or ``'geodesic'``
            (docs/method.md §3.5). Defaults to 'euclidean'.
        img_dir (str, optional): Folder of the images (``file_name``
            relative to it), needed by ``'geodesic'``. Defaults to None.
        edge_weight (float): Edge weight of ``'geodesic'``. Defaults to 30.
        percentiles (Sequence[float]): Stretch of non-8-bit images.
            Defaults to (1.0, 99.8).

    Returns:
        str: ``out_file``.

    Raises:
        ValueError: A json with structural problems (e.g. repeated image
            ids), categories that do not fit ``classes``, or no mask at all
            in the output.
        ValueError: A point outside its image's pseudo-map (names the
            image and annotation ids).
        FileNotFoundError: A missing pseudo-map.
    """
    if grouping not in GROUPINGS:
        raise ValueError(f'grouping must be one of {GROUPINGS}, got '
                         f'{grouping!r}.')
    if grouping == 'geodesic' and not img_dir:
        raise ValueError("grouping='geodesic' reads the images: give "
                         'img_dir (--img-dir), the folder their file_name '
                         'is relative to.')
    with open(points_json) as f:
        src = json.load(f)
    problems = errors_of(check_coco_structure(src, points_json))
    if problems:
        raise DataCheckError(problems, points_json)
    cats = src.get('categories', [])
    cat2label = category_to_label(cats, classes, points_json)
    anns_by_img: Dict[int, list] = {}
    n_other = 0
    for ann in src.get('annotations', []):
        if 'point' not in ann or ann.get('ignore', False):
            continue
        if ann.get('category_id') not in cat2label:
            n_other += 1
            continue
        anns_by_img.setdefault(ann['image_id'], []).append(ann)
    if n_other:
        which = f'not in classes {list(classes)}' if classes else \
            'without a class (background)'
        print_log(
            f'{points_json}: {n_other} points of categories {which} are '
            'skipped (no mask is written for them).',
            logger='current', level=logging.WARNING)
    out_anns, n_empty = [], 0
    bar: Optional[ProgressBar] = ProgressBar(len(
        src['images'])) if progress else None
    for img in src['images']:
        anns = anns_by_img.get(img['id'], [])
        if anns:
            seg_map = _read_seg_map(seg_dir, img, seg_suffix, points_json,
                                    len(cat2label))
            for ann in anns:  # against the map the masks are cut from
                problem = point_problem(ann, *seg_map.shape)
                if problem:
                    raise ValueError(
                        f'{points_json}: image id {img["id"]}, annotation '
                        f'id {ann.get("id")}: {problem} (pseudo-map '
                        f'{seg_map.shape[1]} x {seg_map.shape[0]}).')
            points = np.array([a['point'] for a in anns], dtype=np.float32)
            labels = np.array([cat2label[a['category_id']] for a in anns])
            image = None
            if grouping == 'geodesic':
                img_path = osp.join(img_dir, img['file_name'])
                if not osp.isfile(img_path):
                    raise FileNotFoundError(
                        f'{points_json}: image id {img["id"]}: {img_path} '
                        'does not exist. Fix: give as img_dir (--img-dir) '
                        'the folder the json\'s file_name is relative to.')
                image = read_image_file(img_path, 'rgb', percentiles)
                if image.shape[:2] != seg_map.shape:
                    raise ValueError(
                        f'{points_json}: image id {img["id"]} '
                        f'({img["file_name"]!r}) is {image.shape[:2]} in '
                        f'{img_dir}, its pseudo-map {seg_map.shape}. Fix: '
                        'write the pseudo-map at the image resolution, or '
                        'point img_dir (--img-dir) at the images the maps '
                        'were made from.')
            res = nearest_point_masks(seg_map, points, labels,
                                      len(cat2label), grouping=grouping,
                                      image=image, edge_weight=edge_weight)
            for ann, mask, score in zip(anns, res['masks'], res['scores']):
                new = mask_to_annotation(mask, img['id'], ann['category_id'],
                                         float(score))
                if new is None:
                    n_empty += 1
                    continue
                new['point'] = [float(v) for v in ann['point']]
                new['iscrowd'] = 1 if ann.get('iscrowd', 0) else 0
                new['id'] = len(out_anns) + 1
                out_anns.append(new)
        if bar is not None:
            bar.update()
    if not out_anns:
        raise ValueError(
            f'nearest-point baseline: no mask for any point of '
            f'{points_json} ({n_empty} empty masks: no point lies on a '
            f'pseudo-map pixel of its class in {seg_dir}). Fix: check that '
            'the pseudo-maps hold class + 1 under the points and that the '
            'config classes match the json categories.')
    out = dict(images=src['images'], categories=cats, annotations=out_anns)
    dump_json_atomic(out, out_file)
    name = 'nearest-point' if grouping == 'euclidean' else 'geodesic'
    print_log(
        f'{name} baseline: {len(out_anns)} masks written to '
        f'{out_file} ({n_empty} empty masks dropped)',
        logger='current')
    return out_file


def _read_seg_map(seg_dir: str, img: dict, seg_suffix: str, source: str,
                  num_classes: int) -> np.ndarray:
    """The (H, W) pseudo-map of one json image entry, read by the loading
    rule (:func:`~p2seg_mm.datasets.seg_map_io.read_seg_map`), size and
    values (``0..num_classes``, 255) checked."""
    stem = osp.splitext(img['file_name'])[0]
    seg_path = osp.join(seg_dir, stem + seg_suffix)
    where = f'{source}: image id {img["id"]} ({img["file_name"]!r})'
    if not osp.isfile(seg_path):
        raise FileNotFoundError(
            f'{where}: semantic pseudo-map {seg_path} does not exist. Fix: '
            'create it, or give the pseudo-map folder and suffix (seg_dir '
            'and --seg-suffix; the config\'s data_prefix["seg"] and '
            'seg_map_suffix).')
    try:
        seg_map = read_seg_map(seg_path)
    except Image.DecompressionBombError as err:
        raise ValueError(f'{where}: semantic pseudo-map {seg_path} is too '
                         f'large for PIL ({err}). Fix: downscale it with its '
                         'image and points.') from err
    if seg_map.shape != (img['height'], img['width']):
        raise ValueError(
            f'{where}: semantic pseudo-map {seg_path} has shape '
            f'{seg_map.shape}, not the image (height, width) '
            f'({img["height"]}, {img["width"]}). Fix: write the map at the '
            'image resolution (single-channel index PNG).')
    bad = invalid_seg_values(np.unique(seg_map), num_classes)
    if bad.size:
        raise ValueError(
            f'{where}: semantic pseudo-map {seg_path} holds values '
            f'{bad.tolist()[:10]}; allowed are '
            f'{allowed_seg_values(num_classes)}. Fix the map or the config '
            'classes.')
    return seg_map


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        'points_json', help='COCO json whose annotations carry "point"')
    parser.add_argument(
        'seg_dir',
        help='folder of the semantic pseudo-maps (<file_name stem>'
        '<seg-suffix>: 0 background, class + 1, 255 ignore)')
    parser.add_argument('--out', required=True, help='output json')
    parser.add_argument(
        '--seg-suffix',
        default='.png',
        help='pseudo-map suffix (the config\'s seg_map_suffix)')
    parser.add_argument(
        '--classes',
        nargs='+',
        help='class names in label order (the config\'s metainfo.classes); '
        'default: every json category in json order')
    parser.add_argument(
        '--grouping',
        choices=GROUPINGS,
        default='euclidean',
        help='euclidean: nearest point (default); geodesic: shortest path '
        'inside the foreground avoiding image edges (needs --img-dir; '
        'docs/method.md §3.5). The decoder\'s test_cfg.grouping calls the '
        'same split \'geodesic\' and its learned one \'offset\'')
    parser.add_argument(
        '--img-dir', help='image folder (file_name relative to it)')
    parser.add_argument(
        '--edge-weight',
        type=float,
        help='geodesic only: a step across an image edge costs 1 + this x '
        'the edge strength (Sobel, 0-1), so larger values cut more along '
        f'edges (default: {DEFAULT_EDGE_WEIGHT:g}; test_cfg.'
        'geodesic_edge_weight)')
    parser.add_argument(
        '--percentiles',
        nargs=2,
        type=float,
        default=list(DEFAULT_PERCENTILES),
        help='stretch of non-8-bit images (low high)')
    return parser.parse_args(argv)


def _check_args(args: argparse.Namespace) -> Optional[str]:
    """The command line's mistakes, as a usage error, or None."""
    if not osp.isfile(args.points_json):
        return f'points json {args.points_json} does not exist.'
    if not osp.isdir(args.seg_dir):
        return (f'seg_dir {args.seg_dir} is not a folder (the semantic '
                'pseudo-maps).')
    if args.grouping == 'geodesic':
        if not args.img_dir:
            return ('--grouping geodesic reads the images: give --img-dir, '
                    'the folder the json\'s file_name is relative to.')
        if not osp.isdir(args.img_dir):
            return f'--img-dir {args.img_dir} is not a folder.'
    elif args.edge_weight is not None:
        return ('--edge-weight only applies to --grouping geodesic (the '
                'nearest-point cut has no edge term).')
    return None


def main(argv: Optional[List[str]] = None) -> str:
    """Entry point; returns the json written."""
    args = parse_args(argv)
    parser_error = _check_args(args)
    if parser_error:
        raise SystemExit(f'export_nearest_point_baseline.py: error: '
                         f'{parser_error}')
    if args.edge_weight is None:
        args.edge_weight = DEFAULT_EDGE_WEIGHT
    return export_nearest_point_baseline(
        args.points_json,
        args.seg_dir,
        args.out,
        seg_suffix=args.seg_suffix,
        classes=args.classes,
        grouping=args.grouping,
        img_dir=args.img_dir,
        edge_weight=args.edge_weight,
        percentiles=args.percentiles)


if __name__ == '__main__':
    main()
