# Copyright (c) p2seg_mm contributors. All rights reserved.
"""The one S2I grouping of P2Seg: pixel centre + offset -> nearest point.

Used by the online S2I targets of training (docs/method.md §3.3), by point
and centre decoding (§6.3, §6.5) and, with zero offsets, by the
nearest-point baseline. Conventions: points are ``(x, y)`` in continuous
pixel coordinates, pixel ``(i, j)`` covers ``[j, j+1) x [i, i+1)`` and has
its centre at ``(j + 0.5, i + 0.5)``; offsets are ``(dx, dy)`` (channel 0 =
x) in pixels.
"""
from typing import Optional, Tuple

import numpy as np
import torch
from scipy import ndimage
from torch import Tensor

# Points compared per pass in ``nearest_point_index``: bounds the memory of
# the (M, block) distance matrix.
_POINT_BLOCK = 16


def pixel_centres(height: int,
                  width: int,
                  device: Optional[torch.device] = None) -> Tensor:
    """Centres of all pixels.

    Args:
        height (int): Image height H.
        width (int): Image width W.
        device (torch.device, optional): Device of the result.
            Defaults to None (CPU).

    Returns:
        Tensor: Shape (2, H, W), float32, channel 0 = x = j + 0.5,
        channel 1 = y = i + 0.5.
    """
    ys = torch.arange(height, device=device, dtype=torch.float32) + 0.5
    xs = torch.arange(width, device=device, dtype=torch.float32) + 0.5
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing='ij')
    return torch.stack([grid_x, grid_y])


def nearest_point_index(xy: Tensor, points: Tensor) -> Tensor:
    """Index of the nearest point (Euclidean) for each query position.

    Squared distances are computed term by term (no ``cdist`` matmul trick),
    so exact ties resolve deterministically to the lowest point index.

    Args:
        xy (Tensor): Shape (M, 2), (x, y) query positions.
        points (Tensor): Shape (K, 2), (x, y) points, K >= 1.

    Returns:
        Tensor: Shape (M,), long, indices in [0, K).
    """
    if points.ndim != 2 or points.shape[1] != 2 or points.shape[0] == 0:
        raise ValueError('nearest_point_index needs points of shape (K, 2) '
                         f'with K >= 1, got {tuple(points.shape)}.')
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise ValueError(f'xy must have shape (M, 2), got {tuple(xy.shape)}.')
    xy = xy.float()
    points = points.to(device=xy.device, dtype=torch.float32)
    best_dist = xy.new_full((xy.shape[0], ), float('inf'))
    best_idx = torch.zeros(xy.shape[0], dtype=torch.long, device=xy.device)
    for start in range(0, points.shape[0], _POINT_BLOCK):
        block = points[start:start + _POINT_BLOCK]
        dist = ((xy[:, None, 0] - block[None, :, 0])**2 +
                (xy[:, None, 1] - block[None, :, 1])**2)
        block_dist, block_idx = dist.min(dim=1)
        # Strict '<' keeps the earlier block on ties (argmin semantics).
        better = block_dist < best_dist
        best_dist = torch.where(better, block_dist, best_dist)
        best_idx = torch.where(better, block_idx + start, best_idx)
    return best_idx


def check_points_and_labels(points: Tensor, labels: Tensor) -> None:
    """Raise a ValueError unless points is (K, 2) and labels is (K,)."""
    shape_ok = points.ndim == 2 and points.shape[1] == 2
    if not shape_ok or tuple(labels.shape) != tuple(points.shape[:1]):
        raise ValueError('points must have shape (K, 2) and labels (K,), '
                         f'got {tuple(points.shape)} and '
                         f'{tuple(labels.shape)}.')


def pixel_centre_xy(rows: Tensor, cols: Tensor) -> Tensor:
    """Centres ``(j + 0.5, i + 0.5)`` of the pixels ``(rows, cols)``.

    Args:
        rows (Tensor): Shape (M,), row indices i.
        cols (Tensor): Shape (M,), column indices j.

    Returns:
        Tensor: Shape (M, 2), float32 (x, y).
    """
    return torch.stack([cols.float() + 0.5, rows.float() + 0.5], dim=1)


@torch.no_grad()
def group_class_pixels(
        fg: Tensor,
        offset: Tensor,
        points: Tensor,
        in_components: bool = False) -> Tuple[Tensor, Tensor, Tensor]:
    """Each pixel of ``fg``, moved by its offset, to its nearest point.

    Args:
        fg (Tensor): Shape (H, W), bool pixels of one class.
        offset (Tensor): Shape (2, H, W), (dx, dy) in pixels.
        points (Tensor): Shape (K, 2), (x, y) points of that class, K >= 1.
        in_components (bool): A pixel of a connected component
            (8-connected) of ``fg`` that holds points is grouped among those
            points only; pixels of components without a point among all
            (not in the paper). Defaults to False.

    Returns:
        tuple[Tensor, Tensor, Tensor]: Rows (M,), columns (M,) of the
        pixels of ``fg`` and the index (M,) in [0, K) of their point.
    """
    ii, jj = torch.nonzero(fg, as_tuple=True)
    moved = pixel_centre_xy(ii, jj) + offset[:, ii, jj].t().float()
    nearest = nearest_point_index(moved, points)
    if in_components and ii.numel():
        comp = torch.from_numpy(
            ndimage.label(fg.cpu().numpy(), structure=np.ones((3, 3)))[0]).to(
                fg.device)
        rows = points[:, 1].floor().long().clamp(0, fg.shape[0] - 1)
        cols = points[:, 0].floor().long().clamp(0, fg.shape[1] - 1)
        point_comp = comp[rows, cols]
        pixel_comp = comp[ii, jj]
        for k in point_comp.unique().tolist():
            if k == 0:  # points on background pixels hold no component
                continue
            own = torch.nonzero(point_comp == k, as_tuple=True)[0]
            sel = pixel_comp == k
            nearest[sel] = own[nearest_point_index(moved[sel], points[own])]
    return ii, jj, nearest
