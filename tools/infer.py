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
import csv
import json
import math
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.config import DictAction

PointSpec = Tuple[float, float, Union[int, str]]
PointsByImage = Dict[str, List[PointSpec]]


def _number(value, where: str) -> float:
    """Convert a coordinate to a finite float or raise ValueError."""
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f'{where}: coordinate {value!r} is not a number.')
    if not math.isfinite(out) or isinstance(value, bool):
        raise ValueError(f'{where}: coordinate {value!r} is not a finite '
                         'number.')
    return out


def _class_token(value, where: str) -> Union[int, str]:
    """Check a class given as a name (str) or a 0-based index (int)."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f'{where}: class {value!r} must be a class name '
                         '(string) or a 0-based class index (integer).')
    return value


def load_points_json(path: str) -> PointsByImage:
    """Read ``{"<image>": [[x, y, class], ...]}`` from a JSON file.

    Returns:
        dict[str, list[tuple]]: ``(x, y, class)`` per point, by image name.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'points file {path} does not exist.')
    with open(path) as f:
        try:
            raw = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f'{path}: not valid JSON ({e}).')
    if not isinstance(raw, dict):
        raise ValueError(f'{path}: expected an object {{"<image file name>": '
                         '[[x, y, class], ...]}}, got a '
                         f'{type(raw).__name__}.')
    out: PointsByImage = {}
    for name, entries in raw.items():
        if not isinstance(entries, list):
            raise ValueError(f'{path}: image {name!r} must map to a list of '
                             '[x, y, class] entries.')
        out[name] = []
        for k, entry in enumerate(entries):
            where = f'{path}: image {name!r}, point #{k}'
            if not isinstance(entry, (list, tuple)) or len(entry) != 3:
                raise ValueError(f'{where}: expected [x, y, class], got '
                                 f'{entry!r}.')
            out[name].append((_number(entry[0], where),
                              _number(entry[1], where),
                              _class_token(entry[2], where)))
    return out


def load_points_csv(path: str) -> PointsByImage:
    """Read rows ``file,x,y,class`` (optional header) from a CSV file."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'points file {path} does not exist.')
    out: PointsByImage = {}
    with open(path, newline='') as f:
        for line_no, row in enumerate(csv.reader(f), start=1):
            row = [cell.strip() for cell in row]
            if not row or all(not cell for cell in row):
                continue
            if line_no == 1 and [c.lower() for c in row] == [
                    'file', 'x', 'y', 'class'
            ]:
                continue
            where = f'{path}, line {line_no}'
            if len(row) != 4 or not row[0]:
                raise ValueError(f'{where}: expected "file,x,y,class", got '
                                 f'{",".join(row)!r}.')
            out.setdefault(row[0], []).append(
                (_number(row[1], where), _number(row[2], where), row[3]))
    return out


def points_from_cli(point_args: Sequence[Sequence[str]],
                    image_name: str) -> PointsByImage:
    """Turn repeated ``--point X Y CLASS`` into ``{image_name: points}``."""
    points = []
    for k, (x, y, cls) in enumerate(point_args):
        where = f'--point #{k} ({x} {y} {cls})'
        points.append((_number(x, where), _number(y, where), cls))
    return {image_name: points}


def load_points(path: str) -> PointsByImage:
    """Read a points file, JSON or CSV by its extension."""
    ext = osp.splitext(path)[1].lower()
    if ext == '.json':
        return load_points_json(path)
    if ext == '.csv':
        return load_points_csv(path)
    raise ValueError(f'points file {path}: use a .json or .csv file.')


def resolve_class(token: Union[int, str], class_names: Sequence[str],
                  where: str) -> int:
    """Map a class name or 0-based index (int or digit string) to a label.

    A string equal to a class name wins over its reading as an index.
    """
    if isinstance(token, str):
        if token in class_names:
            return list(class_names).index(token)
        try:
            token = int(token)
        except ValueError:
            raise ValueError(
                f'{where}: unknown class {token!r}. Valid class names: '
                f'{", ".join(class_names)} (or indices 0..'
                f'{len(class_names) - 1}).')
    if not 0 <= token < len(class_names):
        raise ValueError(f'{where}: class index {token} is out of range '
                         f'0..{len(class_names) - 1} ({len(class_names)} '
                         'classes).')
    return int(token)


def prepare_points(points: Sequence[PointSpec], class_names: Sequence[str],
                   image_name: str, height: int,
                   width: int) -> Tuple[np.ndarray, np.ndarray]:
    """Check the points of one image and map their classes to labels.

    Args:
        points (Sequence[tuple]): ``(x, y, class)`` per point.
        class_names (Sequence[str]): The model's classes, label order.
        image_name (str): Used in error messages.
        height (int): Image height H.
        width (int): Image width W.

    Returns:
        tuple[np.ndarray, np.ndarray]: Points (N, 2) float32 ``(x, y)`` and
        labels (N,) int64.

    Raises:
        ValueError: No points, a point outside ``0 <= x < W, 0 <= y < H``,
            or an unknown class.
    """
    if len(points) == 0:
        raise ValueError(f'image {image_name} has no points. Fix: give at '
                         'least one [x, y, class] for it.')
    xy = np.zeros((len(points), 2), dtype=np.float32)
    labels = np.zeros(len(points), dtype=np.int64)
    for k, (x, y, cls) in enumerate(points):
        where = f'image {image_name}, point #{k} ({x}, {y})'
        if not (0 <= x < width and 0 <= y < height):
            raise ValueError(f'{where} lies outside the image (width {width},'
                             f' height {height}; need 0 <= x < {width} and '
                             f'0 <= y < {height}).')
        xy[k] = (x, y)
        labels[k] = resolve_class(cls, class_names, where)
    return xy, labels


def match_images(input_path: str, points: PointsByImage) -> Dict[str, str]:
    """Map each image name of ``points`` to its file.

    Args:
        input_path (str): An image file or a folder of images.
        points (dict): Points by image name (file name, or path relative to
            the folder).

    Returns:
        dict[str, str]: Image name -> existing file path.
    """
    if not osp.exists(input_path):
        raise FileNotFoundError(f'input {input_path} does not exist.')
    if not points:
        raise ValueError(f'no points given for {input_path}.')
    if osp.isfile(input_path):
        base = osp.basename(input_path)
        others = [n for n in points if n not in (base, input_path)]
        if others:
            raise FileNotFoundError(
                f'points are given for {others}, but the input is the single '
                f'image {input_path}. Fix: pass the folder holding them.')
        return {name: input_path for name in points}
    paths = {}
    for name in points:
        path = osp.join(input_path, name)
        if not osp.isfile(path):
            raise FileNotFoundError(f'image {name!r} named in the points does '
                                    f'not exist in {input_path}.')
        paths[name] = path
    return paths


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


def build_model(config: str, checkpoint: str, device: str,
                cfg_options: Optional[dict] = None):
    """Build P2Seg in point mode, load weights, find the class names.

    Returns:
        tuple: ``(model, cfg, class_names)``; names come from the
        checkpoint's ``dataset_meta``, else from the config's dataset
        ``metainfo``.
    """
    import p2seg_mm  # noqa: F401  (registries, checkpoint loading fix)
    from mmengine.config import Config
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint

    from mmdet.registry import MODELS
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if cfg.model.get('type') != 'P2Seg':
        raise ValueError(f'{config}: tools/infer.py runs P2Seg models in '
                         f'point mode, but model.type is '
                         f'{cfg.model.get("type")!r}.')
    if cfg.model.get('test_cfg') is None:
        cfg.model.test_cfg = dict()
    cfg.model.test_cfg.mode = 'point'
    cfg.model.pop('init_cfg', None)
    if cfg.model.get('backbone') is not None:
        cfg.model.backbone.init_cfg = None  # weights come from checkpoint
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    ckpt = load_checkpoint(
        model, checkpoint, map_location='cpu', strict=True)
    names = ckpt.get('meta', {}).get('dataset_meta', {}).get('classes')
    if not names:
        for key in ('test_dataloader', 'val_dataloader', 'train_dataloader'):
            meta = cfg.get(key, {}).get('dataset', {}).get('metainfo') or {}
            names = meta.get('classes')
            if names:
                break
    if not names:
        raise ValueError(f'{checkpoint} has no meta.dataset_meta.classes and '
                         f'{config} no dataset metainfo.classes: cannot name '
                         'the classes. Fix: add metainfo=dict(classes=(...)) '
                         'to test_dataloader.dataset.')
    model.dataset_meta = dict(classes=tuple(names))
    return model.to(device).eval(), cfg, tuple(names)


def build_pipeline(cfg):
    """The config's test pipeline, with no semantic map to load."""
    from mmengine.dataset import Compose
    dataset = cfg.get('test_dataloader', {}).get('dataset', {})
    pipeline = dataset.get('pipeline') or cfg.get('test_pipeline')
    if not pipeline:
        raise ValueError('the config has neither test_dataloader.dataset.'
                         'pipeline nor test_pipeline.')
    steps = []
    for step in pipeline:
        step = dict(step)
        if step['type'] == 'LoadP2SegAnnotations':
            step['with_seg'] = False
        steps.append(step)
    return Compose(steps)


def predict_image(model, pipeline, path: str, img_id: int, xy: np.ndarray,
                  labels: np.ndarray):
    """Run point-mode prediction on one image; return ``pred_instances``."""
    import torch
    from mmengine.dataset import pseudo_collate
    instances = [
        dict(point=[float(x), float(y)], bbox_label=int(c), ignore_flag=0)
        for (x, y), c in zip(xy, labels)
    ]
    data = pipeline(
        dict(img_path=path, img_id=img_id, seg_map_path=None,
             instances=instances))
    with torch.no_grad():
        result = model.test_step(pseudo_collate([data]))[0]
    return result.pred_instances.cpu()


def instances_to_coco(pred, img_id: int, first_ann_id: int,
                      xy: np.ndarray) -> List[dict]:
    """COCO annotations (RLE masks, ``category_id = label + 1``)."""
    from pycocotools import mask as mask_utils
    masks = pred.masks.numpy().astype(np.uint8)
    anns = []
    for k in range(len(masks)):
        rle = mask_utils.encode(np.asfortranarray(masks[k]))
        rle['counts'] = rle['counts'].decode('ascii')
        ann = dict(
            id=first_ann_id + k,
            image_id=img_id,
            category_id=int(pred.labels[k]) + 1,
            segmentation=rle,
            area=float(mask_utils.area(rle)),
            bbox=[float(v) for v in mask_utils.toBbox(rle)],
            score=float(pred.scores[k]),
            iscrowd=0)
        if len(masks) == len(xy):  # point mode: one mask per point, in order
            ann['point'] = [float(v) for v in xy[k]]
        anns.append(ann)
    return anns


def read_image(path: str) -> np.ndarray:
    """Read an image as (H, W, 3) uint8 RGB or raise ValueError."""
    import mmcv
    image = mmcv.imread(path, channel_order='rgb')
    if image is None:
        raise ValueError(f'image {path} could not be read (not an image?).')
    return image


def main(argv: Optional[List[str]] = None) -> dict:
    """Entry point of ``tools/infer.py``; returns the COCO dict written."""
    args = parse_args(argv)
    points = gather_points(args)
    paths = match_images(args.input, points)
    model, cfg, class_names = build_model(args.config, args.checkpoint,
                                          args.device, args.cfg_options)
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
    for img_id, (name, path) in enumerate(paths.items()):
        image = read_image(path)
        xy, labels = checked[name]
        pred = predict_image(model, pipeline, path, img_id, xy, labels)
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
        print(f'{name}: {len(pred)} masks')
    json_path = osp.join(args.out_dir, args.out_json)
    os.makedirs(args.out_dir, exist_ok=True)
    with open(json_path, 'w') as f:
        json.dump(coco, f)
    print(f'wrote {json_path}')
    return coco


if __name__ == '__main__':
    main()
