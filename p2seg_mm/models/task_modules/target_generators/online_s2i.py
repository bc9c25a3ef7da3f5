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
from typing import Tuple

import torch
from torch import Tensor

from mmdet.registry import TASK_UTILS
from ...utils.point_grouping import (check_points_and_labels,
                                     group_class_pixels, pixel_centre_xy)

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
            cls_idx = torch.nonzero(labels == cls, as_tuple=True)[0]
            ii, jj, nearest = group_class_pixels(seg_map == cls + 1,
                                                 offset_pred, points[cls_idx])
            if ii.numel() == 0:
                continue
            nearest = cls_idx[nearest]
            delta = points[nearest] - pixel_centre_xy(ii, jj)
            offset_target[:, ii, jj] = delta.t().to(dtype)
            weight[0, ii, jj] = 1
            instance_ids[ii, jj] = nearest + 1
        return offset_target, weight, instance_ids

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}()'
