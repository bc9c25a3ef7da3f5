# Copyright (c) p2seg_mm contributors. All rights reserved.
"""The "nearest point" pseudo-mask baseline.

Every pixel of the semantic pseudo-map's foreground of class ``c`` is given
to the nearest annotated point of class ``c`` (Euclidean distance from the
pixel centre, no learned offsets, no affinity). It is what P2Seg must beat:
the same inputs (points + pseudo-map) without any learning.
"""
import json
import os.path as osp
from typing import Dict, Optional, Sequence

import numpy as np
import torch
from mmengine.logging import print_log
from mmengine.utils import ProgressBar
from PIL import Image

from ..datasets.categories import category_to_label
from ..datasets.data_checks import (DataCheckError, check_coco_structure,
                                    errors_of)
from ..structures.mask_codec import mask_to_annotation
from ..utils.atomic_io import dump_json_atomic
from ..models.post_processing.point_decoding import \
    decode_instances_with_points


def nearest_point_masks(seg_map: np.ndarray,
                        points: np.ndarray,
                        labels: np.ndarray,
                        num_classes: int,
                        fallback_half_size: int = 0,
                        fallback_score: float = 0.5) -> Dict[str, np.ndarray]:
    """One mask per point by nearest-point assignment on the pseudo-map.

    Args:
        seg_map (np.ndarray): Shape (H, W), 0 bg, c+1 class c, 255 ignore.
        points (np.ndarray): Shape (K, 2), (x, y) continuous coordinates.
        labels (np.ndarray): Shape (K,), 0-based classes.
        num_classes (int): Number of foreground classes C.
        fallback_half_size (int): A point that gets no pixel gets the
            square of this half size that a model's decoding gives it
            (``test_cfg.fallback_half_size``); 0 leaves it empty (the
            baseline). Defaults to 0.
        fallback_score (float): Score of such a square. Defaults to 0.5.

    Returns:
        dict: ``masks`` (K, H, W) bool and ``scores`` (K,) float (1.0 for a
        non-empty mask, 0.0 for an empty one, ``fallback_score`` for a
        fallback square).
    """
    seg = torch.from_numpy(seg_map.astype(np.int64))
    seg = torch.where(seg == 255, torch.zeros_like(seg), seg)
    if int(seg.max()) > num_classes:
        raise ValueError(f'pseudo-map value {int(seg.max())} exceeds the '
                         f'{num_classes} classes')
    sem_prob = torch.nn.functional.one_hot(seg, num_classes + 1)
    sem_prob = sem_prob.permute(2, 0, 1).float()
    offset = torch.zeros((2, ) + seg_map.shape)
    out = decode_instances_with_points(
        sem_prob,
        offset,
        torch.as_tensor(points, dtype=torch.float32).reshape(-1, 2),
        torch.as_tensor(labels, dtype=torch.long).reshape(-1),
        fallback_half_size=fallback_half_size,
        fallback_score=fallback_score)
    return dict(masks=out['masks'].numpy(), scores=out['scores'].numpy())


def export_nearest_point_baseline(points_json: str,
                                  seg_dir: str,
                                  out_file: str,
                                  seg_suffix: str = '.png',
                                  progress: bool = True,
                                  classes: Optional[Sequence[str]] = None
                                  ) -> str:
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

    Returns:
        str: ``out_file``.

    Raises:
        ValueError: A json with structural problems (e.g. repeated image
            ids), categories that do not fit ``classes``, or no mask at all
            in the output.
        FileNotFoundError: A missing pseudo-map.
    """
    with open(points_json) as f:
        src = json.load(f)
    problems = errors_of(check_coco_structure(src, points_json))
    if problems:
        raise DataCheckError(problems, points_json)
    cats = src.get('categories', [])
    cat2label = category_to_label(cats, classes, points_json)
    anns_by_img: Dict[int, list] = {}
    for ann in src.get('annotations', []):
        if 'point' in ann and ann.get('category_id') in cat2label \
                and not ann.get('ignore', False):
            anns_by_img.setdefault(ann['image_id'], []).append(ann)
    out_anns, n_empty = [], 0
    bar: Optional[ProgressBar] = ProgressBar(len(
        src['images'])) if progress else None
    for img in src['images']:
        anns = anns_by_img.get(img['id'], [])
        if anns:
            seg_map = _read_seg_map(seg_dir, img, seg_suffix, points_json,
                                    len(cat2label))
            points = np.array([a['point'] for a in anns], dtype=np.float32)
            labels = np.array([cat2label[a['category_id']] for a in anns])
            res = nearest_point_masks(seg_map, points, labels, len(cat2label))
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
    print_log(
        f'nearest-point baseline: {len(out_anns)} masks written to '
        f'{out_file} ({n_empty} empty masks dropped)',
        logger='current')
    return out_file


def _read_seg_map(seg_dir: str, img: dict, seg_suffix: str, source: str,
                  num_classes: int) -> np.ndarray:
    """The (H, W) pseudo-map of one json image entry, size and values
    (``0..num_classes``, 255) checked."""
    stem = osp.splitext(img['file_name'])[0]
    seg_path = osp.join(seg_dir, stem + seg_suffix)
    where = f'{source}: image id {img["id"]} ({img["file_name"]!r})'
    if not osp.isfile(seg_path):
        raise FileNotFoundError(
            f'{where}: semantic pseudo-map {seg_path} does not exist. Fix: '
            'create it, or set data_prefix["seg"] / seg_map_suffix of the '
            'config to the pseudo-map folder and suffix.')
    try:
        with Image.open(seg_path) as pil:
            seg_map = np.array(pil)
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
    values = np.unique(seg_map)
    bad = values[(values > num_classes) & (values != 255)]
    if bad.size:
        raise ValueError(
            f'{where}: semantic pseudo-map {seg_path} holds values '
            f'{bad.tolist()[:10]}; allowed are 0 (background), '
            f'1..{num_classes} (class + 1) and 255 (ignore). Fix the map or '
            'the config classes.')
    return seg_map
