# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Reference affinity loss and random walk: the dense path of the head and
the tests' reference.

:func:`affinity_loss_dense` and :func:`random_walk_dense` materialise the
N x N affinity ``A = sigmoid(E^T E)`` or its Gaussian alternative
(:func:`affinity_matrix`; maths in :mod:`.affinity_tiles`).
They are what ``P2SegAffinityHead(blockwise=False)`` computes and what the
block-wise functions of :mod:`.blockwise_affinity_step` are tested against.

:func:`affinity_loss_blockwise_eager` is the earlier block-wise loss, one
pass per loss with its gradient accumulated in the forward pass (3 U per
loss against the fused step's 4 U, see :mod:`.blockwise_affinity_step`).
Training uses the fused step; this one is kept as the separate-pass
baseline of ``benchmarks/bench_affinity.py`` (method ``block``) and as a
second, independent block-wise implementation for the tests.
"""
import torch
from torch import Tensor

from .affinity_tiles import (check_inputs, check_kind, coef_tile,
                             compute_dtype, prepare_target, rows_view,
                             symmetric_mm_, tile_loss, upper_sigmoid)


def affinity_matrix(embed: Tensor, kind: str = 'sigmoid') -> Tensor:
    """The dense (N, N) affinity of a (D, N) embedding, by autograd.

    ``'sigmoid'``: ``sigmoid(E^T E)`` (P2Seg, docs/method.md §4.1);
    ``'gaussian'``: ``exp(-|e_i - e_j|^2)``, a distance-based affinity
    (docs/method.md §4.1; AffinityNet, Ahn & Kwak 2018, uses the L1
    distance).

    Raises:
        ValueError: Unknown ``kind``.
    """
    if check_kind(kind) == 'sigmoid':
        return torch.sigmoid(embed.t() @ embed)
    sq = (embed * embed).sum(0)
    dist = (sq[:, None] + sq[None] - 2.0 * embed.t() @ embed).clamp(min=0)
    return torch.exp(-dist)


def affinity_loss_dense(embed: Tensor,
                        membership: Tensor,
                        kind: str = 'sigmoid') -> Tensor:
    """Reference affinity loss; materialises N x N.

    Args:
        embed (Tensor): Shape (D, N), affinity embedding of one image.
        membership (Tensor): Shape (K, N), bool or float membership.
        kind (str): Affinity, see :func:`affinity_matrix`.
            Defaults to 'sigmoid'.

    Returns:
        Tensor: Scalar loss (see :mod:`.affinity_tiles`).
    """
    check_inputs(embed, membership, 'membership')
    return balanced_loss(affinity_matrix(embed, kind), membership)


def balanced_loss(aff: Tensor, membership: Tensor) -> Tensor:
    """The class-balanced affinity loss of a given (N, N) affinity in
    [0, 1] and a (K, N) membership (see :mod:`.affinity_tiles`)."""
    mem = (membership != 0).to(aff.dtype)
    target = (mem.t() @ mem) > 0
    n_pos = target.sum().to(aff.dtype)
    n_neg = target.numel() - n_pos
    loss_pos = torch.where(target, 1.0 - aff, 0.0).sum() / (n_pos + 1.0)
    loss_neg = torch.where(target, 0.0, aff).sum() / (n_neg + 1.0)
    return 0.5 * loss_pos + 0.5 * loss_neg


def random_walk_dense(embed: Tensor,
                      prob: Tensor,
                      power: float = 1.0,
                      kind: str = 'sigmoid') -> Tensor:
    """Reference random walk ``R = P Â^T``; materialises N x N.

    Args:
        embed (Tensor): Shape (D, N), affinity embedding of one image.
        prob (Tensor): Shape (K, N), semantic probabilities.
        power (float): Walk on ``A ** power``. Defaults to 1.0.
        kind (str): Affinity, see :func:`affinity_matrix`.
            Defaults to 'sigmoid'.

    Returns:
        Tensor: Shape (K, N), refined probabilities.
    """
    check_inputs(embed, prob, 'prob')
    return walk(affinity_matrix(embed, kind)**power, prob)


def walk(weight: Tensor, prob: Tensor) -> Tensor:
    """``R = P Ŵ^T`` for a given (N, N) walk weight W (rows normalised)."""
    return prob @ (weight / weight.sum(dim=1, keepdim=True)).t()


class _EagerAffinityLoss(torch.autograd.Function):
    """Affinity loss with its gradient accumulated in the forward pass."""

    @staticmethod
    def forward(ctx, embed: Tensor, membership: Tensor,
                block_size: int) -> Tensor:
        et = rows_view(embed)  # (N, D)
        num = et.shape[0]
        target = prepare_target(membership, block_size, et.dtype)
        need_grad = ctx.needs_input_grad[0]
        grad = et.new_zeros(et.shape[::-1]) if need_grad else None  # (D, N)
        rows = max(1, min(block_size, num))
        aff_buf = et.new_empty(rows, num)
        coef_buf = et.new_empty(rows, num)
        acc = torch.zeros((), dtype=torch.float64, device=et.device)
        for start in range(0, num, rows):
            stop = min(start + rows, num)
            aff = upper_sigmoid(et, start, stop, aff_buf)
            coef = coef_tile(coef_buf, target, start, stop)
            acc += tile_loss(coef, aff)
            if need_grad:
                aff.addcmul_(aff, aff, value=-1.0)  # A (1 - A)
                coef.mul_(aff)  # rows of G = dL/ds
                symmetric_mm_(grad.t(), coef, et, start, stop)
        if need_grad:
            grad.mul_(2.0)
            ctx.save_for_backward(grad)
        return (acc + target.constant).to(et.dtype)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        grad_embed = None
        if ctx.needs_input_grad[0]:
            grad, = ctx.saved_tensors
            grad_embed = grad * grad_out
        return grad_embed, None, None


def affinity_loss_blockwise_eager(embed: Tensor,
                                  membership: Tensor,
                                  block_size: int = 512) -> Tensor:
    """Block-wise affinity loss in one pass, gradient precomputed.

    Same value and gradient as :func:`affinity_loss_dense` and
    ``affinity_loss_blockwise`` (the fused step's wrapper) without
    materialising N x N; stores a (D, N) gradient from the forward pass.

    Args:
        embed (Tensor): Shape (D, N), affinity embedding of one image
            (any float dtype, strides and device; computed in float64 if
            ``embed`` is float64, else float32, autocast off).
        membership (Tensor): Shape (K, N), bool or float. K may be 0.
        block_size (int): Rows of A computed at once; peak extra memory is
            about ``2 * block_size * N`` elements. Defaults to 512.

    Returns:
        Tensor: Scalar loss; no gradient w.r.t. ``membership``.
    """
    check_inputs(embed, membership, 'membership', block_size)
    dtype = compute_dtype(embed)
    with torch.autocast(device_type=embed.device.type, enabled=False):
        return _EagerAffinityLoss.apply(embed.to(dtype), membership,
                                        block_size)
