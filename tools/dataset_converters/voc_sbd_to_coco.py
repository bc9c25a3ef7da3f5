# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Convert VOC 2012 + SBD instance masks to COCO jsons (train_aug / val).

Example::

    python tools/dataset_converters/voc_sbd_to_coco.py \
        --voc-root data/VOCdevkit/VOC2012 \
        --sbd-root data/benchmark_RELEASE/dataset \
        --out-dir data/voc/annotations

writes ``voc_2012_train_aug.json`` (10,582 images) and ``voc_2012_val.json``
(1,449 images) with RLE masks. Add points with
``tools/dataset_converters/masks_to_points.py``.
"""
import argparse

# sibling module (this script's folder is on sys.path)
from voc_sbd import convert_voc_sbd


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--voc-root', required=True, help='VOC2012 directory (or VOCdevkit)')
    parser.add_argument(
        '--sbd-root',
        default=None,
        help='SBD dataset directory (or benchmark_RELEASE); '
        'omit to use VOC only')
    parser.add_argument('--out-dir', required=True)
    parser.add_argument(
        '--splits',
        nargs='+',
        default=['train_aug', 'val'],
        choices=['train_aug', 'val'])
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    written = convert_voc_sbd(
        args.voc_root, args.sbd_root, args.out_dir, splits=args.splits)
    for split, path in written.items():
        print(f'{split}: {path}')


if __name__ == '__main__':
    main()
