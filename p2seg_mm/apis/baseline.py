# Copyright (c) p2seg_mm contributors. All rights reserved.
"""The "nearest point" pseudo-mask baseline.

Every pixel of the semantic pseudo-map's foreground of class ``c`` is given
to the nearest annotated point of class ``c`` (Euclidean distance from the
pixel centre, no learned offsets, no affinity). It is what P2Seg must beat:
the same inputs (points + pseudo-map) without any learning.
"""
import json
import os.path as osp
from typing import Dict, Optional

import numpy as np
import torch
from mmengine.logging import print_log
from mmengine.utils import ProgressBar
from PIL import Image

from ..evaluation.metrics.pseudo_mask_dumper import mask_to_annotation
from ..utils.atomic_io import dump_json_atomic
from ..models.post_processing.point_decoding import \
    decode_instances_with_points


def nearest_point_masks(seg_map: np.ndarray, points: np.ndarray,
                        labels: np.ndarray,
                        num_classes: int) -> Dict[str, np.ndarray]:
    """One mask per point by nearest-point assignment on the pseudo-map.

    Args:
        seg_map (np.ndarray): Shape (H, W), 0 bg, c+1 class c, 255 ignore.
        points (np.ndarray): Shape (K, 2), (x, y) continuous coordinates.
        labels (np.ndarray): Shape (K,), 0-based classes.
        num_classes (int): Number of foreground classes C.

    Returns:
        dict: ``masks`` (K, H, W) bool and ``scores`` (K,) float (1.0 for a
        non-empty mask, 0.0 for an empty one).
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
        fallback_half_size=0)
    return dict(masks=out['masks'].numpy(), scores=out['scores'].numpy())


def export_nearest_point_baseline(points_json: str,
                                  seg_dir: str,
                                  out_file: str,
                                  seg_suffix: str = '.png',
                                  progress: bool = True) -> str:
    """Write the baseline's pseudo-masks for every image of a points json.

    Args:
        points_json (str): COCO json whose annotations carry ``point``.
        seg_dir (str): Folder of semantic pseudo-maps
            (``<file_name stem><seg_suffix>``).
        out_file (str): Output COCO instances json (written atomically).
        seg_suffix (str): Pseudo-map suffix. Defaults to '.png'.
        progress (bool): Show a progress bar. Defaults to True.

    Returns:
        str: ``out_file``.
    """
    with open(points_json) as f:
        src = json.load(f)
    cats = src.get('categories', [])
    cat2label = {cat['id']: i for i, cat in enumerate(cats)}
    anns_by_img: Dict[int, list] = {}
    for ann in src.get('annotations', []):
        anns_by_img.setdefault(ann['image_id'], []).append(ann)
    out_anns, n_empty = [], 0
    bar: Optional[ProgressBar] = ProgressBar(len(
        src['images'])) if progress else None
    for img in src['images']:
        anns = [a for a in anns_by_img.get(img['id'], []) if 'point' in a]
        stem = osp.splitext(img['file_name'])[0]
        seg_path = osp.join(seg_dir, stem + seg_suffix)
        if anns:
            if not osp.isfile(seg_path):
                raise FileNotFoundError(
                    f'pseudo-map {seg_path} of image {img["file_name"]} '
                    f'(id {img["id"]}) is missing: check the seg folder')
            seg_map = np.array(Image.open(seg_path))
            points = np.array([a['point'] for a in anns], dtype=np.float32)
            labels = np.array([cat2label[a['category_id']] for a in anns])
            res = nearest_point_masks(seg_map, points, labels, len(cats))
            for ann, mask, score in zip(anns, res['masks'], res['scores']):
                new = mask_to_annotation(mask, img['id'], ann['category_id'],
                                         float(score))
                if new is None:
                    n_empty += 1
                    continue
                new['point'] = [float(v) for v in ann['point']]
                new['id'] = len(out_anns) + 1
                out_anns.append(new)
        if bar is not None:
            bar.update()
    out = dict(images=src['images'], categories=cats, annotations=out_anns)
    dump_json_atomic(out, out_file)
    print_log(
        f'nearest-point baseline: {len(out_anns)} masks written to '
        f'{out_file} ({n_empty} empty masks dropped)',
        logger='current')
    return out_file
