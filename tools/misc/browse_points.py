# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Draw the point annotations (and pseudo-maps) of a dataset as PNGs.

Example::

    python tools/misc/browse_points.py \
        data/demo_cells/annotations/train_points.json \
        data/demo_cells/images --seg-dir data/demo_cells/pseudo_sem \
        --out-dir work_dirs/browse -n 5

Crowd annotations are drawn as hollow gray rings (ignored points). With
``--show-masks`` annotations that carry a ``segmentation`` are drawn too.
Images are read by the loading rule (``p2seg_mm.datasets.image_io``: EXIF
orientation applied, 16-bit stretched), pseudo-maps as index maps (palette
indices, not colours) and labels follow the json category order
(``p2seg_mm.datasets.categories.category_to_label``), as in training.
"""
import argparse
import os.path as osp

import numpy as np
from pycocotools.coco import COCO

from p2seg_mm.datasets.categories import category_to_label
from p2seg_mm.datasets.image_io import read_image_file
from p2seg_mm.datasets.transforms.loading import read_seg_map
from p2seg_mm.visualization.overlay import (overlay_instances, overlay_points,
                                            overlay_semantic, save_png)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('ann_file', help='COCO json with "point" fields')
    parser.add_argument('img_dir', help='directory of the images')
    parser.add_argument(
        '--seg-dir', default=None, help='directory of semantic pseudo-maps')
    parser.add_argument('--seg-suffix', default='.png')
    parser.add_argument('--out-dir', default='work_dirs/browse_points')
    parser.add_argument(
        '-n',
        '--num',
        type=int,
        default=10,
        help='number of images (the first N by id)')
    parser.add_argument('--show-masks', action='store_true')
    parser.add_argument(
        '--classes',
        nargs='+',
        default=None,
        help='class names in label order (the config\'s metainfo.classes); '
        'annotations of other categories are not drawn. Default: every json '
        'category, in json order')
    parser.add_argument(
        '--no-names',
        action='store_true',
        help='do not write class names beside points')
    return parser.parse_args()


def draw_image(coco: COCO, img_id: int, args: argparse.Namespace):
    """Overlay of one image as an RGB array."""
    info = coco.imgs[img_id]
    path = osp.join(args.img_dir, info['file_name'])
    if not osp.isfile(path):
        raise FileNotFoundError(f'image id {img_id}: cannot read {path}; '
                                'check img_dir.')
    img = read_image_file(path, 'rgb')
    if args.seg_dir is not None:
        stem = osp.splitext(info['file_name'])[0]
        seg_path = osp.join(args.seg_dir, stem + args.seg_suffix)
        if not osp.isfile(seg_path):
            raise FileNotFoundError(f'image id {img_id}: cannot read '
                                    f'pseudo-map {seg_path}; check --seg-dir.')
        seg = read_seg_map(seg_path)
        if seg.shape != img.shape[:2]:
            raise ValueError(f'image id {img_id}: pseudo-map {seg_path} is '
                             f'{seg.shape} (H, W) but the image is '
                             f'{img.shape[:2]}.')
        img = overlay_semantic(img, seg)
    cat2label = category_to_label(coco.dataset.get('categories', []),
                                  getattr(args, 'classes', None),
                                  args.ann_file)
    names = None if args.no_names else [
        coco.cats[c]['name'] for c in cat2label
    ]
    anns = [
        a for a in coco.loadAnns(coco.getAnnIds(imgIds=[img_id]))
        if a['category_id'] in cat2label
    ]
    for a in anns:
        if 'point' not in a:
            raise ValueError(f'{args.ann_file}: annotation id {a["id"]} has '
                             'no "point"; run masks_to_points.py first.')
    labels = np.array([cat2label[a['category_id']] for a in anns], np.int64)
    if args.show_masks:
        with_mask = [k for k, a in enumerate(anns) if 'segmentation' in a]
        if with_mask:
            masks = np.stack([coco.annToMask(anns[k]) for k in with_mask])
            img = overlay_instances(
                img, masks.astype(bool), labels[with_mask], class_names=names)
    points = np.array([a['point'] for a in anns], np.float32).reshape(-1, 2)
    ignored = np.array([bool(a.get('iscrowd', 0)) for a in anns], bool)
    return overlay_points(
        img, points, labels, class_names=names, ignored=ignored)


def main() -> None:
    args = parse_args()
    if not osp.isfile(args.ann_file):
        raise FileNotFoundError(f'annotation file {args.ann_file} not found.')
    coco = COCO(args.ann_file)
    for img_id in sorted(coco.imgs)[:args.num]:
        out = osp.join(
            args.out_dir,
            osp.splitext(coco.imgs[img_id]['file_name'])[0] + '.png')
        save_png(out, draw_image(coco, img_id, args))
        print(out)


if __name__ == '__main__':
    main()
