# Copyright (c) p2seg_mm contributors. All rights reserved.
"""The "nearest point" pseudo-mask baseline.

Every pixel of the semantic pseudo-map's foreground of class ``c`` is given
to the nearest annotated point of class ``c`` (Euclidean distance from the
pixel centre, no learned offsets, no affinity): the point decoding of
``models/post_processing/point_decoding.py`` with a one-hot map and zero
offsets. It is what P2Seg must beat: the same inputs (points + pseudo-map)
without any learning. Scored next to the P2Seg pseudo-masks by
``benchmarks/bench_quality.py`` and ``tools/run_pipeline.py``, whose
``tools/export_nearest_point_baseline.py`` writes it for a points json.

``grouping='geodesic'`` (not in the paper, docs/method.md §3.5) cuts the same
foreground by the shortest path inside it that avoids image edges
(``models/task_modules/geodesic_grouping.py``): the no-learning row that
tells what the image-aware S2I targets give before any learning.
"""
from typing import Dict, Optional

import numpy as np
import torch

from ..models.post_processing.point_decoding import \
    decode_instances_with_points
from ..models.task_modules.geodesic_grouping import (DEFAULT_EDGE_WEIGHT,
                                                     image_edge_cost)

GROUPINGS = ('euclidean', 'geodesic')


def nearest_point_masks(seg_map: np.ndarray,
                        points: np.ndarray,
                        labels: np.ndarray,
                        num_classes: int,
                        fallback_half_size: int = 0,
                        fallback_score: float = 0.5,
                        grouping: str = 'euclidean',
                        image: Optional[np.ndarray] = None,
                        edge_weight: float = DEFAULT_EDGE_WEIGHT
                        ) -> Dict[str, np.ndarray]:
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
        grouping (str): ``'euclidean'`` (nearest point) or ``'geodesic'``
            (shortest path inside the class's foreground, steps across
            image edges cost more; foreground no point reaches goes to the
            nearest point). Defaults to 'euclidean'.
        image (np.ndarray, optional): (H, W, 3) 0-255 image, needed by
            ``'geodesic'``. Defaults to None.
        edge_weight (float): Edge weight of ``'geodesic'``. Defaults to
            ``DEFAULT_EDGE_WEIGHT``.

    Returns:
        dict: ``masks`` (K, H, W) bool and ``scores`` (K,) float (1.0 for a
        non-empty mask, 0.0 for an empty one, ``fallback_score`` for a
        fallback square).

    Raises:
        ValueError: Unknown ``grouping``, ``'geodesic'`` without an image
            of the map's size, labels not one per point in [0, C), or map
            values above ``num_classes``.
    """
    if grouping not in GROUPINGS:
        raise ValueError(f'grouping must be one of {GROUPINGS}, got '
                         f'{grouping!r}.')
    labels_arr = np.asarray(labels).reshape(-1)
    if len(labels_arr) != len(np.asarray(points).reshape(-1, 2)) or (
            len(labels_arr) and not (0 <= labels_arr.min()
                                     and labels_arr.max() < num_classes)):
        raise ValueError(
            f'got {len(np.asarray(points).reshape(-1, 2))} points and '
            f'labels {labels_arr.tolist()[:10]}: one 0-based label in '
            f'[0, {num_classes}) per point.')
    if grouping == 'geodesic' and (
            image is None or np.shape(image)[:2] != seg_map.shape):
        raise ValueError("grouping='geodesic' needs the image of the map's "
                         f'size {seg_map.shape}, got '
                         f'{None if image is None else np.shape(image)}.')
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
        fallback_score=fallback_score,
        # zero offsets: what no geodesic path reaches goes to the nearest
        # point
        grouping='offset' if grouping == 'euclidean' else 'geodesic',
        edge=None if image is None else image_edge_cost(image),
        edge_weight=edge_weight)
    return dict(masks=out['masks'].numpy(), scores=out['scores'].numpy())

