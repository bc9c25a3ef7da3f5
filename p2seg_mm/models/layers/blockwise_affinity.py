# Copyright (c) p2seg_mm contributors. All rights reserved.
r"""Dense pixel affinity of P2Seg's I2S branch, streamed block by block.

For one image, let ``E`` of shape (D, N) be the affinity embedding (N = h*w
pixels at stride 4). The predicted affinity is ``A = sigmoid(E^T E)`` (N, N):
raw dot products, no normalisation, no temperature; A is symmetric.

**Targets.** A binary membership matrix ``M`` (K, N) (any nonzero entry is a
member) defines ``T = (M^T M > 0)``: pair (i, j) is positive iff some row k
holds both pixels. Semantic target T1: rows are the present classes (a cell
may belong to two classes). Instance target T2: rows are one-hot instance
ids (cells of id 0 are in no row). All N^2 pairs count, the diagonal too.

**Loss.** With N+ / N- the numbers of positive / negative pairs::

    L = 0.5 * sum_{T=1} (1 - A) / (N+ + 1) + 0.5 * sum_{T=0} A / (N- + 1)
      = w+ N+ + sum_ij c_ij A_ij,   c = w- - (w+ + w-) T,
      w+ = 0.5 / (N+ + 1),  w- = 0.5 / (N- + 1).

N+ is counted without touching pairs: pixels are grouped by membership
pattern (column of M) and N+ = sum of count_u * count_v over pattern pairs
that share a row. With ``s = E^T E`` and ``G = dL/ds = c * A * (1 - A)``
(symmetric), ``dL/dE = E (G + G^T) = 2 E G``. The loss is a scalar, so its
gradient is fully known in the forward pass: each block of G is built, used
for the value and for ``dE`` and discarded; backward only scales the stored
(D, N) gradient (no recomputation needed).

**Random walk** (proper transition, docs/method.md §0.1): for probabilities P
(K, N), ``R[:, b] = sum_a A[b, a] P[:, a] / d_b`` with ``d_b = sum_a A[b, a]``,
i.e. ``R = P Â^T``, Â the row-normalised A. The row sums are complete once
every block of A has been seen, so a single pass accumulates ``A [P^T, 1]``
(walk and degrees together) and divides at the end (d_b >= A_bb >= 0.5, never
zero). Backward recomputes each block of A; with ``H = dL/dR / d`` (per column)
and ``g_b = sum_k H[k, b] R[k, b]``::

    dL/dP = H A,   dL/dA = H^T P - g 1^T,
    dL/dE = E S,   S = (dL/dA + dL/dA^T) * A * (1 - A)   (symmetric),

where ``dL/dA + dL/dA^T = [H; P; -g; 1]^T [P; H; 1; -g]`` is one thin matmul.
The walk runs through :mod:`.blockwise_affinity_step`, which can also fold
the affinity losses into the same two passes.

**Blocks.** Every N x N operand (A, T, G, S) is symmetric, so only the row
blocks right of the diagonal, ``X[i0:i1, i0:]``, are built; each also stands
for its transpose below the diagonal (``out[i0:i1] += X_B rhs[i0:]``,
``out[i1:] += X_B[:, i1 - i0:]^T rhs[i0:i1]``). This halves the sigmoid and
``E^T E`` work: matmul cost is 1.5 (loss) and 2 (walk, forward + backward)
times ``2 D N^2`` flops, against 3 and 3 for autograd on the dense graph.

**Memory** is O(block_size * N + (D + K) * N): two (block_size, N) buffers
are reused across blocks; no N x N tensor is ever held.

Deviations from the authors' release (each on purpose, docs/method.md §0.1):

- single sigmoid in the loss (the release applies a second sigmoid to A);
- targets are built per image (the release sums pair matrices over a batch);
- the random walk uses the row-normalised transition ``P Â^T`` (the release
  computes ``P Â``, normalising by the degree of the source pixel).
"""
from typing import NamedTuple, Optional

import torch
from torch import Tensor


def _check_inputs(embed: Tensor,
                  other: Tensor,
                  other_name: str,
                  block_size: Optional[int] = None) -> None:
    """Validate shapes/dtypes shared by every entry point."""
    if embed.dim() != 2 or not embed.is_floating_point():
        raise ValueError('embed must be a floating (D, N) tensor, got '
                         f'shape {tuple(embed.shape)} dtype {embed.dtype}')
    if other.dim() != 2 or other.shape[1] != embed.shape[1]:
        raise ValueError(f'{other_name} must have shape (K, N='
                         f'{embed.shape[1]}) to match embed (D, N), got '
                         f'{tuple(other.shape)}')
    if other.device != embed.device:
        raise ValueError(f'{other_name} is on {other.device} but embed is on '
                         f'{embed.device}')
    if block_size is not None and (not isinstance(block_size, int)
                                   or block_size < 1):
        raise ValueError(f'block_size must be a positive int, got '
                         f'{block_size!r}')


def compute_dtype(*tensors: Tensor) -> torch.dtype:
    """float64 if any input is float64, else float32.

    The block-wise functions never run in half precision: the class-balance
    weights are ~1 / N^2 (4e-9 at a 416 crop), below float16's smallest
    subnormal, so an AMP run would silently get a zero affinity loss. Their
    wrappers upcast half inputs and switch autocast off inside.
    """
    if any(t.dtype == torch.float64 for t in tensors):
        return torch.float64
    return torch.float32


def _pattern_counts(member: Tensor) -> tuple:
    """Group pixels by membership pattern (column of ``member``).

    Args:
        member (Tensor): Shape (K, N), bool, K >= 1.

    Returns:
        tuple[Tensor, Tensor]: Patterns (K, U) float64 and counts (U, )
        float64 of the U distinct columns.
    """
    codes = []
    for first in range(0, member.shape[0], 62):  # 62 bits per int64 code
        code = torch.zeros_like(member[0], dtype=torch.int64)
        for bit, row in enumerate(member[first:first + 62]):
            code |= row.to(torch.int64) << bit
        codes.append(code)
    codes = torch.stack(codes)  # (ceil(K / 62), N)
    if codes.shape[0] == 1:
        _, inverse, counts = torch.unique(
            codes[0], return_inverse=True, return_counts=True)
    else:
        _, inverse, counts = torch.unique(
            codes, dim=1, return_inverse=True, return_counts=True)
    index = torch.arange(member.shape[1], device=member.device)
    rep = index.new_empty(counts.shape).scatter_(0, inverse, index)
    return member[:, rep].to(torch.float64), counts.to(torch.float64)


def _pair_weights(member: Tensor, block_size: int) -> tuple:
    """Return ``(n_pos, w_pos, w_neg)`` of the target ``T = M^T M > 0``.

    Args:
        member (Tensor): Shape (K, N), bool membership.
        block_size (int): Rows of the pattern-pair matrix built at once.

    Returns:
        tuple[float, float, float]: N+ and the two class-balance weights.
    """
    num = member.shape[1]
    n_pos = 0.0
    if member.shape[0] > 0 and num > 0:
        pat, cnt = _pattern_counts(member)
        total = cnt.new_zeros(())
        for start in range(0, pat.shape[1], block_size):
            stop = start + block_size
            shared = (pat[:, start:stop].t() @ pat > 0).to(torch.float64)
            total += cnt[start:stop] @ (shared @ cnt)
        n_pos = float(total)
    n_neg = float(num) * float(num) - n_pos
    return n_pos, 0.5 / (n_pos + 1.0), 0.5 / (n_neg + 1.0)


def _rows_view(embed: Tensor) -> Tensor:
    """``E^T`` (N, D) as a view BLAS can read (a copy only for odd strides)."""
    et = embed.detach().t()
    if et.stride(0) != 1 and et.stride(1) != 1:
        et = et.contiguous()
    return et


def _upper_sigmoid(et: Tensor, start: int, stop: int, buf: Tensor) -> Tensor:
    """``A[start:stop, start:]`` (a row block right of the diagonal)."""
    aff = _tile(buf, stop - start, et.shape[0] - start)
    torch.mm(et[start:stop], et[start:].t(), out=aff)
    return torch.sigmoid(aff, out=aff)


def _tile(buf: Tensor, rows: int, cols: int) -> Tensor:
    """A contiguous (rows, cols) view on the front of a reused buffer."""
    return buf.view(-1)[:rows * cols].view(rows, cols)


def _symmetric_mm_(out: Tensor, tile: Tensor, rhs: Tensor, start: int,
                   stop: int) -> None:
    """Add the share of ``S[start:stop, start:]`` to ``out += S @ rhs``.

    S is symmetric, so its row block right of the diagonal also gives the
    column block below the diagonal: summing over all row blocks covers S.
    """
    out[start:stop].addmm_(tile, rhs[start:])
    if stop < out.shape[0]:
        out[stop:].addmm_(tile[:, stop - start:].t(), rhs[start:stop])


class _Target(NamedTuple):
    """One membership target, ready for the tile loop."""
    member_t: Tensor  # (N, K) float, rows = pixels
    w_pos: float
    w_neg: float
    overlap: bool  # some pixel is in two rows (M^T M = 2 there)
    constant: float  # w_pos * N+, the loss part that needs no tile


def _prepare_target(membership: Tensor, block_size: int,
                    dtype: torch.dtype) -> _Target:
    """Pair weights and the transposed membership of one target."""
    member = membership.detach() != 0
    n_pos, w_pos, w_neg = _pair_weights(member, block_size)
    member_t = member.t().to(dtype).contiguous()
    overlap = bool((member_t.sum(1) > 1).any()) if member_t.numel() else False
    return _Target(member_t, w_pos, w_neg, overlap, w_pos * n_pos)


def _coef_tile(buf: Tensor, target: _Target, start: int,
               stop: int) -> Tensor:
    """``c = w- - (w+ + w-) T`` on the tile ``[start:stop, start:]``."""
    mem_t = target.member_t
    coef = _tile(buf, stop - start, mem_t.shape[0] - start)
    torch.addmm(
        mem_t.new_full((1, 1), target.w_neg),
        mem_t[start:stop],
        mem_t[start:].t(),
        alpha=-(target.w_pos + target.w_neg),
        out=coef)
    if target.overlap:  # a cell in two rows: c must stay -w+
        coef.clamp_(min=-target.w_pos)
    return coef


def _tile_loss(coef: Tensor, aff: Tensor) -> Tensor:
    """``sum c * A`` over the tile and its mirror below the diagonal (the
    diagonal block, fully inside the tile, counted once)."""
    diag = coef.shape[0]
    return 2 * torch.dot(coef.view(-1), aff.view(-1)) - (
        coef[:, :diag] * aff[:, :diag]).sum()


class _BlockwiseAffinityLoss(torch.autograd.Function):
    """Affinity loss with its gradient accumulated in the forward pass."""

    @staticmethod
    def forward(ctx, embed: Tensor, membership: Tensor,
                block_size: int) -> Tensor:
        et = _rows_view(embed)  # (N, D)
        num = et.shape[0]
        target = _prepare_target(membership, block_size, et.dtype)
        need_grad = ctx.needs_input_grad[0]
        grad = et.new_zeros(et.shape[::-1]) if need_grad else None  # (D, N)
        rows = max(1, min(block_size, num))
        aff_buf = et.new_empty(rows, num)
        coef_buf = et.new_empty(rows, num)
        acc = torch.zeros((), dtype=torch.float64, device=et.device)
        for start in range(0, num, rows):
            stop = min(start + rows, num)
            aff = _upper_sigmoid(et, start, stop, aff_buf)
            coef = _coef_tile(coef_buf, target, start, stop)
            acc += _tile_loss(coef, aff)
            if need_grad:
                aff.addcmul_(aff, aff, value=-1.0)  # A (1 - A)
                coef.mul_(aff)  # rows of G = dL/ds
                _symmetric_mm_(grad.t(), coef, et, start, stop)
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


def affinity_loss_blockwise(embed: Tensor,
                            membership: Tensor,
                            block_size: int = 512) -> Tensor:
    """Class-balanced affinity loss without materialising N x N.

    Args:
        embed (Tensor): Shape (D, N), affinity embedding of one image
            (float32 or float64, any strides, any device).
        membership (Tensor): Shape (K, N), bool or float; nonzero marks that
            pixel n belongs to row k (class or instance). K may be 0.
        block_size (int): Rows of A computed at once; peak extra memory is
            about ``2 * block_size * N`` elements. 256-1024 gave the same
            CPU speed; larger blocks suit GPUs. Defaults to 512.

    Returns:
        Tensor: Scalar loss, same value and gradient as
        :func:`affinity_loss_dense`; no gradient w.r.t. ``membership``.
    """
    _check_inputs(embed, membership, 'membership', block_size)
    dtype = compute_dtype(embed)
    with torch.autocast(device_type=embed.device.type, enabled=False):
        return _BlockwiseAffinityLoss.apply(
            embed.to(dtype), membership, block_size)


def random_walk_blockwise(embed: Tensor,
                          prob: Tensor,
                          block_size: int = 512,
                          power: float = 1.0) -> Tensor:
    """Random walk ``R = P Â^T`` without materialising N x N.

    Args:
        embed (Tensor): Shape (D, N), affinity embedding of one image.
        prob (Tensor): Shape (K, N), probabilities of K semantic channels
            (same device as ``embed``; see :func:`compute_dtype`).
        block_size (int): Rows of A computed at once. Defaults to 512.
        power (float): Walk on ``W = A ** power`` (1 = the method).
            Defaults to 1.0.

    Returns:
        Tensor: Shape (K, N), ``R[:, b]`` is the affinity-weighted average of
        ``prob`` over all pixels a, weights ``W[b, a] / sum_a W[b, a]``.
        Differentiable w.r.t. ``embed`` and ``prob``.
    """
    # the fused step without losses is exactly this walk (one forward and
    # one backward pass); imported here to avoid an import cycle
    from .blockwise_affinity_step import affinity_step_blockwise
    return affinity_step_blockwise(embed, prob, (), block_size, power)[1]


def affinity_loss_dense(embed: Tensor, membership: Tensor) -> Tensor:
    """Reference affinity loss; materialises N x N (tests, benchmarks).

    Args:
        embed (Tensor): Shape (D, N), affinity embedding of one image.
        membership (Tensor): Shape (K, N), bool or float membership.

    Returns:
        Tensor: Scalar loss (see the module docstring).
    """
    _check_inputs(embed, membership, 'membership')
    aff = torch.sigmoid(embed.t() @ embed)  # (N, N)
    mem = (membership != 0).to(embed.dtype)
    target = (mem.t() @ mem) > 0
    n_pos = target.sum().to(embed.dtype)
    n_neg = target.numel() - n_pos
    loss_pos = torch.where(target, 1.0 - aff, 0.0).sum() / (n_pos + 1.0)
    loss_neg = torch.where(target, 0.0, aff).sum() / (n_neg + 1.0)
    return 0.5 * loss_pos + 0.5 * loss_neg


def random_walk_dense(embed: Tensor,
                      prob: Tensor,
                      power: float = 1.0) -> Tensor:
    """Reference random walk ``R = P Â^T``; materialises N x N.

    Args:
        embed (Tensor): Shape (D, N), affinity embedding of one image.
        prob (Tensor): Shape (K, N), semantic probabilities.
        power (float): Walk on ``A ** power``. Defaults to 1.0.

    Returns:
        Tensor: Shape (K, N), refined probabilities.
    """
    _check_inputs(embed, prob, 'prob')
    aff = torch.sigmoid(embed.t() @ embed)**power  # (N, N)
    trans = aff / aff.sum(dim=1, keepdim=True)
    return prob @ trans.t()
