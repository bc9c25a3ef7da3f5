# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Affinity (I2S) head of P2Seg: embedding, affinity loss, random walk.

Targets (docs/method.md §4.2): the membership rows of T1 (pseudo-map classes)
and T2 (online S2I instance ids) need the online S2I output, so the detector
builds them in ``loss`` with ``affinity_target.semantic_membership`` /
``instance_membership`` and passes them to :meth:`P2SegAffinityHead.loss`.
Targets are per image (docs/method.md §0.1); the N x N affinity is streamed
block by block (docs/method.md §0.5) unless ``blockwise=False``.
"""
import math
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmdet.registry import MODELS
from mmdet.utils import OptMultiConfig
from ..layers.affinity_reference import affinity_loss_dense, random_walk_dense
from ..layers.affinity_tiles import check_kind
from ..layers.blockwise_affinity_step import (affinity_loss_blockwise,
                                              affinity_step_blockwise,
                                              random_walk_blockwise)
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
            detector derives its target stride (4 x pool). Defaults to 1.
        walk_power (float): The random walk's transition is built from
            ``A ** walk_power`` (AffinityNet's beta, Ahn & Kwak 2018); the
            affinity losses keep A. 1 = the method. Not in the paper: with
            a walk over all N cells, objects of a few cells among
            thousands of background cells are averaged away even when
            their affinity to the background is only ~0.2; a power damps
            those weak affinities (docs/method.md, "I2S on small
            objects"). Defaults to 1.0.
        affinity (str): ``'sigmoid'``: ``A = sigmoid(E^T E)``, the method
            (docs/method.md §4.1); ``'gaussian'``: ``A = exp(-|e_i -
            e_j|^2)``, a distance-based affinity (not in the paper; AffinityNet
            uses exp of the L1 distance): A is 1 only for equal embeddings
            and cannot saturate at 1 between a large and a smaller embedding
            as the sigmoid of a dot product does (docs/method.md §4.6).
            Used by the losses and the walk alike. Defaults to 'sigmoid'.
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
        walk_power: float = 1.0,
        affinity: str = 'sigmoid',
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
        if not float(walk_power) > 0:
            raise ValueError(f'walk_power must be > 0, got {walk_power}.')
        self.walk_power = float(walk_power)
        self.affinity = check_kind(affinity)
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
                                           self.block_size, self.affinity)
        return affinity_loss_dense(embed, membership.to(embed), self.affinity)

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
        flat = self._pooled(embed).flatten(2)
        self._check_targets(kind, memberships, flat)
        losses = [
            self._affinity_loss_single(e, m)
            for e, m in zip(flat, memberships)
        ]
        return self._kind_weight(kind) * torch.stack(losses).mean()

    def _kind_weight(self, kind: str) -> float:
        """Loss weight of T1 (``'sem'``) or T2 (``'inst'``)."""
        if kind not in ('sem', 'inst'):
            raise ValueError(f"kind must be 'sem' or 'inst', got {kind!r}.")
        return self.loss_sem_weight if kind == 'sem' else \
            self.loss_inst_weight

    def _check_targets(self, kind: str, memberships: Sequence[Tensor],
                       flat: Tensor) -> None:
        """Membership list vs the (B, D, N) pooled embedding."""
        self._kind_weight(kind)
        if len(memberships) != flat.shape[0]:
            raise ValueError(f'got {len(memberships)} membership matrices '
                             f'for a batch of {flat.shape[0]}.')
        for members in memberships:
            if members.shape[-1] != flat.shape[-1]:
                raise ValueError(
                    f'membership has {members.shape[-1]} cells but the '
                    f'affinity grid has {flat.shape[-1]} (pool={self.pool}'
                    '); pool the targets with aff_stride = 4 * pool.')

    def random_walk(self, embed: Tensor, prob: Tensor) -> Tensor:
        """``R = P Â^T`` for one image: (D, N), (K, N) -> (K, N)."""
        prob = prob.to(embed.dtype)
        if self.blockwise:
            return random_walk_blockwise(embed, prob, self.block_size,
                                         self.walk_power, self.affinity)
        return random_walk_dense(embed, prob, self.walk_power, self.affinity)

    def refine(self, sem_logits: Tensor, embed: Tensor,
               batch_channels: List[Tensor]) -> Tensor:
        """I2S refinement of the semantic map (docs/method.md §4.3, §0.1).

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
        return self.refine_with_losses(sem_logits, embed, batch_channels)[0]

    def refine_with_losses(
        self,
        sem_logits: Tensor,
        embed: Tensor,
        batch_channels: List[Tensor],
        targets: Optional[Dict[str, Sequence[Tensor]]] = None
    ) -> Tuple[Tensor, Dict[str, Tensor]]:
        """:meth:`refine` and the affinity losses in shared passes.

        With ``blockwise=True`` each image's losses and random walk stream
        over the N x N affinity together
        (:func:`affinity_step_blockwise`: about 4/10 of the work of
        separate passes with T1 and T2); values and gradients are those of
        :meth:`refine` and :meth:`loss`.

        Args:
            sem_logits (Tensor): (B, C+1, h, w), as in :meth:`refine`.
            embed (Tensor): (B, D, h, w) embedding.
            batch_channels (list[Tensor]): Per image channel indices.
            targets (dict[str, Sequence[Tensor]], optional): Per kind
                (``'sem'`` for T1, ``'inst'`` for T2) the per-image (K_i, N)
                membership rows, as in :meth:`loss`. Defaults to None.

        Returns:
            tuple[Tensor, dict[str, Tensor]]: the refined (B, C+1, h, w)
            log-probabilities and, per kind in ``targets``, the weighted
            loss averaged over the batch.
        """
        targets = dict(targets or {})
        if sem_logits.shape[0] != embed.shape[0] or \
                sem_logits.shape[-2:] != embed.shape[-2:]:
            raise ValueError(
                f'sem_logits {tuple(sem_logits.shape)} and embed '
                f'{tuple(embed.shape)} must share batch and h, w.')
        if len(batch_channels) != sem_logits.shape[0]:
            raise ValueError(f'got {len(batch_channels)} channel sets for a '
                             f'batch of {sem_logits.shape[0]}.')
        flat = self._pooled(embed).flatten(2)
        for kind, memberships in targets.items():
            self._check_targets(kind, memberships, flat)
        outs, per_kind = [], {kind: [] for kind in targets}
        for i, (logits, emb) in enumerate(zip(sem_logits, flat)):
            members = {kind: targets[kind][i] for kind in targets}
            out, losses = self._refine_single(logits, emb, batch_channels[i],
                                              members)
            outs.append(out)
            for kind, value in losses.items():
                per_kind[kind].append(value)
        losses = {
            kind: self._kind_weight(kind) * torch.stack(values).mean()
            for kind, values in per_kind.items()
        }
        return torch.stack(outs), losses

    def _refine_single(self, logits: Tensor, emb: Tensor, channels,
                       members: Dict[str, Tensor]) -> Tuple[Tensor, dict]:
        """One image: (C+1, h, w) logits, (D, N) pooled embedding ->
        (C+1, h, w) log-probs and the unweighted loss of each kind."""
        num_ch = logits.shape[0]
        channels = torch.as_tensor(
            channels, dtype=torch.long, device=logits.device)
        if channels.numel() == 0 or int(channels.min()) < 0 or \
                int(channels.max()) >= num_ch:
            raise ValueError(f'refine channels must be a non-empty '
                             f'subset of [0, {num_ch}), got '
                             f'{channels.tolist()}.')
        prob = self._pooled(logits[channels].softmax(dim=0)[None])[0]
        # block-wise: any float dtype (computed in >= float32, also under
        # AMP); the dense reference needs one dtype
        flat_prob = prob.flatten(1) if self.blockwise else \
            prob.flatten(1).to(emb.dtype)
        # a target without a positive pair is skipped (see loss)
        active = [
            kind for kind, m in members.items()
            if m.numel() > 0 and bool((m != 0).any())
        ]
        # graph-connected zeros for the skipped ones
        losses = {
            kind: emb.sum() * 0
            for kind in members if kind not in active
        }
        if self.blockwise:
            values, walked = affinity_step_blockwise(
                emb, flat_prob, [members[k].to(emb) for k in active],
                self.block_size, self.walk_power, self.affinity)
            losses.update(zip(active, values.unbind(0)))
        else:
            walked = random_walk_dense(emb, flat_prob, self.walk_power,
                                       self.affinity)
            for kind in active:
                losses[kind] = affinity_loss_dense(emb, members[kind].to(emb),
                                                   self.affinity)
        walked = walked.view(prob.shape)
        if self.pool > 1:
            walked = F.interpolate(
                walked[None],
                size=logits.shape[-2:],
                mode='bilinear',
                align_corners=False)[0]
        out = logits.new_full(logits.shape, math.log(self.eps))
        out[channels] = torch.log(walked + self.eps).to(out.dtype)
        return out.log_softmax(dim=0), losses
