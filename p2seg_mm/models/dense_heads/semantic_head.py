# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Semantic head and its hard-pixel-mining loss (docs/method.md §2, §5).

Targets: the semantic pseudo-map (``gt_sem_seg``, 0 = background, c + 1 =
class c, 255 = ignore) is an input of the data pipeline; no target is made
here. The loss takes *log-probabilities* (the I2S-refined map, or
``log_softmax`` of the logits when I2S is off) at the input resolution.
"""
from typing import Dict, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmdet.registry import MODELS
from mmdet.utils import OptMultiConfig


def _single_feature(x: Union[Tensor, Sequence[Tensor]]) -> Tensor:
    """Accept a neck output tuple or a bare tensor."""
    if isinstance(x, Tensor):
        return x
    if len(x) != 1:
        raise ValueError('P2Seg heads expect one stride-4 feature map, got '
                         f'{len(x)} levels; use a neck that fuses them.')
    return x[0]


def hard_pixel_ce_single(log_probs: Tensor,
                         target: Tensor,
                         top_k_percent: float = 0.2,
                         ignore_index: int = 255,
                         class_weight: Optional[Tensor] = None) -> Tensor:
    """DeepLab hard-pixel-mining cross-entropy of one image.

    Ignored pixels contribute 0 but count in the pixel total, as in the
    release (docs/method.md §5). With ``class_weight`` each pixel's loss is
    scaled by the weight of its target class before the hardest are selected.

    Args:
        log_probs (Tensor): (C+1, H, W) log-probabilities.
        target (Tensor): (H, W) long, values in [0, C] or ``ignore_index``.
        top_k_percent (float): Fraction of the H*W pixels kept (the largest
            losses). Defaults to 0.2.
        ignore_index (int): Ignored label. Defaults to 255.
        class_weight (Tensor, optional): (C+1, ) per-class pixel weights.

    Returns:
        Tensor: Scalar mean of the ``floor(top_k_percent * H * W)`` largest
        per-pixel (weighted) losses (all pixels if that is 0).
    """
    nll = F.nll_loss(
        log_probs[None],
        target[None].long(),
        weight=class_weight,
        ignore_index=ignore_index,
        reduction='none').flatten()
    k = int(top_k_percent * nll.numel())
    if k <= 0 or top_k_percent >= 1:
        return nll.mean()
    return nll.topk(k, sorted=False).values.mean()


@MODELS.register_module()
class P2SegSemanticHead(BaseModule):
    """Semantic logits head (conv3x3 -> ReLU -> conv1x1 to C + 1).

    Implementation of the ``seg`` head of
    `P2Seg <https://arxiv.org/abs/2401.09709>`_.

    Args:
        num_classes (int): Foreground classes C; the head has C + 1 outputs,
            channel 0 = background.
        in_channels (int): Input channels. Defaults to 256.
        feat_channels (int): Hidden channels. Defaults to 256.
        top_k_percent (float): Hard-pixel fraction of the loss.
            Defaults to 0.2.
        ignore_index (int): Ignored label. Defaults to 255.
        loss_weight (float): Weight of ``loss_sem_seg``. Defaults to 1.0.
        class_weight (Sequence[float], optional): C + 1 per-class pixel
            weights of the CE (background first), as mmseg's
            ``class_weight``; for classes with few, small objects. None
            (default) = all 1, the method.
        init_cfg (dict, optional): Defaults to N(0, 0.001^2), bias 0
            (docs/method.md §2.1).
    """

    def __init__(
        self,
        num_classes: int,
        in_channels: int = 256,
        feat_channels: int = 256,
        top_k_percent: float = 0.2,
        ignore_index: int = 255,
        loss_weight: float = 1.0,
        class_weight: Optional[Sequence[float]] = None,
        init_cfg: OptMultiConfig = dict(
            type='Normal', layer='Conv2d', std=0.001, bias=0)
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        if class_weight is not None:
            if len(class_weight) != num_classes + 1 or \
                    min(class_weight) < 0:
                raise ValueError(
                    f'class_weight needs {num_classes + 1} non-negative '
                    f'values (background first), got {list(class_weight)}.')
            class_weight = torch.tensor(
                [float(w) for w in class_weight], dtype=torch.float32)
        # a buffer follows .to(device) and stays out of the checkpoint
        self.register_buffer('class_weight', class_weight, persistent=False)
        self.num_classes = num_classes
        self.top_k_percent = top_k_percent
        self.ignore_index = ignore_index
        self.loss_weight = loss_weight
        self.conv = nn.Conv2d(in_channels, feat_channels, 3, padding=1)
        self.relu = nn.ReLU(inplace=True)
        self.cls = nn.Conv2d(feat_channels, num_classes + 1, 1)

    def forward(self, x: Union[Tensor, Sequence[Tensor]]) -> Tensor:
        """(B, in_channels, h, w) (or a one-tuple) -> (B, C+1, h, w)."""
        return self.cls(self.relu(self.conv(_single_feature(x))))

    def loss_by_feat(self, log_probs: Tensor,
                     gt_sem_seg: Tensor) -> Dict[str, Tensor]:
        """Per-image hard-pixel CE averaged over the batch.

        Args:
            log_probs (Tensor): (B, C+1, H, W) log-probabilities at the
                resolution of ``gt_sem_seg``.
            gt_sem_seg (Tensor): (B, H, W) long pseudo-map.

        Returns:
            dict[str, Tensor]: ``loss_sem_seg``.
        """
        if log_probs.shape[-2:] != gt_sem_seg.shape[-2:] or \
                log_probs.shape[0] != gt_sem_seg.shape[0]:
            raise ValueError(
                f'log_probs {tuple(log_probs.shape)} and gt_sem_seg '
                f'{tuple(gt_sem_seg.shape)} must share batch and H, W.')
        losses = [
            hard_pixel_ce_single(
                lp, gt, self.top_k_percent, self.ignore_index,
                None if self.class_weight is None else
                self.class_weight.to(lp.dtype))
            for lp, gt in zip(log_probs, gt_sem_seg)
        ]
        return dict(loss_sem_seg=self.loss_weight * torch.stack(losses).mean())
