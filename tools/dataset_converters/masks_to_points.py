# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Add one point per instance to a COCO instances json.

Example::

    python tools/dataset_converters/masks_to_points.py \
        data/coco/annotations/instances_train2017.json --mode box_center

writes ``instances_train2017_points_box_center.json`` next to the input
(without masks; ``--keep-masks`` keeps them for evaluation jsons).
"""
import argparse

from p2seg_mm.datasets.converters.masks_to_points import (MODES,
                                                          masks_to_points_file)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('in_file', help='COCO instances json with masks')
    parser.add_argument('--mode', choices=MODES, default='centroid')
    parser.add_argument(
        '--seed', type=int, default=0, help='seed of the random mode')
    parser.add_argument(
        '--out',
        default=None,
        help='output json (default: '
        '<stem>_points_<mode>[_seed<k>].json)')
    parser.add_argument(
        '--keep-masks', action='store_true', help='keep segmentation and bbox')
    parser.add_argument(
        '--strict',
        action='store_true',
        help='error on empty masks instead of skipping')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    out = masks_to_points_file(
        args.in_file,
        out_file=args.out,
        mode=args.mode,
        seed=args.seed,
        keep_masks=args.keep_masks,
        strict=args.strict)
    print(f'wrote {out}')


if __name__ == '__main__':
    main()
