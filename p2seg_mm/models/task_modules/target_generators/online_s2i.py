# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Online S2I targets (docs/method.md §3.3), made in every training step.

Conventions (docs/design.md): points are ``(x, y)`` in continuous pixel
coordinates, pixel ``(i, j)`` has its centre at ``(j + 0.5, i + 0.5)``;
offsets are ``(dx, dy)`` (channel 0 = x, channel 1 = y) from the pixel
centre to the annotated point; semantic map ``0`` background, ``c + 1``
class ``c``, ``255`` ignore.

These targets need the network's own offset predictions, so they are built
inside the head's loss from this ``TASK_UTILS`` generator, without gradient.
"""
from typing import Optional, Tuple

import torch
from torch import Tensor

from mmdet.registry import TASK_UTILS

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


@torch.no_grad()
def group_pixels_to_points(offset: Tensor, points: Tensor) -> Tensor:
    """Group every pixel to its nearest point after moving it by offset.

    Args:
        offset (Tensor): Shape (2, H, W), (dx, dy) predicted offsets in
            pixels.
        points (Tensor): Shape (K, 2), (x, y) points, K >= 1.

    Returns:
        Tensor: Shape (H, W), long, index in [0, K) of the nearest point to
        ``pixel centre + offset``.
    """
    if offset.ndim != 3 or offset.shape[0] != 2:
        raise ValueError('offset must have shape (2, H, W), got '
                         f'{tuple(offset.shape)}.')
    _, height, width = offset.shape
    moved = pixel_centres(height, width, offset.device) + offset.float()
    index = nearest_point_index(moved.flatten(1).t(), points)
    return index.view(height, width)


@TASK_UTILS.register_module()
class OnlineS2ITarget:
    """Online S2I offset targets and instance ids from predicted offsets.

    Implementation of the online S2I refinement of `P2Seg
    <https://arxiv.org/abs/2401.09709>`_ (docs/method.md §3.3). For each class
    ``c`` with points, every pixel with ``seg_map == c + 1`` is moved by its
    predicted offset and assigned to the nearest point of class ``c``. Its
    offset target points from the pixel centre to that point (weight 1) and its
    instance id is ``1 + index of the point``. Background and ignore pixels get
    weight 0 and id 0. No minimum component size is applied.

    The single instance-id map replaces the release's per-instance mask that
    was overwritten by every instance (docs/method.md §0.1, §10.1 item 5).

    This target depends on the network's predictions, so it is built inside
    the head's loss (``TASK_UTILS.build(dict(type='OnlineS2ITarget'))``),
    without gradient.
    """

    @torch.no_grad()
    def __call__(self, offset_pred: Tensor, seg_map: Tensor, points: Tensor,
                 labels: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Compute the targets of one image.

        Args:
            offset_pred (Tensor): Shape (2, H, W), predicted (dx, dy) at full
                input resolution, in input pixels.
            seg_map (Tensor): Shape (H, W), long semantic map (0 bg,
                c + 1 class c, 255 ignore).
            points (Tensor): Shape (K, 2), (x, y) non-ignored points.
            labels (Tensor): Shape (K,), 0-based classes of the points.

        Returns:
            tuple[Tensor, Tensor, Tensor]: ``offset_target`` (2, H, W) and
            ``weight`` (1, H, W) in the dtype of ``offset_pred`` (float32
            if it is not floating), and ``instance_ids`` (H, W) long with
            0 = no instance and ``k + 1`` = point ``k``.
        """
        if offset_pred.ndim != 3 or offset_pred.shape[0] != 2:
            raise ValueError('offset_pred must have shape (2, H, W), got '
                             f'{tuple(offset_pred.shape)}.')
        if seg_map.shape != offset_pred.shape[1:]:
            raise ValueError(f'seg_map shape {tuple(seg_map.shape)} does not '
                             'match offset_pred spatial shape '
                             f'{tuple(offset_pred.shape[1:])}.')
        check_points_and_labels(points, labels)
        device = offset_pred.device
        dtype = offset_pred.dtype if offset_pred.is_floating_point() \
            else torch.float32
        height, width = seg_map.shape
        offset_target = torch.zeros((2, height, width),
                                    dtype=dtype,
                                    device=device)
        weight = torch.zeros((1, height, width), dtype=dtype, device=device)
        instance_ids = torch.zeros((height, width),
                                   dtype=torch.long,
                                   device=device)
        if points.shape[0] == 0:
            return offset_target, weight, instance_ids
        points = points.to(device=device, dtype=torch.float32)
        labels = labels.to(device=device, dtype=torch.long)
        seg_map = seg_map.to(device)
        for cls in labels.unique().tolist():
            ii, jj = torch.nonzero(seg_map == cls + 1, as_tuple=True)
            if ii.numel() == 0:
                continue
            cls_idx = torch.nonzero(labels == cls, as_tuple=True)[0]
            centres = torch.stack([jj.float() + 0.5, ii.float() + 0.5], dim=1)
            moved = centres + offset_pred[:, ii, jj].t().float()
            nearest = cls_idx[nearest_point_index(moved, points[cls_idx])]
            delta = points[nearest] - centres
            offset_target[:, ii, jj] = delta.t().to(dtype)
            weight[0, ii, jj] = 1
            instance_ids[ii, jj] = nearest + 1
        return offset_target, weight, instance_ids

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}()'
