# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Add one point per instance to a COCO instances json.

Example::

    python tools/dataset_converters/masks_to_points.py \
        data/coco/annotations/instances_train2017.json --mode box_center

writes ``instances_train2017_points_box_center.json`` next to the input
(without masks; ``--keep-masks`` keeps them for evaluation jsons).

Points follow the project convention (``docs/design.md``): ``(x, y)`` in
continuous pixel coordinates, pixel (row ``i``, column ``j``) covers
``[j, j+1) x [i, i+1)`` and its centre is ``(j + 0.5, i + 0.5)``.

Modes:

- ``centroid``: the mask centroid snapped to the nearest mask pixel; the
  point is that pixel's centre (always inside the mask).
- ``random``: a pixel drawn uniformly among the mask pixels with a seeded
  ``numpy.random.Generator``; the point is that pixel's centre.
- ``box_center``: the centre ``(x + w / 2, y + h / 2)`` of the annotation's
  ``bbox`` (what the P2Seg release used for COCO), moved to the nearest pixel
  centre inside the image if it falls outside.
"""
import argparse
import copy
import json
import os.path as osp
import warnings
from typing import Dict, List, Optional, Tuple

import numpy as np

from p2seg_mm.datasets.data_checks import (DataCheckError,
                                           check_coco_structure, errors_of)
from p2seg_mm.structures.mask_codec import ann_to_mask
from p2seg_mm.utils.atomic_io import dump_json_atomic

MODES = ('centroid', 'random', 'box_center')


def centroid_point(mask: np.ndarray) -> Tuple[float, float]:
    """Mask centroid snapped to the nearest mask pixel, at its centre.

    Args:
        mask (np.ndarray): Shape (H, W), bool, must not be empty.

    Returns:
        tuple[float, float]: ``(x, y)`` continuous pixel coordinates.
    """
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        raise ValueError('centroid_point got an empty mask.')
    cy, cx = ys.mean(), xs.mean()
    k = int(np.argmin((ys - cy)**2 + (xs - cx)**2))
    return float(xs[k]) + 0.5, float(ys[k]) + 0.5


def random_point(mask: np.ndarray,
                 rng: np.random.Generator) -> Tuple[float, float]:
    """A mask pixel drawn uniformly with ``rng``, at its centre (x, y)."""
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        raise ValueError('random_point got an empty mask.')
    k = int(rng.integers(ys.size))
    return float(xs[k]) + 0.5, float(ys[k]) + 0.5


def box_center_point(bbox: List[float], height: int,
                     width: int) -> Tuple[float, float]:
    """Centre of an ``[x, y, w, h]`` box, clipped into the image.

    A coordinate outside ``[0, W)`` (or ``[0, H)``) moves to the centre of
    the nearest border pixel.
    """
    x = bbox[0] + bbox[2] / 2.0
    y = bbox[1] + bbox[3] / 2.0
    if not 0 <= x < width:
        x = min(max(x, 0.5), width - 0.5)
    if not 0 <= y < height:
        y = min(max(y, 0.5), height - 0.5)
    return float(x), float(y)


def default_output_path(in_file: str, mode: str, seed: int = 0) -> str:
    """``<dir>/<stem>_points_<mode>[_seed<k>].json`` (seed only if random)."""
    stem = osp.splitext(in_file)[0]
    suffix = f'_points_{mode}'
    if mode == 'random':
        suffix += f'_seed{seed}'
    return stem + suffix + '.json'


def _check_input(coco: dict, mode: str, source: str) -> None:
    for key in ('images', 'annotations'):
        if key not in coco:
            raise ValueError(f'{source}: not a COCO instances json (no '
                             f'"{key}" list).')
    if mode not in MODES:
        raise ValueError(f'mode must be one of {MODES}, got {mode!r}.')
    problems = errors_of(check_coco_structure(coco, source))
    if problems:  # empty image list, repeated ids, dangling references
        raise DataCheckError(problems, source)
    if not coco['annotations']:
        raise ValueError(
            f'{source}: the json has {len(coco["images"])} images but no '
            'annotation, so the output would hold no point. Fix: convert '
            'the instances json that holds the masks.')
    need = 'bbox' if mode == 'box_center' else 'segmentation'
    for ann in coco['annotations']:
        if need not in ann:
            hint = ('use a json with masks or --mode box_center'
                    if need == 'segmentation' else 'use a mask mode')
            raise ValueError(
                f'{source}: annotation id {ann.get("id")} has no "{need}", '
                f'which mode {mode!r} needs; {hint}.')


def convert_masks_to_points(coco: dict,
                            mode: str = 'centroid',
                            seed: int = 0,
                            keep_masks: bool = False,
                            strict: bool = False,
                            source: str = '<coco dict>',
                            progress: bool = False) -> Tuple[dict, int]:
    """Add a ``"point": [x, y]`` to every annotation of a COCO dict.

    Args:
        coco (dict): COCO instances dict (not modified).
        mode (str): ``'centroid'``, ``'random'`` or ``'box_center'``.
            Defaults to 'centroid'.
        seed (int): Seed of the generator for ``'random'``. Defaults to 0.
        keep_masks (bool): Keep ``segmentation`` and ``bbox`` (evaluation
            jsons). Otherwise both are removed (``area`` and ``iscrowd``
            stay). Defaults to False.
        strict (bool): Raise on an empty mask instead of skipping it.
            Defaults to False.
        source (str): Name used in messages. Defaults to '<coco dict>'.
        progress (bool): Show a tqdm bar. Defaults to False.

    Returns:
        tuple[dict, int]: The new dict and the number of skipped (empty)
        annotations.

    Raises:
        ValueError: Not a COCO json, structural problems (no images,
            repeated ids, annotations of unknown images or categories), an
            annotation without what ``mode`` needs, or an empty output
            (no annotation, or all of them empty).
    """
    _check_input(coco, mode, source)
    images: Dict[int, dict] = {img['id']: img for img in coco['images']}
    rng = np.random.default_rng(seed)
    out = {k: copy.deepcopy(v) for k, v in coco.items() if k != 'annotations'}
    anns = coco['annotations']
    if progress:
        from tqdm import tqdm
        anns = tqdm(anns, desc=f'masks->points ({mode})', unit='ann')
    new_anns, skipped = [], 0
    for ann in anns:
        img = images.get(ann['image_id'])
        if img is None:
            raise ValueError(f'{source}: annotation id {ann.get("id")} '
                             f'refers to missing image id {ann["image_id"]}.')
        h, w = int(img['height']), int(img['width'])
        if mode == 'box_center':
            empty = ann['bbox'][2] <= 0 or ann['bbox'][3] <= 0
        else:
            mask = ann_to_mask(ann, h, w)
            empty = not mask.any()
        if empty:
            if strict:
                raise ValueError(
                    f'{source}: annotation id {ann.get("id")} (image id '
                    f'{ann["image_id"]}) has an empty mask/box; drop it or '
                    'run without --strict to skip it.')
            skipped += 1
            continue
        if mode == 'centroid':
            point = centroid_point(mask)
        elif mode == 'random':
            point = random_point(mask, rng)
        else:
            point = box_center_point(ann['bbox'], h, w)
        new_ann = copy.deepcopy(ann)
        if not keep_masks:
            new_ann.pop('segmentation', None)
            new_ann.pop('bbox', None)
        new_ann['point'] = [point[0], point[1]]
        new_anns.append(new_ann)
    if skipped:
        warnings.warn(f'{source}: skipped {skipped} annotation(s) with an '
                      'empty mask/box.')
    if not new_anns:
        raise ValueError(
            f'{source}: all {skipped} annotations have an empty mask/box, so '
            'the output would hold no point. Fix: check the masks (polygons '
            f'need >= 3 points) or use another --mode than {mode!r}.')
    out['annotations'] = new_anns
    return out, skipped


def masks_to_points_file(in_file: str,
                         out_file: Optional[str] = None,
                         mode: str = 'centroid',
                         seed: int = 0,
                         keep_masks: bool = False,
                         strict: bool = False,
                         progress: bool = True) -> str:
    """Convert a COCO json file; returns the path written (atomically)."""
    if not osp.isfile(in_file):
        raise FileNotFoundError(
            f'COCO json not found: {in_file}; pass the path of an existing '
            'instances json.')
    with open(in_file) as f:
        coco = json.load(f)
    out, _ = convert_masks_to_points(
        coco,
        mode=mode,
        seed=seed,
        keep_masks=keep_masks,
        strict=strict,
        source=in_file,
        progress=progress)
    out_file = out_file or default_output_path(in_file, mode, seed)
    dump_json_atomic(out, out_file)
    return out_file


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
