# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Instance decoding from semantic probabilities + offsets (docs/method.md §6).

Pure tensor functions, one image at a time. Conventions (docs/design.md):
points are ``(x, y)`` continuous, pixel ``(i, j)`` has its centre at
``(j + 0.5, i + 0.5)``; offsets are ``(dx, dy)`` from the pixel centre to
the instance point; ``sem_prob`` has C + 1 channels, channel 0 =
background, channel ``c + 1`` = class ``c``.
"""
from typing import Dict, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..task_modules.geodesic_grouping import (DEFAULT_EDGE_WEIGHT,
                                               geodesic_point_labels)
from ..utils.point_grouping import (check_points_and_labels,
                                    group_class_pixels, pixel_centre_xy)

#: How point decoding splits a class's foreground between its points.
GROUPINGS = ('offset', 'geodesic')


def _check_maps(sem_prob: Tensor, offset: Tensor) -> None:
    if sem_prob.ndim != 3 or sem_prob.shape[0] < 1:
        raise ValueError('sem_prob must have shape (C+1, H, W), got '
                         f'{tuple(sem_prob.shape)}.')
    if offset.shape != (2, ) + tuple(sem_prob.shape[1:]):
        raise ValueError(f'offset must have shape (2, H, W) = (2, '
                         f'{tuple(sem_prob.shape[1:])}), got '
                         f'{tuple(offset.shape)}.')


@torch.no_grad()
def decode_instances_with_points(
        sem_prob: Tensor,
        offset: Tensor,
        points: Tensor,
        labels: Tensor,
        img_labels: Optional[Tensor] = None,
        fallback_half_size: int = 32,
        fallback_score: float = 0.5,
        group_in_components: bool = False,
        grouping: str = 'offset',
        edge: Optional[np.ndarray] = None,
        edge_weight: float = DEFAULT_EDGE_WEIGHT) -> Dict[str, Tensor]:
    """Point-guided decoding: exactly one mask per point (docs/method.md §6.3).

    Foreground channels of classes not in ``img_labels`` are zeroed, then
    ``sem = argmax``. For each class ``c`` that wins the argmax somewhere
    and has points, every pixel with ``sem == c + 1`` is moved by its offset
    and assigned to the nearest point of class ``c`` (ties go to the earlier
    point). The mask of point ``k`` is its group; its score is the mean of
    the cleaned ``sem_prob[c + 1]`` inside the mask.

    Fallback: a point whose mask is empty (its class lost the argmax around
    it) gets the square of pixels with rows ``[floor(y) - h, floor(y) + h)``
    and columns ``[floor(x) - h, floor(x) + h)``, clipped to the image, with
    score ``fallback_score`` (``h = fallback_half_size``; the release uses
    32, older runs 16). With ``fallback_half_size=0`` the empty mask is kept
    with score 0. Unlike the release (which compares x and y coordinates of
    predictions), the fallback is decided per point by its empty mask.

    Args:
        sem_prob (Tensor): Shape (C+1, H, W), semantic probabilities.
        offset (Tensor): Shape (2, H, W), (dx, dy) offsets in pixels.
        points (Tensor): Shape (K, 2), (x, y) points inside the image.
        labels (Tensor): Shape (K,), 0-based classes of the points.
        img_labels (Tensor, optional): 0-based image-level classes. Defaults
            to None (the classes of ``labels``).
        fallback_half_size (int): Half side of fallback squares in pixels.
            Defaults to 32.
        fallback_score (float): Score of fallback masks. Defaults to 0.5.
        group_in_components (bool): Not in the paper. Group the pixels of a
            connected component of ``sem == c + 1`` that holds points of
            class c among those points only (offsets then only split
            touching objects, they cannot move pixels into another blob);
            components without a point are grouped among all points of
            their class. Defaults to False (the method).
        grouping (str): ``'offset'`` (the method, above) or ``'geodesic'``
            (not in the paper, docs/method.md §6.6): the pixels of
            ``sem == c + 1`` go to the point of class c with the shortest
            path to them inside that foreground, steps across image edges
            costing more (``task_modules/geodesic_grouping.py``); pixels no
            point reaches (components without a point on them) keep their
            offset grouping. Defaults to 'offset'.
        edge (np.ndarray, optional): (H, W) edge strength of the image
            (``image_edge_cost``), needed by ``'geodesic'``. Defaults to
            None.
        edge_weight (float): Edge weight of ``'geodesic'``. Defaults to
            30.0.

    Returns:
        dict[str, Tensor]: ``masks`` (K, H, W) bool, ``scores`` (K,) float32
        and ``labels`` (K,) long, in the order of the input points.
    """
    _check_maps(sem_prob, offset)
    if grouping not in GROUPINGS:
        raise ValueError(f'grouping must be one of {GROUPINGS}, got '
                         f'{grouping!r}.')
    if grouping == 'geodesic' and (edge is None or tuple(
            np.shape(edge)) != tuple(sem_prob.shape[-2:])):
        raise ValueError("grouping='geodesic' needs the image's edge map "
                         f'of the map size {tuple(sem_prob.shape[-2:])}.')
    num_fg = sem_prob.shape[0] - 1
    _, height, width = sem_prob.shape
    device = sem_prob.device
    check_points_and_labels(points, labels)
    labels = labels.to(device=device, dtype=torch.long)
    points = points.to(device=device, dtype=torch.float32)
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_fg):
        raise ValueError(f'point labels must lie in [0, {num_fg}), got '
                         f'{labels.unique().tolist()}.')
    if img_labels is None:
        img_labels = labels
    img_labels = torch.as_tensor(img_labels, device=device).long().view(-1)
    if img_labels.numel() and (img_labels.min() < 0
                               or img_labels.max() >= num_fg):
        raise ValueError(f'img_labels must lie in [0, {num_fg}), got '
                         f'{img_labels.unique().tolist()}.')
    keep = torch.zeros(num_fg + 1, dtype=torch.bool, device=device)
    keep[0] = True
    keep[img_labels + 1] = True
    prob = sem_prob.float() * keep[:, None, None]
    sem = prob.max(dim=0).indices  # first max on ties; faster than argmax

    num_points = points.shape[0]
    masks = torch.zeros((num_points, height, width),
                        dtype=torch.bool,
                        device=device)
    scores = torch.zeros(num_points, dtype=torch.float32, device=device)
    for cls in labels.unique().tolist():
        cls_idx = torch.nonzero(labels == cls, as_tuple=True)[0]
        ii, jj, nearest = group_class_pixels(sem == cls + 1, offset,
                                             points[cls_idx],
                                             group_in_components)
        if ii.numel() == 0:
            continue
        if grouping == 'geodesic':
            owner_map = geodesic_point_labels(
                (sem == cls + 1).cpu().numpy(), points[cls_idx].cpu().numpy(),
                edge, edge_weight)
            geo = torch.from_numpy(owner_map[ii.cpu().numpy(),
                                             jj.cpu().numpy()]).to(device)
            nearest = torch.where(geo >= 0, geo, nearest)
        owner = cls_idx[nearest]
        masks[owner, ii, jj] = True
        values = prob[cls + 1, ii, jj]
        prob_sum = values.new_zeros(num_points).index_add_(0, owner, values)
        count = torch.bincount(owner, minlength=num_points).float()
        filled = count > 0
        scores[filled] = prob_sum[filled] / count[filled]

    if fallback_half_size > 0:
        _fill_fallback_squares(masks, scores, points, int(fallback_half_size),
                               fallback_score)
    return dict(masks=masks, scores=scores, labels=labels)


def _fill_fallback_squares(masks: Tensor, scores: Tensor, points: Tensor,
                           half: int, score: float) -> None:
    """Give every empty mask the (2 half)^2 square around its point."""
    empty = ~masks.flatten(1).any(dim=1)
    rows = torch.arange(masks.shape[1], device=masks.device)
    cols = torch.arange(masks.shape[2], device=masks.device)
    for k in torch.nonzero(empty, as_tuple=True)[0].tolist():
        row = int(torch.floor(points[k, 1]))
        col = int(torch.floor(points[k, 0]))
        in_rows = (rows >= row - half) & (rows < row + half)
        in_cols = (cols >= col - half) & (cols < col + half)
        masks[k] = in_rows[:, None] & in_cols[None, :]
        scores[k] = score if masks[k].any() else 0.


def _find_peaks(heat: Tensor, fg: Tensor, threshold: float, nms_kernel: int,
                top_k: int):
    """Max-pool NMS peaks of one heatmap channel inside ``fg``."""
    pooled = F.max_pool2d(
        heat[None, None], nms_kernel, stride=1, padding=nms_kernel // 2)[0, 0]
    peaks = (heat == pooled) & (heat > threshold) & fg
    ii, jj = torch.nonzero(peaks, as_tuple=True)
    values = heat[ii, jj]
    if values.numel() > top_k:
        values, order = values.topk(top_k)
        ii, jj = ii[order], jj[order]
    return pixel_centre_xy(ii, jj), values


@torch.no_grad()
def decode_instances_with_centers(sem_prob: Tensor,
                                  center: Tensor,
                                  offset: Tensor,
                                  threshold: float = 0.1,
                                  nms_kernel: int = 7,
                                  top_k: int = 200,
                                  min_area: int = 0) -> Dict[str, Tensor]:
    """Point-free decoding from centre peaks (docs/method.md §6.5, simplified).

    For each class ``c`` that wins the argmax of ``sem_prob`` somewhere:
    peaks of ``center[c]`` (equal to their ``nms_kernel`` max-pool, above
    ``threshold``, on pixels with ``sem == c + 1``, at most ``top_k``) are
    instance centres (at their pixel centres); every pixel with
    ``sem == c + 1`` is moved by its offset and assigned to the nearest
    peak. Masks with fewer than ``min_area`` pixels (and empty masks) are
    dropped. Score = peak value x mean ``sem_prob[c + 1]`` in the mask.
    Results are sorted by decreasing score. The release's clustered-centre
    merging and per-component processing are not reproduced.

    Args:
        sem_prob (Tensor): Shape (C+1, H, W), semantic probabilities.
        center (Tensor): Shape (C, H, W), centre heatmaps.
        offset (Tensor): Shape (2, H, W), (dx, dy) offsets in pixels.
        threshold (float): Minimum peak value (exclusive). Defaults to 0.1.
        nms_kernel (int): Odd max-pool window of the NMS. Defaults to 7.
        top_k (int): Maximum peaks per class. Defaults to 200.
        min_area (int): Minimum mask area in pixels. Defaults to 0.

    Returns:
        dict[str, Tensor]: ``masks`` (N, H, W) bool, ``scores`` (N,) float32,
        ``labels`` (N,) long; N may be 0.
    """
    _check_maps(sem_prob, offset)
    if center.shape != (sem_prob.shape[0] - 1, ) + tuple(sem_prob.shape[1:]):
        raise ValueError(f'center must have shape (C, H, W) matching '
                         f'sem_prob {tuple(sem_prob.shape)}, got '
                         f'{tuple(center.shape)}.')
    if nms_kernel < 1 or nms_kernel % 2 == 0:
        raise ValueError(f'nms_kernel must be odd, got {nms_kernel}.')
    _, height, width = sem_prob.shape
    device = sem_prob.device
    prob = sem_prob.float()
    sem = prob.max(dim=0).indices  # first max on ties; faster than argmax
    all_masks, all_scores, all_labels = [], [], []
    for value in sem.unique().tolist():
        if value == 0:
            continue
        cls = value - 1
        fg = sem == value
        peaks, peak_values = _find_peaks(center[cls].float(), fg, threshold,
                                         nms_kernel, top_k)
        if peaks.shape[0] == 0:
            continue
        ii, jj, nearest = group_class_pixels(sem == cls + 1, offset, peaks)
        masks = torch.zeros((peaks.shape[0], height, width),
                            dtype=torch.bool,
                            device=device)
        masks[nearest, ii, jj] = True
        area = torch.bincount(nearest, minlength=peaks.shape[0])
        values = prob[value, ii, jj]
        prob_sum = values.new_zeros(len(peaks)).index_add_(0, nearest, values)
        keep = (area >= min_area) & (area > 0)
        mean_prob = prob_sum[keep] / area[keep].float()
        all_masks.append(masks[keep])
        all_scores.append(peak_values[keep] * mean_prob)
        all_labels.append(torch.full_like(mean_prob, cls, dtype=torch.long))
    if not all_masks:
        return dict(
            masks=torch.zeros((0, height, width),
                              dtype=torch.bool,
                              device=device),
            scores=torch.zeros(0, dtype=torch.float32, device=device),
            labels=torch.zeros(0, dtype=torch.long, device=device))
    scores = torch.cat(all_scores)
    order = scores.argsort(descending=True, stable=True)
    return dict(
        masks=torch.cat(all_masks)[order],
        scores=scores[order],
        labels=torch.cat(all_labels)[order])
