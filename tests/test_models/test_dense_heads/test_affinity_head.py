# Copyright (c) p2seg_mm contributors. All rights reserved.
import math

import pytest
import torch

from p2seg_mm.models.dense_heads.affinity_head import P2SegAffinityHead


def _head(**kwargs):
    cfg = dict(in_channels=4, embed_dims=6, block_size=7)
    cfg.update(kwargs)
    return P2SegAffinityHead(**cfg)


def test_forward_shape_and_init():
    head = _head()
    head.init_weights()
    assert head(torch.randn(2, 4, 5, 6)).shape == (2, 6, 5, 6)
    assert head.conv.bias.abs().max() == 0
    assert head.conv.weight.std() < 0.01


def test_loss_empty_zero_and_one_instance_positive():
    head = _head()
    embed = torch.randn(2, 6, 4, 5, requires_grad=True)
    empty = [torch.zeros(0, 20), torch.zeros(2, 20)]
    zero = head.loss(embed, empty, 'inst')
    assert zero.item() == 0 and zero.requires_grad
    member = torch.zeros(1, 20)
    member[0, :6] = 1
    loss = head.loss(embed, [member, torch.zeros(0, 20)], 'sem')
    assert torch.isfinite(loss) and loss.item() > 0
    (loss + zero).backward()
    assert embed.grad[0].abs().sum() > 0 and embed.grad[1].abs().sum() == 0
    with pytest.raises(ValueError, match="'sem' or 'inst'"):
        head.loss(embed, empty, 'foo')


def test_blockwise_equals_dense():
    torch.manual_seed(0)
    embed = torch.randn(1, 6, 4, 5, dtype=torch.float64)
    member = (torch.rand(2, 20) > 0.5).double()
    block = _head(blockwise=True, loss_inst_weight=0.25)
    dense = _head(blockwise=False, loss_inst_weight=0.25)
    a = block.loss(embed, [member], 'inst')
    b = dense.loss(embed, [member], 'inst')
    assert a.item() == pytest.approx(b.item(), rel=1e-9)
    logits = torch.randn(1, 4, 4, 5, dtype=torch.float64)
    ch = [torch.tensor([0, 2])]
    torch.testing.assert_close(
        block.refine(logits, embed, ch), dense.refine(logits, embed, ch))


def test_refine_returns_log_distribution_with_grad():
    head = _head()
    logits = torch.randn(2, 4, 3, 4, requires_grad=True)
    embed = torch.randn(2, 6, 3, 4, requires_grad=True)
    channels = [torch.tensor([0, 2]), torch.tensor([0, 1, 3])]
    out = head.refine(logits, embed, channels)
    assert out.shape == logits.shape
    torch.testing.assert_close(out.exp().sum(1), torch.ones(2, 3, 4))
    # absent channels carry ~eps probability
    assert out[0, 1].exp().max() < 2e-6 and out[1, 2].exp().max() < 2e-6
    out[:, 2].sum().backward()
    assert logits.grad.abs().sum() > 0 and embed.grad.abs().sum() > 0


def test_refine_with_zero_embedding_averages_probabilities():
    # E = 0 -> A = sigmoid(0) = 0.5 everywhere -> R is the image mean of P
    head = _head()
    logits = torch.randn(1, 3, 2, 3)
    out = head.refine(logits, torch.zeros(1, 6, 2, 3),
                      [torch.tensor([0, 1, 2])])
    mean = logits.softmax(1).mean(dim=(2, 3))[0]
    expected = (mean + 1e-6) / (1 + 3e-6)
    torch.testing.assert_close(out[0].exp(), expected[:, None,
                                                      None].expand(3, 2, 3))
    # background only: every pixel is background
    only_bg = head.refine(logits, torch.zeros(1, 6, 2, 3), [torch.tensor([0])])
    assert only_bg[0, 0].min().item() == pytest.approx(
        -math.log(1 + 3e-6) + math.log(1 + 1e-6), abs=1e-6)
    with pytest.raises(ValueError, match='subset'):
        head.refine(logits, torch.zeros(1, 6, 2, 3), [torch.tensor([5])])


def test_pooled_affinity_for_demos():
    head = _head(pool=2)
    embed = torch.randn(1, 6, 5, 6, requires_grad=True)
    member = torch.zeros(1, 9)  # ceil(5 / 2) * ceil(6 / 2) cells
    member[0, :4] = 1
    loss = head.loss(embed, [member], 'sem')
    assert loss.item() > 0
    loss.backward()
    assert embed.grad.abs().sum() > 0
    with pytest.raises(ValueError, match='pool=2'):
        head.loss(embed, [torch.ones(1, 30)], 'sem')
    out = head.refine(torch.randn(1, 3, 5, 6), embed, [torch.tensor([0, 2])])
    assert out.shape == (1, 3, 5, 6)
    torch.testing.assert_close(out.exp().sum(1), torch.ones(1, 5, 6))
    with pytest.raises(ValueError, match='positive'):
        _head(pool=0)


@pytest.mark.parametrize('blockwise', [True, False])
def test_refine_with_losses_equals_refine_and_loss(blockwise):
    """The fused path gives the values and gradients of the separate
    calls, skips targets without a positive pair, and keeps weights."""
    torch.manual_seed(0)
    head = _head(blockwise=blockwise, loss_sem_weight=0.3,
                 loss_inst_weight=0.7, pool=2).double()
    embed = torch.randn(2, 6, 6, 7, dtype=torch.float64)
    logits = torch.randn(2, 4, 6, 7, dtype=torch.float64)
    channels = [torch.tensor([0, 1, 3]), torch.tensor([0, 2])]
    num = 3 * 4  # pooled grid
    sem = [(torch.rand(2, num) > 0.5).double(), torch.zeros(1, num)]
    inst = [(torch.rand(3, num) > 0.7).double(), torch.zeros(0, num)]
    weight = torch.randn(2, 4, 6, 7, dtype=torch.float64)
    grads = []
    for fused in (False, True):
        e = embed.clone().requires_grad_()
        lg = logits.clone().requires_grad_()
        if fused:
            out, losses = head.refine_with_losses(lg, e, channels,
                                                  dict(sem=sem, inst=inst))
            l_sem, l_inst = losses['sem'], losses['inst']
        else:
            out = head.refine(lg, e, channels)
            l_sem = head.loss(e, sem, 'sem')
            l_inst = head.loss(e, inst, 'inst')
        total = (out * weight).sum() + 2 * l_sem - 3 * l_inst
        grads.append((out.detach(), l_sem.detach(), l_inst.detach()) +
                     torch.autograd.grad(total, (e, lg)))
    for got, want in zip(grads[1], grads[0]):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-10)
    assert grads[0][1] > 0 and grads[0][2] > 0
    with pytest.raises(ValueError, match='1 membership matrices for a batch'):
        head.refine_with_losses(logits, embed, channels, dict(sem=sem[:1]))
