# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Segment the instances clicked in images with a trained P2Seg model.

One mask per given point (``test_cfg.mode='point'``)::

    python tools/infer.py CONFIG CHECKPOINT IMAGE_OR_FOLDER --out-dir DIR \
        (--points POINTS.json|POINTS.csv | --point X Y CLASS [...]) \
        [--device cpu]

Points are ``(x, y)`` in continuous pixel coordinates (the centre of pixel
(row i, column j) is ``(j + 0.5, i + 0.5)``), see ``docs/design.md``. CLASS
is a class name of the model or its 0-based index. Point sources:

- JSON: ``{"<image file name>": [[x, y, "class_name_or_id"], ...], ...}``;
- CSV: rows ``file,x,y,class`` (an optional header row ``file,x,y,class``);
- ``--point X Y CLASS`` repeated, for a single image.

With a folder, the images named in the points file are processed (names
relative to the folder). Writes ``<out-dir>/<--out-json>`` (COCO instances
with RLE masks, ``category_id = label + 1``, the point of each annotation
and its ``score``) and one ``<image stem>_overlay.png`` per image.
"""
import argparse
import os.path as osp
from typing import List, Optional

from mmengine.config import DictAction
from mmengine.utils import ProgressBar

from p2seg_mm.apis.inference import (build_pipeline, inference_points,
                                     init_point_segmentor, instances_to_coco,
                                     read_image)
from p2seg_mm.apis.point_prompts import (PointsByImage, load_points,
                                         match_images, points_from_cli,
                                         prepare_points)
from p2seg_mm.utils.atomic_io import dump_json_atomic


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line of ``tools/infer.py``."""
    parser = argparse.ArgumentParser(
        description='P2Seg point-prompted instance segmentation')
    parser.add_argument('config', help='config of the trained P2Seg model')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('input', help='an image or a folder of images')
    parser.add_argument('--out-dir', required=True, help='output folder')
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument('--points', help='points file (.json or .csv)')
    src.add_argument(
        '--point',
        nargs=3,
        action='append',
        metavar=('X', 'Y', 'CLASS'),
        help='one point of a single input image; repeat for more')
    parser.add_argument('--device', default='cpu', help='e.g. cpu, cuda:0')
    parser.add_argument(
        '--out-json',
        default='p2seg_predictions.json',
        help='name of the COCO json written into --out-dir')
    parser.add_argument(
        '--no-overlay', action='store_true', help='skip the PNG overlays')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config entries, key=value')
    args = parser.parse_args(argv)
    if args.point is not None and osp.isdir(args.input):
        parser.error('--point needs a single image as input; use --points '
                     'with a folder.')
    return args


def gather_points(args: argparse.Namespace) -> PointsByImage:
    """Points by image name from ``--points`` or ``--point``."""
    if args.point is not None:
        return points_from_cli(args.point, osp.basename(args.input))
    return load_points(args.points)


def main(argv: Optional[List[str]] = None) -> dict:
    """Entry point of ``tools/infer.py``; returns the COCO dict written."""
    args = parse_args(argv)
    points = gather_points(args)
    paths = match_images(args.input, points)
    model, cfg, class_names = init_point_segmentor(args.config,
                                                   args.checkpoint,
                                                   args.device,
                                                   args.cfg_options)
    # Check every image and point before the first prediction.
    checked = {}
    for name, path in paths.items():
        height, width = read_image(path).shape[:2]
        checked[name] = prepare_points(points[name], class_names, name,
                                       height, width)
    pipeline = build_pipeline(cfg)
    if not args.no_overlay:
        from p2seg_mm.visualization.overlay import overlay_instances, save_png
    coco = dict(
        images=[],
        annotations=[],
        categories=[
            dict(id=k + 1, name=name) for k, name in enumerate(class_names)
        ])
    bar = ProgressBar(len(paths)) if len(paths) > 1 else None
    for img_id, (name, path) in enumerate(paths.items()):
        image = read_image(path)
        xy, labels = checked[name]
        pred = inference_points(model, pipeline, path, img_id, xy, labels)
        coco['images'].append(
            dict(
                id=img_id,
                file_name=name,
                height=image.shape[0],
                width=image.shape[1]))
        coco['annotations'] += instances_to_coco(pred, img_id,
                                                 len(coco['annotations']) + 1,
                                                 xy)
        if not args.no_overlay:
            drawn = overlay_instances(
                image, pred.masks.numpy(), pred.labels.numpy(), class_names,
                pred.scores.numpy(), xy if len(xy) == len(pred) else None)
            stem = osp.splitext(name)[0].replace('/', '__')
            save_png(osp.join(args.out_dir, f'{stem}_overlay.png'), drawn)
        if bar is not None:
            bar.update()
    json_path = osp.join(args.out_dir, args.out_json)
    dump_json_atomic(coco, json_path)
    print(f'\nwrote {json_path}: {len(coco["annotations"])} masks for '
          f'{len(coco["images"])} image(s)')
    return coco


if __name__ == '__main__':
    main()
