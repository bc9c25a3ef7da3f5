# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Make semantic pseudo-maps from images + points (no WSSS model needed).

Example::

    python tools/dataset_converters/make_pseudo_maps.py my_cells/points.json \\
        --img-dir my_cells/ --out-dir my_cells/pseudo_maps/

writes ``<out-dir>/<file_name stem>.png`` per image (0 background,
``c + 1`` class ``c`` in the json's category order, 255 ignore), the layout
``data_prefix=dict(seg=...)`` with the default ``seg_map_suffix='.png'``
expects. Suited to objects that differ from a flat background by
brightness (stained nuclei, fluorescence, phase contrast); natural images
need a WSSS method. The method is described in
``p2seg_mm/datasets/converters/pseudo_maps.py``.
"""
import argparse
import json
import os.path as osp
from typing import List, Optional

import cv2

from p2seg_mm.datasets.converters.pseudo_maps import (PseudoMapConfig,
                                                      make_pseudo_map,
                                                      points_by_image)
from p2seg_mm.datasets.image_io import DEFAULT_PERCENTILES, read_image_file
from p2seg_mm.utils.atomic_io import write_bytes_atomic


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    defaults = PseudoMapConfig()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('points', help='COCO-with-points json')
    parser.add_argument('--img-dir', required=True, help='image folder')
    parser.add_argument('--out-dir', required=True, help='map folder')
    parser.add_argument('--method', choices=['threshold'],
                        default='threshold')
    for name in ('sigma', 'k_mad', 'min_k', 'min_point_coverage'):
        parser.add_argument('--' + name.replace('_', '-'), type=float,
                            default=getattr(defaults, name))
    for name in ('radius', 'min_area', 'ignore_band'):
        parser.add_argument('--' + name.replace('_', '-'), type=int,
                            default=getattr(defaults, name))
    parser.add_argument('--conflict', choices=['nearest', 'ignore'],
                        default=defaults.conflict,
                        help='component holding points of several classes')
    parser.add_argument('--percentiles', nargs=2, type=float,
                        default=DEFAULT_PERCENTILES)
    parser.add_argument('--channel', type=int, default=None)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> List[dict]:
    """Entry point; returns one statistics dict per image."""
    args = parse_args(argv)
    cfg = PseudoMapConfig(
        **{k: getattr(args, k) for k in PseudoMapConfig.__annotations__})
    with open(args.points, encoding='utf-8') as f:
        coco = json.load(f)
    points = points_by_image(coco)
    rows = []
    for info in coco['images']:
        path = osp.join(args.img_dir, info['file_name'])
        image = read_image_file(path, 'rgb', args.percentiles, args.channel)
        if image.shape[:2] != (info['height'], info['width']):
            raise ValueError(
                f'{args.points}: image id {info["id"]} says '
                f'{info["height"]} x {info["width"]} but {path} is '
                f'{image.shape[0]} x {image.shape[1]} (upright).')
        seg, stats = make_pseudo_map(image, *points[info['id']], cfg)
        out = osp.join(args.out_dir,
                       osp.splitext(info['file_name'])[0] + '.png')
        write_bytes_atomic(cv2.imencode('.png', seg)[1].tobytes(), out)
        rows.append(dict(file_name=info['file_name'], **stats))
        print(f'{out}: {"bright" if stats["polarity"] > 0 else "dark"} '
              f'objects, k={stats["k"]:.2f}, points on their class '
              f'{100 * stats["point_coverage"]:.0f} %')
    return rows


if __name__ == '__main__':
    main()
