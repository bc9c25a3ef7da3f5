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
"""
from typing import Dict

import numpy as np
import torch

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
