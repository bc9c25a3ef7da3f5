# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Centre + offset head and its S2I losses (docs/method.md §2, §3, §5).

Targets:

- static centre heatmap / offsets / weights (docs/method.md §3.2) depend only
  on the annotations, so ``GenerateS2ITargets`` makes them in the data pipeline
  (``gt_s2i``);
- online offsets (docs/method.md §3.3) depend on the network's own offsets, so
  the detector makes them in ``loss`` with the ``OnlineS2ITarget`` TASK_UTILS
  generator and passes them to :meth:`P2SegCenterOffsetHead.loss_offset`.

Offsets are ``(dx, dy)`` in input-image pixels (channel 0 = x).
"""
from typing import Sequence, Tuple, Union

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmdet.registry import MODELS
from mmdet.utils import OptMultiConfig
from .semantic_head import _single_feature


def weighted_dense_loss_single(error: Tensor, weight: Tensor,
                               anchor: Tensor) -> Tensor:
    """Sum of ``weight * error`` over channels and pixels / #pixels with w>0.

    Args:
        error (Tensor): (C, H, W) per-channel error.
        weight (Tensor): (1, H, W) pixel weight, broadcast over channels.
        anchor (Tensor): Prediction used to return a graph-connected zero
            when no pixel has weight.

    Returns:
        Tensor: Scalar.
    """
    num = (weight > 0).sum()
    if num == 0:
        return anchor.sum() * 0
    return (weight * error).sum() / num


@MODELS.register_module()
class P2SegCenterOffsetHead(BaseModule):
    """Two branches (conv3x3 -> ReLU -> conv1x1): centre (C) and offset (2).

    Implementation of the ``center`` / ``offset`` heads of
    `P2Seg <https://arxiv.org/abs/2401.09709>`_.

    Args:
        num_classes (int): Foreground classes C (centre channels).
        in_channels (int): Input channels. Defaults to 256.
        feat_channels (int): Hidden channels. Defaults to 256.
        loss_center_weight (float): 0 for VOC, 200 for COCO
            (docs/method.md §5). Defaults to 0.0.
        loss_offset_static_weight (float): Defaults to 0.005
            (0.5 * offset_weight 0.01).
        loss_offset_online_weight (float): Defaults to 0.005.
        init_cfg (dict, optional): Defaults to N(0, 0.001^2), bias 0.
    """

    def __init__(
        self,
        num_classes: int,
        in_channels: int = 256,
        feat_channels: int = 256,
        loss_center_weight: float = 0.0,
        loss_offset_static_weight: float = 0.005,
        loss_offset_online_weight: float = 0.005,
        init_cfg: OptMultiConfig = dict(
            type='Normal', layer='Conv2d', std=0.001, bias=0)
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        self.num_classes = num_classes
        self.loss_center_weight = loss_center_weight
        self.loss_offset_static_weight = loss_offset_static_weight
        self.loss_offset_online_weight = loss_offset_online_weight
        self.center_branch = nn.Sequential(
            nn.Conv2d(in_channels, feat_channels, 3, padding=1),
            nn.ReLU(inplace=True), nn.Conv2d(feat_channels, num_classes, 1))
        self.offset_branch = nn.Sequential(
            nn.Conv2d(in_channels, feat_channels, 3, padding=1),
            nn.ReLU(inplace=True), nn.Conv2d(feat_channels, 2, 1))

    def forward(self, x: Union[Tensor,
                               Sequence[Tensor]]) -> Tuple[Tensor, Tensor]:
        """(B, in_channels, h, w) -> (center (B, C, h, w), offset (B, 2, h,
        w)); offsets (dx, dy) in input pixels."""
        x = _single_feature(x)
        return self.center_branch(x), self.offset_branch(x)

    @staticmethod
    def _check(pred: Tensor, target: Tensor, weight: Tensor,
               what: str) -> None:
        if pred.shape != target.shape or weight.shape[0] != pred.shape[0] \
                or weight.shape[-2:] != pred.shape[-2:] \
                or weight.shape[1] != 1:
            raise ValueError(
                f'{what}: prediction {tuple(pred.shape)}, target '
                f'{tuple(target.shape)} and weight {tuple(weight.shape)} '
                'must be (B, C, H, W), (B, C, H, W) and (B, 1, H, W).')

    def loss_center(self, center_pred: Tensor, center_target: Tensor,
                    weight: Tensor) -> Tensor:
        """Weighted MSE of the centre heatmaps, per image, batch mean.

        Args:
            center_pred (Tensor): (B, C, H, W) predicted heatmaps.
            center_target (Tensor): (B, C, H, W) Gaussian targets.
            weight (Tensor): (B, 1, H, W) static offset weight W1.

        Returns:
            Tensor: ``loss_center_weight * mean_b(sum W (Z-G)^2 / #W>0)``.
        """
        self._check(center_pred, center_target, weight, 'loss_center')
        losses = [
            weighted_dense_loss_single((p - t)**2, w, p)
            for p, t, w in zip(center_pred, center_target, weight)
        ]
        return self.loss_center_weight * torch.stack(losses).mean()

    def loss_offset(self,
                    offset_pred: Tensor,
                    offset_target: Tensor,
                    weight: Tensor,
                    online: bool = False) -> Tensor:
        """Weighted L1 of the offsets, per image, batch mean.

        Args:
            offset_pred (Tensor): (B, 2, H, W) predicted (dx, dy).
            offset_target (Tensor): (B, 2, H, W) target (dx, dy).
            weight (Tensor): (B, 1, H, W) pixel weights.
            online (bool): Use the online (S2I) weight instead of the static
                one. Defaults to False.

        Returns:
            Tensor: ``weight * mean_b(sum W |dO| / #W>0)`` (both channels).
        """
        self._check(offset_pred, offset_target, weight, 'loss_offset')
        losses = [
            weighted_dense_loss_single((p - t).abs(), w, p)
            for p, t, w in zip(offset_pred, offset_target, weight)
        ]
        coef = self.loss_offset_online_weight if online else \
            self.loss_offset_static_weight
        return coef * torch.stack(losses).mean()
