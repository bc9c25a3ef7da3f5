# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Make semantic pseudo-maps from images + points (no WSSS model needed).

Example::

    python tools/dataset_converters/make_pseudo_maps.py my_cells/points.json \\
        --img-dir my_cells/ --out-dir my_cells/pseudo_maps/
    # or from a training config: its train dataset's points json, image
    # folder and seg folder (data_root + data_prefix.seg); this one
    # rewrites the demo's maps as they are (sigma 0.6)
    python tools/dataset_converters/make_pseudo_maps.py \\
        configs/p2seg/p2seg_r18_demo-cells.py --sigma 0.6 \\
        --gt annotations/train_gt.json

writes ``<out-dir>/<file_name stem>.png`` per image (0 background,
``c + 1`` class ``c``, 255 ignore; classes: the config's
``metainfo.classes``, else the json's categories in order; categories are
matched by name, the one rule of ``p2seg_mm/datasets/categories.py``), the
layout ``data_prefix=dict(seg=...)`` with the default
``seg_map_suffix='.png'`` expects. ``--gt`` (a COCO json with masks of
the same images; relative to the config's ``data_root`` when a config is
given) prints the foreground IoU of the maps per class (ignore pixels
count as background). Suited to
objects that differ from a flat background by brightness (stained nuclei,
fluorescence, phase contrast); natural images need a WSSS method. The
method is described in ``pseudo_maps.py`` (next to this script).
"""
import argparse
import json
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from p2seg_mm.datasets.categories import category_to_label
from p2seg_mm.datasets.image_io import DEFAULT_PERCENTILES, read_image_file
from p2seg_mm.structures.mask_codec import ann_to_mask
from p2seg_mm.utils.atomic_io import write_bytes_atomic

# sibling module (this script's folder is on sys.path)
from pseudo_maps import PseudoMapConfig, make_pseudo_map, points_by_image


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    defaults = PseudoMapConfig()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        'source', help='COCO-with-points json, or a config (.py) whose '
        'train dataset gives the json, image and map folders')
    parser.add_argument('--img-dir', help='image folder (required with a '
                        'json source; a config gives its own)')
    parser.add_argument('--out-dir', help='folder the maps are written to '
                        'as <image stem>.png, replacing maps already there '
                        '(required with a json source; with a config: its '
                        'data_root + data_prefix.seg)')
    parser.add_argument('--gt', help='COCO json with masks: print the '
                        'foreground IoU per class (with a config: relative '
                        "to its data_root)")
    parser.add_argument('--method', choices=['threshold'],
                        default='threshold',
                        help='how foreground is found (the only one: a '
                        'robust threshold, see pseudo_maps.py)')
    helps = dict(
        sigma='Gaussian blur (pixels) before thresholding',
        k_mad='start level: k_mad x MAD from the median (the higher of '
        'this and half the points\' median contrast)',
        min_k='lowest level (x MAD) the search may go down to',
        min_point_coverage='lower the level (x0.75 steps) until this '
        'share of the points is foreground',
        radius='radius (pixels) of the opening/closing that cleans the '
        'mask; 0: none',
        min_area='components smaller than this (pixels) are dropped',
        ignore_band='width (pixels) of the ignore (255) band around each '
        'kept component')
    for name in ('sigma', 'k_mad', 'min_k', 'min_point_coverage'):
        parser.add_argument('--' + name.replace('_', '-'), type=float,
                            default=getattr(defaults, name),
                            help=f'{helps[name]} (default %(default)s)')
    for name in ('radius', 'min_area', 'ignore_band'):
        parser.add_argument('--' + name.replace('_', '-'), type=int,
                            default=getattr(defaults, name),
                            help=f'{helps[name]} (default %(default)s)')
    parser.add_argument('--conflict', choices=['nearest', 'ignore'],
                        default=defaults.conflict,
                        help='component holding points of several classes: '
                        'split by nearest point, or mark it ignore '
                        '(default %(default)s)')
    parser.add_argument('--percentiles', nargs=2, type=float,
                        default=DEFAULT_PERCENTILES, metavar=('LOW', 'HIGH'),
                        help='intensity percentiles mapped to 0 / 255 when '
                        'reading 16-bit or float images (default %(default)s)')
    parser.add_argument('--channel', type=int, default=None,
                        help='plane (0-based) of multi-plane TIFFs; without '
                        'it such a file is refused with its axes')
    return parser.parse_args(argv)


def resolve_paths(
    args: argparse.Namespace
) -> Tuple[str, str, str, Optional[str], Optional[List[str]]]:
    """(points json, image folder, map folder, gt json, classes) of the
    command; ``classes`` is the config's ``metainfo.classes`` (else its
    dataset class's; None for a json source or a config without them:
    every json category).

    Raises:
        ValueError: A json source without ``--img-dir`` / ``--out-dir``, or
            a config whose train dataset lacks ``ann_file`` or
            ``data_prefix.img`` / ``data_prefix.seg``.
    """
    if not args.source.endswith('.py'):
        if not (args.img_dir and args.out_dir):
            raise ValueError(f'{args.source}: a json source needs --img-dir '
                             'and --out-dir (or give a config).')
        return args.source, args.img_dir, args.out_dir, args.gt, None
    from mmengine.config import Config

    from p2seg_mm.datasets.config_checks import (dataset_classes,
                                                 split_datasets)
    found = list(split_datasets(Config.fromfile(args.source), ['train']))
    dataset = found[0][1] if found else {}  # unwrapped (RepeatDataset, ...)
    root = dataset.get('data_root') or ''
    prefix = dataset.get('data_prefix') or {}
    if not dataset.get('ann_file') or prefix.get('img') is None or \
            not prefix.get('seg'):
        raise ValueError(
            f'{args.source}: train_dataloader.dataset needs ann_file and '
            'data_prefix=dict(img=..., seg=...) to locate points, images '
            'and maps; or pass the json with --img-dir and --out-dir.')
    gt = osp.join(root, args.gt) if args.gt and not osp.isabs(args.gt) \
        and not osp.exists(args.gt) else args.gt
    return (osp.join(root, dataset['ann_file']), args.img_dir
            or osp.join(root, prefix['img']), args.out_dir
            or osp.join(root, prefix['seg']), gt, dataset_classes(dataset))


def foreground_ious(gt_file: str, maps: Dict[str, np.ndarray],
                    classes: Sequence[str]) -> dict:
    """Foreground IoU per class of the maps against a COCO json's masks.

    Args:
        gt_file (str): COCO json with segmentations; its images are matched
            to ``maps`` by ``file_name``, its categories to ``classes`` by
            the one rule (:func:`~p2seg_mm.datasets.categories.
            category_to_label`: by name, json order checked).
        maps (dict[str, np.ndarray]): file name -> (H, W) uint8 map.
        classes (Sequence[str]): Class names in label order (map value
            ``k + 1`` is ``classes[k]``).

    Returns:
        dict: class name -> IoU over all matched images (ignore pixels and
        other classes count as background).
    """
    from pycocotools.coco import COCO
    gt = COCO(gt_file)
    label_of = category_to_label(gt.dataset['categories'], classes, gt_file)
    inter, union = np.zeros(len(classes)), np.zeros(len(classes))
    for img_id, info in gt.imgs.items():
        seg = maps.get(info['file_name'])
        if seg is None:
            continue
        masks = np.zeros((len(classes), ) + seg.shape, bool)
        for ann in gt.loadAnns(gt.getAnnIds(imgIds=img_id)):
            if ann['category_id'] in label_of:
                masks[label_of[ann['category_id']]] |= ann_to_mask(
                    ann, info['height'], info['width'])
        for k, mask in enumerate(masks):
            fg = seg == k + 1
            inter[k] += (fg & mask).sum()
            union[k] += (fg | mask).sum()
    return {n: float(i / u) for n, i, u in zip(classes, inter, union) if u}


def main(argv: Optional[List[str]] = None) -> List[dict]:
    """Entry point; returns one statistics dict per image.

    Raises:
        SystemExit: A usage error (paths of the command, missing ``--gt``).
        ValueError: Categories against the classes; any point that is
            missing, malformed or outside its image (every one listed with
            the json, image id and annotation id, before any map is
            written); an image whose size differs from its json entry; a
            ``--gt`` json sharing no image with the points.
    """
    args = parse_args(argv)
    try:
        points_file, img_dir, out_dir, gt_file, classes = resolve_paths(args)
    except ValueError as err:  # a usage error: one line, exit status 2
        raise SystemExit(f'make_pseudo_maps: {err}') from None
    if gt_file and not osp.isfile(gt_file):
        where = " (relative paths: to the config's data_root first)" \
            if args.source.endswith('.py') else ''
        raise SystemExit(f'make_pseudo_maps: --gt {gt_file}: no such '
                         f'file{where}.')
    cfg = PseudoMapConfig(
        **{k: getattr(args, k) for k in PseudoMapConfig.__annotations__})
    with open(points_file, encoding='utf-8') as f:
        coco = json.load(f)
    points = points_by_image(coco, classes, points_file)
    classes = classes or [c['name'] for c in coco['categories']]
    rows, maps = [], {}
    targets = [
        osp.join(out_dir, osp.splitext(info['file_name'])[0] + '.png')
        for info in coco['images']
    ]
    replaced = sum(osp.isfile(t) for t in targets)
    if replaced:
        print(f'make_pseudo_maps: replacing {replaced} of the '
              f'{len(targets)} maps in {out_dir} (files of the same name '
              'already there); keep them by giving another --out-dir.')
    for info in coco['images']:
        path = osp.join(img_dir, info['file_name'])
        image = read_image_file(path, 'rgb', args.percentiles, args.channel)
        if image.shape[:2] != (info['height'], info['width']):
            raise ValueError(
                f'{points_file}: image id {info["id"]} says '
                f'{info["height"]} x {info["width"]} but {path} is '
                f'{image.shape[0]} x {image.shape[1]} (upright).')
        seg, stats = make_pseudo_map(image, *points[info['id']], cfg)
        out = osp.join(out_dir, osp.splitext(info['file_name'])[0] + '.png')
        maps[info['file_name']] = seg
        write_bytes_atomic(cv2.imencode('.png', seg)[1].tobytes(), out)
        rows.append(dict(file_name=info['file_name'], **stats))
        print(f'{out}: {"bright" if stats["polarity"] > 0 else "dark"} '
              f'objects, k={stats["k"]:.2f}, points on their class '
              f'{100 * stats["point_coverage"]:.0f} %')
        if len(points[info['id']][0]) and \
                stats['point_coverage'] < LOW_COVERAGE:
            print(f'WARNING: {out}: only '
                  f'{100 * stats["point_coverage"]:.0f} % of the '
                  f'{len(points[info["id"]][0])} points of image id '
                  f'{info["id"]} ({info["file_name"]}) lie on their class in '
                  'this map: a point off its object (e.g. on the background) '
                  'can flip the bright/dark choice and empty the map. Fix: '
                  'check the points (tools/analysis_tools/check_dataset.py '
                  'lists each point off its class with its annotation id) '
                  'or the image.')
    if gt_file:
        ious = foreground_ious(gt_file, maps, classes)
        if not ious:
            raise ValueError(
                f'--gt {gt_file}: none of its images (by file_name) is one '
                f'of the {len(maps)} images of {points_file}; give the '
                'ground truth of these images.')
        for name, iou in ious.items():
            print(f'foreground IoU vs {gt_file}: {name} {100 * iou:.1f} %')
            rows.append(dict(gt_class=name, foreground_iou=iou))
    return rows


#: share of an image's points on their class below which the tool warns
LOW_COVERAGE = 0.5


if __name__ == '__main__':
    main()
