# Copyright (c) p2seg_mm contributors. All rights reserved.
r"""Block-wise affinity: one streamed pass for all affinity work of an image.

The production API of the N x N affinity (maths in :mod:`.affinity_tiles`):
:func:`affinity_step_blockwise` and its thin wrappers
:func:`random_walk_blockwise` (the walk alone) and
:func:`affinity_loss_blockwise` (one loss alone).

Computing each affinity loss and the random walk in its own passes over
``A = sigmoid(E^T E)`` (the eager loss of :mod:`.affinity_reference` plus a
walk) builds A once per loss and twice for the walk (forward, backward) and
multiplies ``E`` by a symmetric N x N tile once per loss and once for the
walk. Here the losses and the walk of one image share their passes:

- forward: each upper row block of A is built once and gives every loss
  value (``sum c_l * A``) and the walk's accumulation ``A [P^T, 1]``;
- backward: each block of A is rebuilt once; the upstream gradients of the
  losses ``g_l`` and of the walk are folded into one symmetric tile

      S = (dL/dA_walk + dL/dA_walk^T + 2 sum_l g_l c_l) * A * (1 - A)

  and a single ``E S`` product gives ``dL/dE``.

Cost in units of ``U = 2 D N^2 / 2`` flops (one upper-triangle product):
separate passes take ``3 U`` per loss and ``4 U`` for the walk (10 U with
two losses), the fused step ``U`` forward + ``3 U`` backward (4 U) for any
number of losses; a walk of no channels costs nothing, so a loss alone
takes 4 U too (the eager loss: 3 U). With ``power`` = beta != 1 the walk
uses ``W = A ** beta`` (the losses keep A): the walk's part of S is scaled
by ``beta A ** (beta - 1)`` before the common factor ``A (1 - A)``
(``A`` for the Gaussian affinity ``kind='gaussian'``, whose ``dL/dE`` also
needs the row sums of the tile: see ``affinity_tiles.embed_grad``). Memory
stays O(block_size * N + (D + K) * N): the loss gradients are not
precomputed in the forward pass, so nothing of size (L, D, N) is stored
either. Values and gradients equal those of the dense references of
:mod:`.affinity_reference` (tested).
"""
from typing import Sequence, Tuple

import torch
from torch import Tensor

from .affinity_tiles import (check_inputs, check_kind, coef_tile,
                             compute_dtype, embed_grad, grad_factor_,
                             grad_rhs, prepare_target, rows_view, sq_norms,
                             symmetric_mm_, tile, tile_loss, upper_affinity)


def _walk_grad_operands(grad_out: Tensor, prob_t: Tensor, out_t: Tensor,
                        deg: Tensor) -> tuple:
    """Thin operands of the random walk's backward.

    Args:
        grad_out (Tensor): (K, N) gradient w.r.t. the walk's output R.
        prob_t (Tensor): (N, K) walked probabilities P^T.
        out_t (Tensor): (N, K) the walk's output R^T.
        deg (Tensor): (N, ) row sums of A.

    Returns:
        tuple[Tensor, Tensor, Tensor]: ``H^T`` (N, K) and ``left``, ``right``
        (N, 2K + 2) with ``left @ right^T = dL/dA + (dL/dA)^T``.
    """
    h_t = grad_out.t() / deg[:, None]  # (N, K)
    g_neg = (h_t * out_t).sum(dim=1, keepdim=True).neg_()  # (N, 1)
    ones = torch.ones_like(g_neg)
    # [H, P, -g, 1] [P, H, 1, -g]^T = dL/dA + (dL/dA)^T
    left = torch.cat([h_t, prob_t, g_neg, ones], dim=1)
    right = torch.cat([prob_t, h_t, ones, g_neg], dim=1)
    return h_t, left, right


class _BlockwiseAffinityStep(torch.autograd.Function):
    """Affinity losses and random walk of one image in shared passes."""

    @staticmethod
    def forward(ctx, embed: Tensor, prob: Tensor, block_size: int,
                power: float, kind: str, *memberships: Tensor):
        et = rows_view(embed)  # (N, D)
        sq = sq_norms(et, kind)
        num = et.shape[0]
        rows = max(1, min(block_size, num))
        targets = [
            prepare_target(m, block_size, et.dtype) for m in memberships
        ]
        prob_t = prob.detach().t()  # (N, K)
        chans = prob_t.shape[1]
        rhs = torch.cat([prob_t, prob_t.new_ones(num, 1)], dim=1)
        acc = torch.zeros_like(rhs)
        sums = torch.zeros(
            len(memberships), dtype=torch.float64, device=et.device)
        aff_buf = et.new_empty(rows, num)
        coef_buf = et.new_empty(rows, num) if memberships else None
        for start in range(0, num, rows):
            stop = min(start + rows, num)
            aff = upper_affinity(et, sq, start, stop, aff_buf)
            for i, target in enumerate(targets):
                sums[i] += tile_loss(
                    coef_tile(coef_buf, target, start, stop), aff)
            if chans == 0:  # no walk (a loss alone): no degrees needed
                continue
            if power != 1.0:  # the walk's W = A ** power
                aff.pow_(power)
            symmetric_mm_(acc, aff, rhs, start, stop)
        deg = acc[:, chans]
        out_t = acc[:, :chans] / deg[:, None]
        constants = sums.new_tensor([t.constant for t in targets])
        losses = (sums + constants).to(et.dtype)
        ctx.block_size = rows
        ctx.power = power
        ctx.kind = kind
        ctx.targets = targets  # no gradient flows to them
        ctx.save_for_backward(embed, prob, out_t, deg)
        return losses, out_t.t().contiguous()

    @staticmethod
    def backward(ctx, grad_losses: Tensor, grad_walk: Tensor):
        embed, prob, out_t, deg = ctx.saved_tensors
        targets = ctx.targets
        et, prob_t = rows_view(embed), prob.detach().t()
        need_e, need_p = ctx.needs_input_grad[:2]
        num, rows, power = et.shape[0], ctx.block_size, ctx.power
        sq = sq_norms(et, ctx.kind)
        walks = prob_t.shape[1] > 0  # False: the walk's share of S is 0
        h_t, left, right = _walk_grad_operands(grad_walk, prob_t, out_t, deg)
        loss_scales = [2.0 * float(g) for g in grad_losses]
        rhs_e = grad_rhs(et, sq) if need_e else None
        acc_e = torch.zeros_like(rhs_e) if need_e else None  # Q @ rhs_e
        grad_p = torch.zeros_like(prob) if need_p else None  # (K, N)
        need_p = need_p and walks
        aff_buf = et.new_empty(rows, num)
        sym_buf = et.new_empty(rows, num) if need_e else None
        coef_buf = et.new_empty(rows, num) if need_e and targets else None
        pow_buf = et.new_empty(rows, num) if power != 1.0 and walks else None
        for start in range(0, num, rows):
            stop = min(start + rows, num)
            aff = upper_affinity(et, sq, start, stop, aff_buf)
            walk = aff
            if pow_buf is not None:
                walk = tile(pow_buf, stop - start, num - start)
                torch.pow(aff, power, out=walk)
            if need_p:  # dL/dP^T = W H^T
                symmetric_mm_(grad_p.t(), walk, h_t, start, stop)
            if need_e:
                sym = tile(sym_buf, stop - start, num - start)
                if walks:
                    torch.mm(left[start:stop], right[start:].t(), out=sym)
                else:
                    sym.zero_()
                if pow_buf is not None:  # dW/dA = power * A ** (power - 1)
                    torch.pow(aff, power - 1.0, out=walk)
                    sym.mul_(walk).mul_(power)
                for target, scale in zip(targets, loss_scales):
                    if scale != 0.0:
                        sym.add_(
                            coef_tile(coef_buf, target, start, stop),
                            alpha=scale)
                sym.mul_(grad_factor_(aff, sq))  # rows of Q, symmetric
                symmetric_mm_(acc_e, sym, rhs_e, start, stop)
        grad_e = embed_grad(acc_e, et, sq) if need_e else None
        return (grad_e, grad_p, None, None, None) + (None, ) * len(targets)


def affinity_step_blockwise(
        embed: Tensor,
        prob: Tensor,
        memberships: Sequence[Tensor] = (),
        block_size: int = 512,
        power: float = 1.0,
        kind: str = 'sigmoid') -> Tuple[Tensor, Tensor]:
    """Affinity losses and random walk of one image in shared passes.

    Equal to ``torch.stack([affinity_loss_dense(embed, m) for m in
    memberships])`` and ``random_walk_dense(embed, prob, power)`` (values
    and gradients) without materialising N x N, at about 4/10 of the matmul
    work of separate block-wise passes with two memberships.

    Args:
        embed (Tensor): Shape (D, N), affinity embedding of one image.
        prob (Tensor): Shape (K, N), probabilities to walk (same device
            as ``embed``). Computed in float64 if either input is float64,
            else in float32 (half inputs are upcast, autocast is off).
            K may be 0 (no walk, only the losses).
        memberships (Sequence[Tensor]): L membership matrices (K_l, N),
            bool or float; each must hold at least one member (a target
            without a positive pair is the caller's to skip).
        block_size (int): Rows of A computed at once. Defaults to 512.
        power (float): The walk's transition is built from ``A ** power``
            (AffinityNet's beta; the losses always use A). 1 = the method.
            Defaults to 1.0.
        kind (str): ``'sigmoid'`` (the method's ``sigmoid(E^T E)``) or
            ``'gaussian'`` (``exp(-|e_i - e_j|^2)``, docs/method.md §4.1).
            Defaults to 'sigmoid'.

    Returns:
        tuple[Tensor, Tensor]: Losses (L, ) and the walked probabilities
        (K, N), in the computation dtype; differentiable w.r.t. ``embed``
        and ``prob``.
    """
    check_inputs(embed, prob, 'prob', block_size)
    if not power > 0:
        raise ValueError(f'power must be > 0, got {power}.')
    check_kind(kind)
    for membership in memberships:
        check_inputs(embed, membership, 'membership')
    dtype = compute_dtype(embed, prob)
    with torch.autocast(device_type=embed.device.type, enabled=False):
        return _BlockwiseAffinityStep.apply(embed.to(dtype), prob.to(dtype),
                                            block_size, float(power), kind,
                                            *memberships)


def affinity_loss_blockwise(embed: Tensor,
                            membership: Tensor,
                            block_size: int = 512,
                            kind: str = 'sigmoid') -> Tensor:
    """Class-balanced affinity loss without materialising N x N.

    The fused step with this one membership and a walk of no channels.

    Args:
        embed (Tensor): Shape (D, N), affinity embedding of one image
            (float32 or float64, any strides, any device; see
            :func:`~.affinity_tiles.compute_dtype`).
        membership (Tensor): Shape (K, N), bool or float; nonzero marks that
            pixel n belongs to row k (class or instance). K may be 0.
        block_size (int): Rows of A computed at once; peak extra memory is
            about ``3 * block_size * N`` elements. Defaults to 512.
        kind (str): Affinity, see :func:`affinity_step_blockwise`.
            Defaults to 'sigmoid'.

    Returns:
        Tensor: Scalar loss, same value and gradient as
        :func:`~.affinity_reference.affinity_loss_dense`; no gradient
        w.r.t. ``membership``.
    """
    check_inputs(embed, membership, 'membership', block_size)
    no_walk = embed.new_zeros((0, embed.shape[1]))
    return affinity_step_blockwise(embed, no_walk, (membership, ),
                                   block_size, kind=kind)[0][0]


def random_walk_blockwise(embed: Tensor,
                          prob: Tensor,
                          block_size: int = 512,
                          power: float = 1.0,
                          kind: str = 'sigmoid') -> Tensor:
    """Random walk ``R = P Â^T`` without materialising N x N.

    The fused step without memberships (one forward, one backward pass).

    Args:
        embed (Tensor): Shape (D, N), affinity embedding of one image.
        prob (Tensor): Shape (K, N), probabilities of K semantic channels
            (same device as ``embed``; see
            :func:`~.affinity_tiles.compute_dtype`).
        block_size (int): Rows of A computed at once. Defaults to 512.
        power (float): Walk on ``W = A ** power`` (1 = the method).
            Defaults to 1.0.
        kind (str): Affinity, see :func:`affinity_step_blockwise`.
            Defaults to 'sigmoid'.

    Returns:
        Tensor: Shape (K, N), ``R[:, b]`` is the affinity-weighted average of
        ``prob`` over all pixels a, weights ``W[b, a] / sum_a W[b, a]``.
        Differentiable w.r.t. ``embed`` and ``prob``.
    """
    return affinity_step_blockwise(embed, prob, (), block_size, power,
                                   kind)[1]
