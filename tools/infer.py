# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Segment the instances clicked in images with a trained P2Seg model.

One mask per given point (``test_cfg.mode='point'``)::

    python tools/infer.py CONFIG CHECKPOINT IMAGE_OR_FOLDER --out-dir DIR \
        [--points POINTS.json|POINTS.csv | --point X Y CLASS [...]] \
        [--percentiles LOW HIGH] [--channel K] [--device cpu]

Images without points (no ``--points``/``--point``: every image of the
input; or an image listed with no points) are decoded point-free
(``test_cfg.mode='center'``) if the model's centre head was trained
(``center_offset_head.loss_center_weight > 0``); otherwise the tool stops
before the first prediction and says so. An image in which point-free
decoding finds no instance is named in a logged warning. The mode is
picked per image: ``--cfg-options model.test_cfg.mode=...`` must be one of
the head's modes (``'point'``, ``'center'``; another value stops the tool)
and is otherwise not used (logged).

Images are read by the loading rule of ``p2seg_mm.datasets.image_io``
(EXIF orientation applied; 16-bit/float stretched per image between the
``--percentiles``; ``--channel`` picks a plane of multi-plane TIFFs).

Points are ``(x, y)`` in continuous pixel coordinates (the centre of pixel
(row i, column j) is ``(j + 0.5, i + 0.5)``), see ``docs/design.md``. CLASS
is a class name of the model or its 0-based index. Point sources:

- JSON: ``{"<image file name>": [[x, y, "class_name_or_id"], ...], ...}``,
  or a COCO json with ``point``s (``import_points.py``'s output);
- CSV: rows ``file,x,y,class`` (an optional header row ``file,x,y,class``);
- ``--point X Y CLASS`` repeated, for a single image.

With a folder, the images named in the points file are processed (names
relative to the folder). Writes ``<out-dir>/<--out-json>`` (COCO instances
with RLE masks, ``category_id = label + 1``, the point of each annotation
and its ``score``) and one ``<image stem>_overlay.png`` per image.
"""
import argparse
import json
import os
import os.path as osp
from typing import Dict, List, Optional

import numpy as np
from mmengine.config import DictAction
from mmengine.utils import ProgressBar

from p2seg_mm.apis.inference import (build_pipeline, center_head_trained,
                                     coco_categories, inference_center,
                                     inference_points, init_point_segmentor,
                                     instances_to_coco, read_image)
from p2seg_mm.apis.point_prompts import (PointsByImage, load_points,
                                         match_images, points_from_cli,
                                         prepare_points)
from p2seg_mm.datasets.image_io import DEFAULT_PERCENTILES
from p2seg_mm.utils.atomic_io import dump_json_atomic

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.tif', '.tiff', '.bmp',
                    '.webp')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line of ``tools/infer.py``."""
    parser = argparse.ArgumentParser(
        description='P2Seg point-prompted instance segmentation')
    parser.add_argument('config', help='config of the trained P2Seg model')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('input', help='an image or a folder of images')
    parser.add_argument('--out-dir', required=True, help='output folder')
    src = parser.add_mutually_exclusive_group()
    src.add_argument(
        '--points',
        help='points file (.json or .csv); without points the images are '
        'decoded point-free (needs a trained centre head)')
    src.add_argument(
        '--point',
        nargs=3,
        action='append',
        metavar=('X', 'Y', 'CLASS'),
        help='one point of a single input image, in pixels of the image '
        'as shown upright (EXIF orientation applied, as viewers show it); '
        'CLASS is a class name of the model or its 0-based '
        'index (not a json category_id); repeat for more')
    parser.add_argument('--device', default='cpu', help='e.g. cpu, cuda:0')
    parser.add_argument(
        '--percentiles',
        nargs=2,
        type=float,
        metavar=('LOW', 'HIGH'),
        default=None,
        help='percentiles stretched to 0..255 for 16-bit/float images '
        f'(default: the config\'s, else {DEFAULT_PERCENTILES})')
    parser.add_argument(
        '--channel',
        type=int,
        default=None,
        help='plane of multi-page/multi-channel TIFFs to use')
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
    """Points by image name from ``--points`` or ``--point``; without
    either, every image of the input with no points."""
    if args.point is not None:
        return points_from_cli(args.point, osp.basename(args.input))
    if args.points is not None:
        return load_points(args.points)
    return {name: [] for name in list_images(args.input)}


def json_image_ids(points_path: Optional[str]) -> dict:
    """``file_name -> id`` of a COCO points json (so the output json keeps
    the ids and can be scored against that dataset's ground truth); {} for
    other point files."""
    if not points_path or not points_path.lower().endswith('.json'):
        return {}
    with open(points_path, encoding='utf-8') as f:
        raw = json.load(f)
    if not isinstance(raw, dict) or not isinstance(raw.get('images'), list):
        return {}
    return {im['file_name']: im['id'] for im in raw['images']
            if isinstance(im, dict) and 'file_name' in im and 'id' in im}


def list_images(input_path: str) -> List[str]:
    """Image names of a file or folder (recursive, sorted, relative)."""
    if osp.isfile(input_path):
        return [osp.basename(input_path)]
    if not osp.isdir(input_path):
        raise FileNotFoundError(f'input {input_path} does not exist.')
    names = sorted(
        osp.relpath(osp.join(root, f), input_path)
        for root, _, files in os.walk(input_path) for f in files
        if osp.splitext(f)[1].lower() in IMAGE_EXTENSIONS)
    if not names:
        raise FileNotFoundError(f'no images ({", ".join(IMAGE_EXTENSIONS)})'
                                f' in {input_path}.')
    return names


def check_inputs(args: argparse.Namespace, points: PointsByImage,
                 paths: Dict[str, str], class_names, model,
                 image_options: tuple) -> dict:
    """Read every image and check its points before the first prediction.

    Returns:
        dict: Image name -> ``(xy (P, 2), labels (P,))``; P = 0 for
        point-free images.

    Raises:
        ValueError: Unreadable image (named), bad point, or images without
            points for a model whose centre head is untrained.
    """
    checked, pointless = {}, []
    for name, path in paths.items():
        height, width = read_image(path, *image_options).shape[:2]
        if points[name]:
            checked[name] = prepare_points(points[name], class_names, name,
                                           height, width)
        else:
            pointless.append(name)
            checked[name] = (np.zeros((0, 2), np.float32),
                             np.zeros(0, np.int64))
    if pointless and not center_head_trained(model):
        shown = ', '.join(pointless[:5]) + (', ...' if len(pointless) > 5
                                            else '')
        raise ValueError(
            f'{len(pointless)} image(s) have no points ({shown}), and this '
            'model cannot segment without points: its centre head was '
            'trained with center_offset_head.loss_center_weight=0 (see '
            f'{args.config}). Fix: give the points of these images '
            '(--points/--point), or use a model trained with '
            'loss_center_weight > 0 for point-free decoding.')
    return checked


def image_options(pipeline) -> tuple:
    """(percentiles, channel) of the pipeline's image loader, so that
    checks and overlays read images as the model does."""
    for step in pipeline.transforms:
        if type(step).__name__ == 'LoadP2SegImageFromFile':
            return step.percentiles, step.channel
    return DEFAULT_PERCENTILES, None


def main(argv: Optional[List[str]] = None) -> dict:
    """Entry point of ``tools/infer.py``; returns the COCO dict written."""
    args = parse_args(argv)
    points = gather_points(args)
    paths = match_images(args.input, points)
    model, cfg, class_names = init_point_segmentor(args.config,
                                                   args.checkpoint,
                                                   args.device,
                                                   args.cfg_options)
    pipeline = build_pipeline(cfg, args.percentiles, args.channel)
    options = image_options(pipeline)
    checked = check_inputs(args, points, paths, class_names, model, options)
    if not args.no_overlay:
        from p2seg_mm.visualization.overlay import overlay_instances, save_png
    coco = dict(
        images=[], annotations=[], categories=coco_categories(class_names))
    bar = ProgressBar(len(paths)) if len(paths) > 1 else None
    # a COCO points json's image ids are kept; other images are numbered
    # after them
    given_ids = json_image_ids(args.points)
    free = iter(range(max([-1] + [int(i) for i in given_ids.values()]) + 1,
                      10**12))
    for name, path in paths.items():
        img_id = given_ids[name] if name in given_ids else next(free)
        image = read_image(path, *options)
        xy, labels = checked[name]
        if len(xy):
            pred = inference_points(model, pipeline, path, img_id, xy,
                                    labels)
        else:
            pred = inference_center(model, pipeline, path, img_id)
        coco['images'].append(
            dict(
                id=img_id,
                file_name=name,
                height=image.shape[0],
                width=image.shape[1]))
        coco['annotations'] += instances_to_coco(
            pred, img_id, len(coco['annotations']) + 1, xy,
            coco['categories'], class_names)
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
