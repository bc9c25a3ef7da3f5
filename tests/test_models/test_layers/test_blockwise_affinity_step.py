# Copyright (c) p2seg_mm contributors. All rights reserved.
"""The fused affinity step equals the separate dense references."""
import pytest
import torch
from torch.testing import assert_close

from p2seg_mm.models.layers.blockwise_affinity import (affinity_loss_blockwise,
                                                       affinity_loss_dense,
                                                       random_walk_dense)
from p2seg_mm.models.layers.blockwise_affinity_step import \
    affinity_step_blockwise
from tests.probes import LargestTensor

F64 = torch.float64


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


def _dense(embed, prob, members):
    losses = [affinity_loss_dense(embed, m) for m in members]
    losses = torch.stack(losses) if losses else embed.new_zeros(0)
    return losses, random_walk_dense(embed, prob)


@pytest.mark.parametrize('block_size', [4, 16, 41, 64])
@pytest.mark.parametrize('which', ['both', 'sem', 'none'])
def test_step_matches_dense_values_and_grads(block_size, which):
    embed, sem, inst, prob, walk_w = _inputs()
    members = dict(both=[sem, inst], sem=[sem], none=[])[which]
    loss_w = torch.tensor([0.7, -1.3], dtype=F64)[:len(members)]
    results = []
    for fused in (False, True):
        e = embed.clone().requires_grad_()
        p = prob.clone().requires_grad_()
        if fused:
            losses, walked = affinity_step_blockwise(e, p, members,
                                                     block_size)
        else:
            losses, walked = _dense(e, p, members)
        grads = torch.autograd.grad(
            _objective(losses, walked, walk_w, loss_w), (e, p))
        results.append((losses.detach(), walked.detach()) + grads)
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
    results = []
    for fused in (False, True):
        e = embed.clone().requires_grad_()
        p = prob.clone().requires_grad_()
        if fused:
            losses, walked = affinity_step_blockwise(e, p, [sem, inst],
                                                     block_size, power)
        else:
            losses = torch.stack(
                [affinity_loss_dense(e, m) for m in (sem, inst)])
            walked = random_walk_dense(e, p, power)
        grads = torch.autograd.grad(
            _objective(losses, walked, walk_w, loss_w), (e, p))
        results.append((losses.detach(), walked.detach()) + grads)
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
