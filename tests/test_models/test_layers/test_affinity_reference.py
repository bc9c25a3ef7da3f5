# Copyright (c) p2seg_mm contributors. All rights reserved.
"""The references: dense loss and walk against hand-computed values, and
the eager block-wise loss (benchmark baseline) against the dense loss."""
import math

import pytest
import torch
from torch.testing import assert_close

from p2seg_mm.models.layers.affinity_reference import (
    affinity_loss_blockwise_eager, affinity_loss_dense, random_walk_dense)
from p2seg_mm.models.layers.blockwise_affinity_step import (
    affinity_loss_blockwise, random_walk_blockwise)
from tests.probes import LargestTensor

F64 = torch.float64
RTOL = 1e-4


def _sig(x):
    return 1.0 / (1.0 + math.exp(-x))


def _inputs(num=37, dim=6, dtype=F64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    embed = (0.5 * torch.randn(dim, num, generator=gen)).to(dtype)
    # semantic: 3 classes, some cells in two classes, some in none
    sem = torch.rand(3, num, generator=gen) > 0.55
    # instance: ids 0..4 with 0 = no instance -> one-hot rows 1..4
    ids = torch.randint(0, 5, (num, ), generator=gen)
    inst = ids[None] == torch.arange(1, 5)[:, None]
    return embed, sem, inst


def _loss_and_grad(fn, embed, member, **kwargs):
    embed = embed.clone().requires_grad_()
    loss = fn(embed, member, **kwargs)
    grad, = torch.autograd.grad(loss, embed)
    return loss.detach(), grad


def test_loss_hand_computed_three_pixels():
    # pixels e0 = (1, 0), e1 = (1, 1), e2 = (0, -1); pixels 0, 1 in class 0
    embed = torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, -1.0]], dtype=F64)
    member = torch.tensor([[True, True, False]])
    # s00 = 1, s01 = 1, s11 = 2, s02 = 0, s12 = -1, s22 = 1
    # positives: (0,0) (0,1) (1,0) (1,1) -> N+ = 4; negatives: N- = 5
    pos = (1 - _sig(1)) + 2 * (1 - _sig(1)) + (1 - _sig(2))
    neg = 2 * _sig(0) + 2 * _sig(-1) + _sig(1)
    expected = 0.5 * pos / (4 + 1) + 0.5 * neg / (5 + 1)
    for loss in (affinity_loss_dense(embed, member),
                 affinity_loss_blockwise(embed, member, block_size=2),
                 affinity_loss_blockwise_eager(embed, member, block_size=2)):
        assert loss.item() == pytest.approx(expected, rel=1e-12)


def test_random_walk_hand_computed_two_pixels():
    # e0 = (1, 0), e1 = (0, 1): A = [[s(1), 0.5], [0.5, s(1)]]
    embed = torch.eye(2, dtype=F64)
    prob = torch.tensor([[0.8, 0.1], [0.2, 0.9]], dtype=F64)
    a = _sig(1)
    expected = torch.tensor([[(a * 0.8 + 0.5 * 0.1) / (a + 0.5),
                              (0.5 * 0.8 + a * 0.1) / (a + 0.5)],
                             [(a * 0.2 + 0.5 * 0.9) / (a + 0.5),
                              (0.5 * 0.2 + a * 0.9) / (a + 0.5)]],
                            dtype=F64)
    assert_close(random_walk_dense(embed, prob), expected)
    assert_close(random_walk_blockwise(embed, prob, block_size=1), expected)


@pytest.mark.parametrize('block_size', [5, 16, 37, 100])
@pytest.mark.parametrize('target', ['sem', 'inst'])
def test_eager_loss_matches_dense_and_fused(block_size, target):
    embed, sem, inst = _inputs()
    member = sem if target == 'sem' else inst
    loss_d, grad_d = _loss_and_grad(affinity_loss_dense, embed, member)
    loss_e, grad_e = _loss_and_grad(
        affinity_loss_blockwise_eager, embed, member, block_size=block_size)
    assert_close(loss_e, loss_d, rtol=RTOL, atol=1e-12)
    assert_close(grad_e, grad_d, rtol=RTOL, atol=1e-12)
    assert grad_d.abs().max() > 1e-6  # the comparison is not vacuous
    # the two block-wise implementations agree to rounding
    loss_f, grad_f = _loss_and_grad(
        affinity_loss_blockwise, embed, member, block_size=block_size)
    assert_close(loss_f, loss_e, rtol=1e-12, atol=0)
    assert_close(grad_f, grad_e, rtol=1e-10, atol=1e-15)


def test_eager_loss_float32_half_and_strides():
    embed, sem, _ = _inputs(num=150, dim=16, seed=1)
    # (D, N) view of an (N, D) tensor: non-contiguous embedding
    embed32 = embed.t().contiguous().float().t()
    assert not embed32.is_contiguous()
    loss_d, grad_d = _loss_and_grad(affinity_loss_dense, embed32, sem)
    loss_e, grad_e = _loss_and_grad(
        affinity_loss_blockwise_eager, embed32, sem, block_size=32)
    assert loss_e.dtype == torch.float32 and grad_e.shape == (16, 150)
    assert_close(loss_e, loss_d, rtol=RTOL, atol=1e-7)
    assert_close(grad_e, grad_d, rtol=1e-3, atol=1e-7)
    # half inputs are computed in float32, also inside autocast
    embed16 = embed.half()
    want = affinity_loss_dense(embed16.float(), sem)
    with torch.autocast(device_type='cpu', dtype=torch.bfloat16):
        loss16 = affinity_loss_blockwise_eager(embed16, sem, 32)
    assert loss16.dtype == torch.float32
    assert_close(loss16, want, rtol=1e-5, atol=0)


def test_eager_loss_gradcheck_and_no_grad():
    gen = torch.Generator().manual_seed(3)
    embed = torch.randn(3, 7, generator=gen, dtype=F64).requires_grad_()
    member = torch.tensor([[1, 1, 0, 0, 1, 0, 0], [0, 1, 1, 0, 0, 0, 1]],
                          dtype=F64)
    assert torch.autograd.gradcheck(
        lambda e: affinity_loss_blockwise_eager(e, member, block_size=3),
        (embed, ))
    with torch.no_grad():
        loss = affinity_loss_blockwise_eager(embed, member, block_size=3)
    assert not loss.requires_grad
    assert_close(loss, affinity_loss_dense(embed.detach(), member),
                 rtol=RTOL, atol=0)


@pytest.mark.parametrize(
    'member', [
        torch.zeros(0, 37, dtype=torch.bool),
        torch.zeros(3, 37, dtype=torch.bool),
        torch.ones(2, 37, dtype=torch.bool),
    ],
    ids=['no_rows', 'all_negative', 'all_positive'])
def test_eager_loss_degenerate_targets(member):
    embed = _inputs()[0]
    loss_d, grad_d = _loss_and_grad(affinity_loss_dense, embed, member)
    loss_e, grad_e = _loss_and_grad(
        affinity_loss_blockwise_eager, embed, member, block_size=16)
    assert torch.isfinite(loss_e) and torch.isfinite(grad_e).all()
    assert_close(loss_e, loss_d, rtol=RTOL, atol=1e-12)
    assert_close(grad_e, grad_d, rtol=RTOL, atol=1e-12)


def test_memory_eager_streams_dense_materialises():
    num, block = 60, 8
    embed, sem, _ = _inputs(num=num, dim=4)
    e = embed.clone().requires_grad_()
    with LargestTensor() as mode:
        affinity_loss_blockwise_eager(e, sem, block_size=block).backward()
    assert 0 < mode.max_numel <= block * num
    with LargestTensor() as mode:
        affinity_loss_dense(e, sem)
        random_walk_dense(e, torch.ones(2, num, dtype=F64))
    assert mode.max_numel == num * num  # the probe sees N x N tensors


def test_reference_bad_inputs_raise():
    embed = torch.randn(4, 10)
    with pytest.raises(ValueError, match='membership'):
        affinity_loss_dense(embed, torch.ones(2, 9))
    with pytest.raises(ValueError, match='prob'):
        random_walk_dense(embed, torch.ones(2, 9))
    with pytest.raises(ValueError, match='block_size'):
        affinity_loss_blockwise_eager(embed, torch.ones(2, 10), block_size=0)
