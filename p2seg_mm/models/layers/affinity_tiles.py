# Copyright (c) p2seg_mm contributors. All rights reserved.
r"""Dense pixel affinity of P2Seg's I2S branch, streamed block by block.

This module holds the maths and the tile primitives shared by the
block-wise functions (:mod:`.blockwise_affinity_step`, the production API)
and the eager per-loss baseline (:mod:`.affinity_reference`).

For one image, let ``E`` of shape (D, N) be the affinity embedding (N = h*w
pixels at stride 4). The predicted affinity is ``A = sigmoid(E^T E)`` (N, N):
raw dot products, no normalisation, no temperature; A is symmetric. The
switch ``kind='gaussian'`` uses ``A = exp(-|e_i - e_j|^2)`` instead (tile
:func:`upper_affinity`, gradient :func:`embed_grad`); below, the sigmoid's
factor ``A (1 - A)`` then becomes ``A``.

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
(symmetric), ``dL/dE = E (G + G^T) = 2 E G``. The fused step gives every
loss value in its forward pass and folds ``2 g_l c_l`` (``g_l`` the loss's
upstream gradient) into the symmetric tile of its backward pass, where A
is rebuilt. The eager baseline of :mod:`.affinity_reference` uses that a
loss is a scalar: its gradient is fully known in the forward pass, so each
block of G is built, used for the value and for ``dE`` and discarded;
backward only scales the stored (D, N) gradient (no recomputation).

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
The walk runs through :mod:`.blockwise_affinity_step`, which folds the
affinity losses into the same two passes.

**Blocks.** Every N x N operand (A, T, G, S) is symmetric, so only the row
blocks right of the diagonal, ``X[i0:i1, i0:]``, are built; each also stands
for its transpose below the diagonal (``out[i0:i1] += X_B rhs[i0:]``,
``out[i1:] += X_B[:, i1 - i0:]^T rhs[i0:i1]``). This halves the sigmoid and
``E^T E`` work: matmul cost is 1.5 (eager loss) and 2 (walk, forward +
backward; also the fused step with any number of losses, or a loss alone)
times ``2 D N^2`` flops, against 3 per loss and 3 for the walk for autograd
on the dense graph.

**Memory** is O(block_size * N + (D + K) * N): a few (block_size, N) buffers
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


def check_inputs(embed: Tensor,
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


def pattern_counts(member: Tensor) -> tuple:
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


def pair_weights(member: Tensor, block_size: int) -> tuple:
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
        pat, cnt = pattern_counts(member)
        total = cnt.new_zeros(())
        for start in range(0, pat.shape[1], block_size):
            stop = start + block_size
            shared = (pat[:, start:stop].t() @ pat > 0).to(torch.float64)
            total += cnt[start:stop] @ (shared @ cnt)
        n_pos = float(total)
    n_neg = float(num) * float(num) - n_pos
    return n_pos, 0.5 / (n_pos + 1.0), 0.5 / (n_neg + 1.0)


def rows_view(embed: Tensor) -> Tensor:
    """``E^T`` (N, D) as a view BLAS can read (a copy only for odd strides)."""
    et = embed.detach().t()
    if et.stride(0) != 1 and et.stride(1) != 1:
        et = et.contiguous()
    return et


AFFINITY_KINDS = ('sigmoid', 'gaussian')


def check_kind(kind: str) -> str:
    """Return ``kind`` if it is one of :data:`AFFINITY_KINDS`, else raise."""
    if kind not in AFFINITY_KINDS:
        raise ValueError(f'affinity must be one of {AFFINITY_KINDS}, got '
                         f'{kind!r}.')
    return kind


def sq_norms(et: Tensor, kind: str) -> Optional[Tensor]:
    """Squared norms ``|e_i|^2`` (N, ) of ``E^T`` (N, D) for the Gaussian
    affinity, None for the sigmoid one (which does not need them)."""
    return (et * et).sum(1) if kind == 'gaussian' else None


def upper_sigmoid(et: Tensor, start: int, stop: int, buf: Tensor) -> Tensor:
    """``A[start:stop, start:]`` (a row block right of the diagonal)."""
    aff = tile(buf, stop - start, et.shape[0] - start)
    torch.mm(et[start:stop], et[start:].t(), out=aff)
    return torch.sigmoid(aff, out=aff)


def upper_affinity(et: Tensor, sq: Optional[Tensor], start: int, stop: int,
                   buf: Tensor) -> Tensor:
    """``A[start:stop, start:]`` of either affinity kind.

    ``sq`` None: ``sigmoid(E^T E)``; else the Gaussian affinity
    ``exp(-|e_i - e_j|^2) = exp(2 e_i.e_j - |e_i|^2 - |e_j|^2)`` with
    ``sq`` the squared norms (:func:`sq_norms`); the exponent is clamped at
    0 (it is <= 0 up to rounding).
    """
    if sq is None:
        return upper_sigmoid(et, start, stop, buf)
    aff = tile(buf, stop - start, et.shape[0] - start)
    torch.addmm(sq[start:stop, None], et[start:stop], et[start:].t(),
                beta=-1.0, alpha=2.0, out=aff)
    aff.sub_(sq[None, start:]).clamp_(max=0.0)
    return aff.exp_()


def grad_factor_(aff: Tensor, sq: Optional[Tensor]) -> Tensor:
    """In place, the factor that turns ``dL/dA + dL/dA^T`` into the tile
    ``Q`` that :func:`embed_grad` takes: ``dA/ds = A (1 - A)`` for the
    sigmoid (``s = E^T E``), ``A`` for the Gaussian affinity."""
    if sq is None:
        aff.addcmul_(aff, aff, value=-1.0)
    return aff


def grad_rhs(et: Tensor, sq: Optional[Tensor]) -> Tensor:
    """Right-hand side that the ``Q`` tiles multiply: ``E^T`` (N, D) for
    the sigmoid, ``[E^T, 1]`` (N, D + 1) for the Gaussian affinity (the
    ones column gives the row sums of Q)."""
    if sq is None:
        return et
    return torch.cat([et, et.new_ones(et.shape[0], 1)], dim=1)


def embed_grad(acc: Tensor, et: Tensor, sq: Optional[Tensor]) -> Tensor:
    """``dL/dE`` (D, N) from ``acc = Q @ grad_rhs`` (all tiles summed).

    Sigmoid: ``dL/dE = E Q`` (Q symmetric). Gaussian: with
    ``dA_ij/de_i = -2 A_ij (e_i - e_j)``,
    ``dL/de_i = -2 sum_j Q_ij (e_i - e_j) = 2 (E Q)_i - 2 q_i e_i``,
    ``q = Q 1``.
    """
    if sq is None:
        return acc.t()
    dims = et.shape[1]
    return (2.0 * (acc[:, :dims] - acc[:, dims:] * et)).t()


def tile(buf: Tensor, rows: int, cols: int) -> Tensor:
    """A contiguous (rows, cols) view on the front of a reused buffer."""
    return buf.view(-1)[:rows * cols].view(rows, cols)


def symmetric_mm_(out: Tensor, block: Tensor, rhs: Tensor, start: int,
                  stop: int) -> None:
    """Add the share of ``S[start:stop, start:]`` (``block``) to
    ``out += S @ rhs``.

    S is symmetric, so its row block right of the diagonal also gives the
    column block below the diagonal: summing over all row blocks covers S.
    """
    out[start:stop].addmm_(block, rhs[start:])
    if stop < out.shape[0]:
        out[stop:].addmm_(block[:, stop - start:].t(), rhs[start:stop])


class Target(NamedTuple):
    """One membership target, ready for the tile loop."""
    member_t: Tensor  # (N, K) float, rows = pixels
    w_pos: float
    w_neg: float
    overlap: bool  # some pixel is in two rows (M^T M = 2 there)
    constant: float  # w_pos * N+, the loss part that needs no tile


def prepare_target(membership: Tensor, block_size: int,
                   dtype: torch.dtype) -> Target:
    """Pair weights and the transposed membership of one target."""
    member = membership.detach() != 0
    n_pos, w_pos, w_neg = pair_weights(member, block_size)
    member_t = member.t().to(dtype).contiguous()
    overlap = bool((member_t.sum(1) > 1).any()) if member_t.numel() else False
    return Target(member_t, w_pos, w_neg, overlap, w_pos * n_pos)


def coef_tile(buf: Tensor, target: Target, start: int, stop: int) -> Tensor:
    """``c = w- - (w+ + w-) T`` on the tile ``[start:stop, start:]``."""
    mem_t = target.member_t
    coef = tile(buf, stop - start, mem_t.shape[0] - start)
    torch.addmm(
        mem_t.new_full((1, 1), target.w_neg),
        mem_t[start:stop],
        mem_t[start:].t(),
        alpha=-(target.w_pos + target.w_neg),
        out=coef)
    if target.overlap:  # a cell in two rows: c must stay -w+
        coef.clamp_(min=-target.w_pos)
    return coef


def tile_loss(coef: Tensor, aff: Tensor) -> Tensor:
    """``sum c * A`` over the tile and its mirror below the diagonal (the
    diagonal block, fully inside the tile, counted once)."""
    diag = coef.shape[0]
    return 2 * torch.dot(coef.view(-1), aff.view(-1)) - (
        coef[:, :diag] * aff[:, :diag]).sum()
