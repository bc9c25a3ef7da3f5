# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Affinity (I2S) head of P2Seg: embedding, affinity loss, random walk.

Targets (METHOD §4.2): the membership rows of T1 (pseudo-map classes) and T2
(online S2I instance ids) need the online S2I output, so the detector builds
them in ``loss`` with ``affinity_target.semantic_membership`` /
``instance_membership`` and passes them to :meth:`P2SegAffinityHead.loss`.
Targets are per image (METHOD §0.1); the N x N affinity is streamed block by
block (METHOD §0.5) unless ``blockwise=False``.
"""
import math
from typing import List, Sequence, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmdet.registry import MODELS
from mmdet.utils import OptMultiConfig
from ..layers.blockwise_affinity import (affinity_loss_blockwise,
                                         affinity_loss_dense,
                                         random_walk_blockwise,
                                         random_walk_dense)
from .semantic_head import _single_feature


@MODELS.register_module()
class P2SegAffinityHead(BaseModule):
    """Affinity embedding: one conv3x3 to D channels, no norm, no act.

    Implementation of the ``aff_conv`` branch of
    `P2Seg <https://arxiv.org/abs/2401.09709>`_.

    Args:
        in_channels (int): Input channels. Defaults to 256.
        embed_dims (int): Embedding size D. Defaults to 256.
        blockwise (bool): Stream the N x N affinity (True) or materialise it
            (dense reference). Defaults to True.
        block_size (int): Rows of the affinity per block. Defaults to 1024.
        loss_sem_weight (float): Weight of ``loss_affinity_sem`` (T1).
            Defaults to 0.5.
        loss_inst_weight (float): Weight of ``loss_affinity_inst`` (T2).
            Defaults to 0.5.
        eps (float): Added to the random-walk probabilities before the log.
            Defaults to 1e-6.
        pool (int): Average-pool the embedding (and the walked
            probabilities) by this factor before the N x N affinity; the
            walk's result is upsampled back bilinearly. 1 = the method
            (stride 4); 2 (stride 8, N / 4) only for cheap CPU demos: the
            detector's ``aff_stride`` must then be 8. Defaults to 1.
        init_cfg (dict, optional): Defaults to N(0, 0.001^2), bias 0.
    """

    def __init__(
        self,
        in_channels: int = 256,
        embed_dims: int = 256,
        blockwise: bool = True,
        block_size: int = 1024,
        loss_sem_weight: float = 0.5,
        loss_inst_weight: float = 0.5,
        eps: float = 1e-6,
        pool: int = 1,
        init_cfg: OptMultiConfig = dict(
            type='Normal', layer='Conv2d', std=0.001, bias=0)
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        self.embed_dims = embed_dims
        self.blockwise = blockwise
        self.block_size = block_size
        self.loss_sem_weight = loss_sem_weight
        self.loss_inst_weight = loss_inst_weight
        self.eps = eps
        if int(pool) < 1:
            raise ValueError(f'pool must be a positive int, got {pool}.')
        self.pool = int(pool)
        self.conv = nn.Conv2d(in_channels, embed_dims, 3, padding=1)

    def forward(self, x: Union[Tensor, Sequence[Tensor]]) -> Tensor:
        """(B, in_channels, h, w) -> embedding (B, D, h, w)."""
        return self.conv(_single_feature(x))

    def _pooled(self, x: Tensor) -> Tensor:
        """(B, C, h, w) -> (B, C, ceil(h / pool), ceil(w / pool))."""
        if self.pool == 1:
            return x
        return F.avg_pool2d(x, self.pool, self.pool, ceil_mode=True)

    def _affinity_loss_single(self, embed: Tensor,
                              membership: Tensor) -> Tensor:
        """Loss of one image; graph-connected 0 without a positive pair."""
        if membership.numel() == 0 or not bool((membership != 0).any()):
            # No positive pair: a negatives-only target would push every
            # affinity (also background-background) to 0, so skip it.
            return embed.sum() * 0
        if self.blockwise:
            return affinity_loss_blockwise(embed, membership.to(embed),
                                           self.block_size)
        return affinity_loss_dense(embed, membership.to(embed))

    def loss(self,
             embed: Tensor,
             memberships: Sequence[Tensor],
             kind: str = 'sem') -> Tensor:
        """Affinity loss, per image, averaged over the batch.

        Args:
            embed (Tensor): (B, D, h, w) embedding.
            memberships (Sequence[Tensor]): Per image (K_i, N) membership
                rows (classes for T1, instances for T2), row-major cells of
                the (pooled) embedding grid, N = ceil(h / pool) *
                ceil(w / pool).
            kind (str): ``'sem'`` (T1) or ``'inst'`` (T2), selects the loss
                weight. Defaults to 'sem'.

        Returns:
            Tensor: Weighted scalar loss.
        """
        if kind not in ('sem', 'inst'):
            raise ValueError(f"kind must be 'sem' or 'inst', got {kind!r}.")
        if len(memberships) != embed.shape[0]:
            raise ValueError(f'got {len(memberships)} membership matrices '
                             f'for a batch of {embed.shape[0]}.')
        flat = self._pooled(embed).flatten(2)
        for members in memberships:
            if members.shape[-1] != flat.shape[-1]:
                raise ValueError(
                    f'membership has {members.shape[-1]} cells but the '
                    f'affinity grid has {flat.shape[-1]} (pool={self.pool}'
                    '); pool the targets with aff_stride = 4 * pool.')
        losses = [
            self._affinity_loss_single(e, m)
            for e, m in zip(flat, memberships)
        ]
        weight = self.loss_sem_weight if kind == 'sem' else \
            self.loss_inst_weight
        return weight * torch.stack(losses).mean()

    def random_walk(self, embed: Tensor, prob: Tensor) -> Tensor:
        """``R = P Â^T`` for one image: (D, N), (K, N) -> (K, N)."""
        prob = prob.to(embed.dtype)
        if self.blockwise:
            return random_walk_blockwise(embed, prob, self.block_size)
        return random_walk_dense(embed, prob)

    def refine(self, sem_logits: Tensor, embed: Tensor,
               batch_channels: List[Tensor]) -> Tensor:
        """I2S refinement of the semantic map (METHOD §4.3, §0.1).

        Per image, ``P = softmax`` over the channels in ``batch_channels``
        (background 0 and c + 1 for each present class c), ``R`` the random
        walk of ``P``; ``log(R + eps)`` is written into those channels.

        Args:
            sem_logits (Tensor): (B, C+1, h, w) logits (or log-probs of a
                previous refinement, whose softmax is that refinement).
            embed (Tensor): (B, D, h, w) embedding, same h, w.
            batch_channels (list[Tensor]): Per image long channel indices.

        Returns:
            Tensor: (B, C+1, h, w) log-probabilities; absent channels get
            ``log(eps)`` and the result is renormalised (log-softmax) so that
            it is a proper log-distribution over all C + 1 channels.
        """
        if sem_logits.shape[0] != embed.shape[0] or \
                sem_logits.shape[-2:] != embed.shape[-2:]:
            raise ValueError(
                f'sem_logits {tuple(sem_logits.shape)} and embed '
                f'{tuple(embed.shape)} must share batch and h, w.')
        if len(batch_channels) != sem_logits.shape[0]:
            raise ValueError(f'got {len(batch_channels)} channel sets for a '
                             f'batch of {sem_logits.shape[0]}.')
        num_ch = sem_logits.shape[1]
        size = sem_logits.shape[-2:]
        outs = []
        for logits, emb, channels in zip(sem_logits, self._pooled(embed),
                                         batch_channels):
            channels = torch.as_tensor(
                channels, dtype=torch.long, device=logits.device)
            if channels.numel() == 0 or int(channels.min()) < 0 or \
                    int(channels.max()) >= num_ch:
                raise ValueError(f'refine channels must be a non-empty '
                                 f'subset of [0, {num_ch}), got '
                                 f'{channels.tolist()}.')
            prob = self._pooled(logits[channels].softmax(dim=0)[None])[0]
            walked = self.random_walk(emb.flatten(1), prob.flatten(1))
            walked = walked.view(prob.shape)
            if self.pool > 1:
                walked = F.interpolate(
                    walked[None],
                    size=size,
                    mode='bilinear',
                    align_corners=False)[0]
            out = logits.new_full(logits.shape, math.log(self.eps))
            out[channels] = torch.log(walked + self.eps).to(out.dtype)
            outs.append(out.log_softmax(dim=0))
        return torch.stack(outs)
