# Copyright (c) p2seg_mm contributors. All rights reserved.
"""The fused affinity step and its wrappers (``affinity_loss_blockwise``,
``random_walk_blockwise``) equal the dense references."""
import pytest
import torch
from torch.testing import assert_close

from p2seg_mm.models.layers.affinity_reference import (affinity_loss_dense,
                                                       random_walk_dense)
from p2seg_mm.models.layers.blockwise_affinity_step import (
    affinity_loss_blockwise, affinity_step_blockwise, random_walk_blockwise)
from tests.probes import LargestTensor

F64 = torch.float64
RTOL = 1e-4


def _inputs(num=41, dim=6, dtype=F64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    embed = (0.5 * torch.randn(dim, num, generator=gen)).to(dtype)
    sem = torch.rand(3, num, generator=gen) > 0.55  # overlapping rows
    ids = torch.randint(0, 5, (num, ), generator=gen)
    inst = ids[None] == torch.arange(1, 5)[:, None]
    prob = torch.softmax(torch.randn(4, num, generator=gen), 0).to(dtype)
    walk_w = torch.randn(4, num, generator=gen).to(dtype)
    return embed, sem, inst, prob, walk_w


def _objective(losses, walked, walk_w, loss_w):
    """A scalar that weighs every output differently."""
    return (losses * loss_w).sum() + (walked * walk_w).sum()


def _dense(embed, prob, members, power=1.0, kind='sigmoid'):
    losses = [affinity_loss_dense(embed, m, kind) for m in members]
    losses = torch.stack(losses) if losses else embed.new_zeros(0)
    return losses, random_walk_dense(embed, prob, power, kind)


def fused_and_dense(embed, prob, members, walk_w, loss_w, block_size,
                    power=1.0, kind='sigmoid'):
    """(losses, walked, dE, dP) of the dense reference and of the fused
    step, for one objective that weighs every output differently."""
    results = []
    for fused in (False, True):
        e = embed.clone().requires_grad_()
        p = prob.clone().requires_grad_()
        if fused:
            losses, walked = affinity_step_blockwise(e, p, members,
                                                     block_size, power, kind)
        else:
            losses, walked = _dense(e, p, members, power, kind)
        grads = torch.autograd.grad(
            _objective(losses, walked, walk_w, loss_w), (e, p))
        results.append((losses.detach(), walked.detach()) + grads)
    return results


@pytest.mark.parametrize('block_size', [4, 16, 41, 64])
@pytest.mark.parametrize('which', ['both', 'sem', 'none'])
def test_step_matches_dense_values_and_grads(block_size, which):
    embed, sem, inst, prob, walk_w = _inputs()
    members = dict(both=[sem, inst], sem=[sem], none=[])[which]
    loss_w = torch.tensor([0.7, -1.3], dtype=F64)[:len(members)]
    results = fused_and_dense(embed, prob, members, walk_w, loss_w,
                              block_size)
    for got, want in zip(results[1], results[0]):
        assert_close(got, want, rtol=1e-4, atol=1e-12)
    assert results[0][2].abs().max() > 1e-6  # not a vacuous comparison


def test_step_float32_and_zero_loss_weight():
    embed, sem, inst, prob, walk_w = _inputs(dtype=torch.float32)
    prob = prob.float()
    e = embed.clone().requires_grad_()
    losses, walked = affinity_step_blockwise(e, prob, [sem, inst], 8)
    # only the T2 loss is used: the T1 term must not leak into the gradient
    grad, = torch.autograd.grad(losses[1], e)
    e2 = embed.clone().requires_grad_()
    want, = torch.autograd.grad(affinity_loss_dense(e2, inst), e2)
    assert_close(grad, want, rtol=1e-4, atol=1e-7)
    assert_close(walked, random_walk_dense(embed, prob), rtol=1e-4,
                 atol=1e-7)


def test_gradcheck_step():
    embed, sem, inst, prob, _ = _inputs(num=9, dim=3)
    e = embed.clone().requires_grad_()
    p = prob.clone().requires_grad_()
    assert torch.autograd.gradcheck(
        lambda e_, p_: affinity_step_blockwise(e_, p_, [sem, inst], 4),
        (e, p))


@pytest.mark.parametrize('power', [0.5, 3.0, 8.0])
@pytest.mark.parametrize('block_size', [7, 64])
def test_walk_power_matches_dense(power, block_size):
    """Walk on A ** power: values and gradients equal the dense reference
    (losses keep A), and the power really changes the walk."""
    embed, sem, inst, prob, walk_w = _inputs()
    loss_w = torch.tensor([0.7, -1.3], dtype=F64)
    results = fused_and_dense(embed, prob, [sem, inst], walk_w, loss_w,
                              block_size, power)
    for got, want in zip(results[1], results[0]):
        assert_close(got, want, rtol=1e-4, atol=1e-12)
    plain = random_walk_dense(embed, prob)
    assert (results[1][1] - plain).abs().max() > 1e-3


def test_walk_power_gradcheck_and_sharpening():
    embed, sem, inst, prob, _ = _inputs(num=9, dim=3)
    e = embed.clone().requires_grad_()
    p = prob.clone().requires_grad_()
    assert torch.autograd.gradcheck(
        lambda e_, p_: affinity_step_blockwise(e_, p_, [sem, inst], 4, 3.0),
        (e, p))
    # one cell of class 1 among many background cells: a weak affinity
    # (sigmoid(-1.4) ~ 0.2) to each of them averages it away at power 1,
    # power 8 keeps it (hand-made 1-d embedding, N = 41)
    num = 41  # object cell 0, background cells 1..40
    embed = torch.zeros(2, num, dtype=F64)
    embed[:, 0] = torch.tensor([2.0, 0.0])  # sigmoid(4) = 0.98 with itself
    embed[:, 1:] = torch.tensor([-0.7, 2.0])[:, None]  # bg-bg sigmoid(4.49)
    # object-bg: 2 * -0.7 = -1.4 -> sigmoid 0.198
    prob = torch.zeros(2, num, dtype=F64)
    prob[1, 0] = 1.0
    prob[0, 1:] = 1.0
    plain = random_walk_dense(embed, prob)[1, 0]
    sharp = affinity_step_blockwise(embed, prob, (), 8, 8.0)[1][1, 0]
    assert plain < 0.15  # 0.98 / (0.98 + 40 * 0.198)
    assert sharp > 0.9


def test_step_never_materialises_n_by_n():
    num, block = 60, 8
    embed, _, _, _, _ = _inputs(num=num, dim=4)
    sem = torch.rand(3, num) > 0.5
    inst = torch.rand(5, num) > 0.8
    e = embed.clone().requires_grad_()
    p = torch.softmax(torch.randn(4, num, dtype=F64), 0).requires_grad_()
    with LargestTensor() as mode:
        losses, walked = affinity_step_blockwise(e, p, [sem, inst], block)
        (losses.sum() + walked.sum()).backward()
    assert 0 < mode.max_numel <= max(block, 2 * 4 + 2) * num


def test_step_bad_inputs_raise():
    embed = torch.randn(4, 10)
    with pytest.raises(ValueError, match='membership'):
        affinity_step_blockwise(embed, torch.ones(2, 10), [torch.ones(2, 9)])
    with pytest.raises(ValueError, match='block_size'):
        affinity_step_blockwise(embed, torch.ones(2, 10), [], block_size=0)
    with pytest.raises(ValueError, match='power'):
        affinity_step_blockwise(embed, torch.ones(2, 10), [], 4, 0.0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_step_cuda_matches_cpu():
    embed, sem, inst, prob, walk_w = _inputs(num=50, dtype=torch.float32)
    outs = []
    for device in ('cpu', 'cuda'):
        e = embed.to(device).requires_grad_()
        p = prob.float().to(device).requires_grad_()
        losses, walked = affinity_step_blockwise(
            e, p, [sem.to(device), inst.to(device)], 16)
        grads = torch.autograd.grad(
            _objective(losses, walked, walk_w.float().to(device),
                       torch.tensor([0.5, 2.0], device=device)), (e, p))
        outs.append([t.detach().cpu() for t in (losses, walked) + grads])
    for got, want in zip(outs[1], outs[0]):
        assert_close(got, want, rtol=1e-3, atol=1e-5)


def test_half_inputs_and_autocast_compute_in_float32():
    """Class-balance weights (~1/N^2) underflow in float16: half inputs are
    upcast and autocast is switched off inside, so losses and gradients
    equal the float32 computation on the same (rounded) values."""
    embed, sem, inst, prob, walk_w = _inputs(num=2000, dim=8)
    embed16, prob16 = embed.half(), prob.half()
    ref_e = embed16.float().requires_grad_()
    ref_losses, ref_walk = _dense(ref_e, prob16.float(), [sem, inst])
    ref_grad, = torch.autograd.grad(ref_losses.sum(), ref_e)
    e = embed16.clone().requires_grad_()
    losses, walked = affinity_step_blockwise(e, prob16, [sem, inst], 64)
    assert losses.dtype == torch.float32 and walked.dtype == torch.float32
    grad, = torch.autograd.grad(losses.sum(), e)
    assert grad.dtype == torch.float16
    assert_close(losses, ref_losses.detach(), rtol=1e-4, atol=0)
    assert_close(walked, ref_walk.detach(), rtol=1e-4, atol=1e-7)
    assert_close(grad.float(), ref_grad, rtol=2e-3, atol=1e-6)
    # inside a bfloat16 autocast region the matmuls stay in float32 too
    e32 = embed.float().requires_grad_()
    with torch.autocast(device_type='cpu', dtype=torch.bfloat16):
        losses_ac, _ = affinity_step_blockwise(e32, prob.float(),
                                               [sem, inst], 64)
        loss_ac = affinity_loss_blockwise(e32, sem, 64)
    want = torch.stack([affinity_loss_dense(embed.float(), m)
                        for m in (sem, inst)])
    assert_close(losses_ac, want, rtol=1e-5, atol=0)
    assert_close(loss_ac, want[0], rtol=1e-5, atol=0)


# thin wrappers: the walk alone and a loss alone


def _loss_and_grad(fn, embed, member, **kwargs):
    embed = embed.clone().requires_grad_()
    loss = fn(embed, member, **kwargs)
    grad, = torch.autograd.grad(loss, embed)
    return loss.detach(), grad


@pytest.mark.parametrize('block_size', [5, 16, 37, 100])
@pytest.mark.parametrize('target', ['sem', 'inst'])
def test_loss_blockwise_matches_dense(block_size, target):
    embed, sem, inst, _, _ = _inputs(37)
    member = sem if target == 'sem' else inst
    loss_d, grad_d = _loss_and_grad(affinity_loss_dense, embed, member)
    loss_b, grad_b = _loss_and_grad(
        affinity_loss_blockwise, embed, member, block_size=block_size)
    assert_close(loss_b, loss_d, rtol=RTOL, atol=1e-12)
    assert_close(grad_b, grad_d, rtol=RTOL, atol=1e-12)
    assert grad_d.abs().max() > 1e-6  # the comparison is not vacuous


@pytest.mark.parametrize('block_size', [5, 16, 37, 100])
def test_random_walk_blockwise_matches_dense(block_size):
    embed, _, _, prob, weight = _inputs(37)
    outs = []
    for fn, kwargs in [(random_walk_dense, {}),
                       (random_walk_blockwise, dict(block_size=block_size))]:
        e = embed.clone().requires_grad_()
        p = prob.clone().requires_grad_()
        out = fn(e, p, **kwargs)
        grads = torch.autograd.grad((out * weight).sum(), (e, p))
        outs.append((out.detach(), *grads))
    for got, ref in zip(outs[1], outs[0]):
        assert_close(got, ref, rtol=RTOL, atol=1e-12)
        assert ref.abs().max() > 1e-6


def test_float32_noncontiguous_matches_dense():
    embed, sem, _, prob, weight = _inputs(num=150, dim=16, seed=1)
    # (D, N) view of an (N, D) tensor: non-contiguous embedding
    embed32 = embed.t().contiguous().float().t()
    assert not embed32.is_contiguous()
    loss_d, grad_d = _loss_and_grad(affinity_loss_dense, embed32, sem)
    loss_b, grad_b = _loss_and_grad(
        affinity_loss_blockwise, embed32, sem, block_size=32)
    assert loss_b.dtype == torch.float32 and grad_b.shape == (16, 150)
    assert_close(loss_b, loss_d, rtol=RTOL, atol=1e-7)
    assert_close(grad_b, grad_d, rtol=1e-3, atol=1e-7)
    e = embed32.detach().requires_grad_()
    out_d = random_walk_dense(e, prob.float())
    g_d, = torch.autograd.grad((out_d * weight.float()).sum(), e)
    out_b = random_walk_blockwise(e, prob.float(), block_size=32)
    g_b, = torch.autograd.grad((out_b * weight.float()).sum(), e)
    assert_close(out_b, out_d, rtol=RTOL, atol=1e-6)
    assert_close(g_b, g_d, rtol=1e-3, atol=1e-6)


def test_strided_inputs_match_dense():
    embed, sem, _, prob, weight = _inputs(num=74, seed=9)
    embed = embed[:, ::2]  # neither row- nor column-major
    prob = prob.t().contiguous().t()[:, ::2]
    e = embed.clone().requires_grad_()
    assert not embed.is_contiguous() and not prob.is_contiguous()
    loss_d, grad_d = _loss_and_grad(affinity_loss_dense, embed, sem[:, ::2])
    loss_b, grad_b = _loss_and_grad(
        affinity_loss_blockwise, embed, sem[:, ::2], block_size=10)
    assert_close(loss_b, loss_d, rtol=RTOL, atol=1e-12)
    assert_close(grad_b, grad_d, rtol=RTOL, atol=1e-12)
    results = []
    for fn, kwargs in [(random_walk_dense, {}),
                       (random_walk_blockwise, dict(block_size=10))]:
        p = prob.detach().requires_grad_()
        out = fn(e, p, **kwargs)
        results.append((out, *torch.autograd.grad((out * weight[:, ::2]).sum(),
                                                  (e, p))))
    for got, ref in zip(*results[::-1]):
        assert_close(got, ref, rtol=RTOL, atol=1e-12)


def test_gradcheck_loss():
    gen = torch.Generator().manual_seed(3)
    embed = torch.randn(3, 7, generator=gen, dtype=F64).requires_grad_()
    member = torch.tensor([[1, 1, 0, 0, 1, 0, 0], [0, 1, 1, 0, 0, 0, 1]],
                          dtype=F64)
    assert torch.autograd.gradcheck(
        lambda e: affinity_loss_blockwise(e, member, block_size=3), (embed, ))


def test_gradcheck_random_walk():
    gen = torch.Generator().manual_seed(4)
    embed = torch.randn(3, 7, generator=gen, dtype=F64).requires_grad_()
    prob = torch.rand(2, 7, generator=gen, dtype=F64).requires_grad_()
    assert torch.autograd.gradcheck(
        lambda e, p: random_walk_blockwise(e, p, block_size=3), (embed, prob))


def test_overlapping_classes_count_pairs_once():
    # class 0 = {0, 1}, class 1 = {1, 2}: only (0, 2) and (2, 0) negative
    member = torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]])
    embed = torch.zeros(4, 3, dtype=F64)  # A = 0.5 everywhere
    expected = 0.25 * 7 / 8 + 0.25 * 2 / 3
    for block_size in (1, 2, 3):
        loss = affinity_loss_blockwise(embed, member, block_size=block_size)
        assert loss.item() == pytest.approx(expected, rel=1e-12)
    assert affinity_loss_dense(embed, member).item() == pytest.approx(
        expected, rel=1e-12)
    # bool and float membership give the same loss
    embed, sem, _, _, _ = _inputs(37, seed=5)
    assert (sem.sum(0) > 1).any()
    assert_close(
        affinity_loss_blockwise(embed, sem, block_size=8),
        affinity_loss_blockwise(embed, sem.to(F64), block_size=8))


def test_many_rows_use_multiword_patterns():
    # K > 62 rows: pixels are grouped by two 62-bit pattern codes
    embed = _inputs(num=90, dim=5, seed=8)[0]
    gen = torch.Generator().manual_seed(8)
    ids = torch.randint(0, 71, (90, ), generator=gen)
    member = ids[None] == torch.arange(1, 71)[:, None]  # (70, 90)
    member[3, :10] = True  # overlaps with row 3
    loss_d, grad_d = _loss_and_grad(affinity_loss_dense, embed, member)
    loss_b, grad_b = _loss_and_grad(
        affinity_loss_blockwise, embed, member, block_size=16)
    assert_close(loss_b, loss_d, rtol=RTOL, atol=1e-12)
    assert_close(grad_b, grad_d, rtol=RTOL, atol=1e-12)


@pytest.mark.parametrize(
    'member', [
        torch.zeros(0, 37, dtype=torch.bool),
        torch.zeros(3, 37, dtype=torch.bool),
        torch.ones(2, 37, dtype=torch.bool),
    ],
    ids=['no_rows', 'all_negative', 'all_positive'])
def test_degenerate_targets_are_finite(member):
    embed = _inputs(37)[0]
    loss_d, grad_d = _loss_and_grad(affinity_loss_dense, embed, member)
    loss_b, grad_b = _loss_and_grad(
        affinity_loss_blockwise, embed, member, block_size=16)
    assert torch.isfinite(loss_b) and torch.isfinite(grad_b).all()
    assert_close(loss_b, loss_d, rtol=RTOL, atol=1e-12)
    assert_close(grad_b, grad_d, rtol=RTOL, atol=1e-12)
    aff = torch.sigmoid(embed.t() @ embed)
    if member.any():  # all positive: 0.5 * sum(1 - A) / (N^2 + 1)
        expected = 0.5 * (1 - aff).sum() / (37**2 + 1)
    else:  # all negative: 0.5 * sum(A) / (N^2 + 1)
        expected = 0.5 * aff.sum() / (37**2 + 1)
    assert_close(loss_b, expected, rtol=1e-10, atol=0)


def test_random_walk_preserves_column_sums():
    embed, _, _, prob, _ = _inputs(37, seed=6)
    assert_close(prob.sum(0), torch.ones(37, dtype=F64))
    out = random_walk_blockwise(embed, prob, block_size=10)
    assert out.shape == (4, 37)
    assert_close(out.sum(0), torch.ones(37, dtype=F64))
    assert (out > 0).all()


def test_partial_requires_grad_and_no_grad():
    embed, sem, _, prob, weight = _inputs(37, seed=7)
    # only prob needs a gradient
    p = prob.clone().requires_grad_()
    out = random_walk_blockwise(embed, p, block_size=8)
    g_b, = torch.autograd.grad((out * weight).sum(), p)
    p2 = prob.clone().requires_grad_()
    g_d, = torch.autograd.grad((random_walk_dense(embed, p2) * weight).sum(),
                               p2)
    assert_close(g_b, g_d, rtol=RTOL, atol=1e-12)
    # only embed needs a gradient
    e = embed.clone().requires_grad_()
    g_b, = torch.autograd.grad(
        (random_walk_blockwise(e, prob, block_size=8) * weight).sum(), e)
    g_d, = torch.autograd.grad((random_walk_dense(e, prob) * weight).sum(), e)
    assert_close(g_b, g_d, rtol=RTOL, atol=1e-12)
    with torch.no_grad():
        loss = affinity_loss_blockwise(e, sem, block_size=8)
    assert not loss.requires_grad
    assert_close(loss, affinity_loss_dense(embed, sem), rtol=RTOL, atol=0)


def test_blockwise_never_materialises_n_by_n():
    num, block = 60, 8
    embed, _, _, _, _ = _inputs(num=num, dim=4)
    sem = torch.rand(3, num) > 0.5
    prob = torch.softmax(torch.randn(4, num, dtype=F64), 0)
    e = embed.clone().requires_grad_()
    p = prob.clone().requires_grad_()
    with LargestTensor() as mode:
        loss = affinity_loss_blockwise(e, sem, block_size=block)
        out = random_walk_blockwise(e, p, block_size=block)
        (loss + out.sum()).backward()
    # (N, 2K + 2) operands of the random-walk backward are the widest
    # besides the (block, N) tiles; N x N = 3600 never appears
    assert 0 < mode.max_numel <= max(block, 2 * 4 + 2) * num
    with LargestTensor() as mode:
        affinity_loss_dense(e, sem)
    assert mode.max_numel == num * num  # the probe sees N x N tensors


def test_bad_inputs_raise():
    embed = torch.randn(4, 10)
    with pytest.raises(ValueError, match='membership'):
        affinity_loss_blockwise(embed, torch.ones(2, 9))
    with pytest.raises(ValueError, match='block_size'):
        affinity_loss_blockwise(embed, torch.ones(2, 10), block_size=0)
    with pytest.raises(ValueError, match='embed'):
        random_walk_blockwise(torch.randn(4, 10, 1), torch.ones(2, 10))
    # mixed float32 / float64 inputs are computed in float64
    assert random_walk_blockwise(embed, torch.ones(2, 10,
                                                   dtype=F64)).dtype == F64


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_cuda_matches_cpu():
    embed, sem, inst, prob, weight = _inputs(num=50, dtype=torch.float32)
    for member in (sem, inst):
        loss_c, grad_c = _loss_and_grad(
            affinity_loss_blockwise, embed, member, block_size=16)
        loss_g, grad_g = _loss_and_grad(
            affinity_loss_blockwise,
            embed.cuda(),
            member.cuda(),
            block_size=16)
        assert_close(loss_g.cpu(), loss_c, rtol=RTOL, atol=1e-7)
        assert_close(grad_g.cpu(), grad_c, rtol=1e-3, atol=1e-7)
    e = embed.cuda().requires_grad_()
    out = random_walk_blockwise(e, prob.float().cuda(), block_size=16)
    out_ref = random_walk_dense(embed, prob.float())
    assert_close(out.cpu(), out_ref, rtol=RTOL, atol=1e-6)
