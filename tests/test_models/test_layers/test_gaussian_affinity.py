# Copyright (c) p2seg_mm contributors. All rights reserved.
"""The Gaussian affinity ``exp(-|e_i - e_j|^2)`` (``kind='gaussian'``):
block-wise step against the dense autograd reference, hand-computed values,
and the head's switch."""
import math

import pytest
import torch
from torch.testing import assert_close

from p2seg_mm.models.dense_heads import P2SegAffinityHead
from p2seg_mm.models.layers.affinity_reference import (affinity_loss_dense,
                                                       affinity_matrix,
                                                       random_walk_dense)
from p2seg_mm.models.layers.blockwise_affinity_step import (
    affinity_loss_blockwise, affinity_step_blockwise, random_walk_blockwise)

from tests.test_models.test_layers.test_blockwise_affinity_step import (
    _inputs, fused_and_dense)

F64 = torch.float64


def test_gaussian_matrix_hand_computed():
    # e_0 = (0, 0), e_1 = (1, 0), e_2 = (1, 2): squared distances 1, 5, 4
    embed = torch.tensor([[0.0, 1.0, 1.0], [0.0, 0.0, 2.0]], dtype=F64)
    aff = affinity_matrix(embed, 'gaussian')
    want = torch.tensor([[1, math.exp(-1), math.exp(-5)],
                         [math.exp(-1), 1, math.exp(-4)],
                         [math.exp(-5), math.exp(-4), 1]], dtype=F64)
    assert_close(aff, want)
    # the sigmoid kind of the same embedding: sigmoid(E^T E)
    assert_close(affinity_matrix(embed, 'sigmoid')[1, 2],
                 torch.sigmoid(torch.tensor(1.0, dtype=F64)))
    with pytest.raises(ValueError, match='affinity must be one of'):
        affinity_matrix(embed, 'cosine')


@pytest.mark.parametrize('block_size', [4, 16, 37, 64])
@pytest.mark.parametrize('power', [1.0, 3.0])
def test_gaussian_step_matches_dense_values_and_grads(block_size, power):
    embed, sem, inst, prob, walk_w = _inputs()
    loss_w = torch.tensor([0.7, -1.3], dtype=F64)
    results = fused_and_dense(embed, prob, [sem, inst], walk_w, loss_w,
                              block_size, power, 'gaussian')
    for got, want in zip(results[1], results[0]):
        assert_close(got, want, rtol=1e-6, atol=1e-12)
    assert results[0][2].abs().max() > 1e-4  # not a vacuous comparison
    # the kind changes every output
    sig_losses, sig_walked = affinity_step_blockwise(embed, prob, [sem, inst],
                                                     block_size, power)
    assert (sig_losses - results[1][0]).abs().max() > 1e-3
    assert (sig_walked - results[1][1]).abs().max() > 1e-3


def test_gaussian_wrappers_and_gradcheck():
    embed, sem, inst, prob, _ = _inputs(num=9, dim=3)
    e = embed.clone().requires_grad_()
    p = prob.clone().requires_grad_()
    assert torch.autograd.gradcheck(
        lambda e_, p_: affinity_step_blockwise(
            e_, p_, [sem, inst], 4, 2.0, kind='gaussian'), (e, p))
    assert_close(
        affinity_loss_blockwise(embed, inst, 5, kind='gaussian'),
        affinity_loss_dense(embed, inst, 'gaussian'))
    assert_close(
        random_walk_blockwise(embed, prob, 5, kind='gaussian'),
        random_walk_dense(embed, prob, kind='gaussian'))
    with pytest.raises(ValueError, match='affinity must be one of'):
        affinity_step_blockwise(embed, prob, (), 4, kind='l1')


def test_gaussian_does_not_saturate_on_scaled_embeddings():
    """Why the switch exists (docs/method.md §4.6): a border cell whose
    embedding points like the object's but is half as long is ~1.0 affine
    to it under sigmoid(E^T E) and not under the Gaussian affinity."""
    obj = torch.tensor([[4.0], [0.0]], dtype=F64)
    border = 0.5 * obj
    embed = torch.cat([obj, border], dim=1)
    assert affinity_matrix(embed, 'sigmoid')[0, 1] > 0.99  # sigmoid(8)
    assert affinity_matrix(embed, 'gaussian')[0, 1] < 0.02  # exp(-4)


@pytest.mark.parametrize('blockwise', [True, False])
def test_head_switch_changes_loss_and_refinement(blockwise):
    torch.manual_seed(0)
    kwargs = dict(in_channels=4, embed_dims=3, blockwise=blockwise,
                  block_size=7)
    sig = P2SegAffinityHead(**kwargs)
    gau = P2SegAffinityHead(affinity='gaussian', **kwargs)
    gau.load_state_dict(sig.state_dict())
    embed = 0.5 * torch.randn(1, 3, 5, 6)
    logits = torch.randn(1, 3, 5, 6)
    member = torch.zeros(1, 30, dtype=torch.bool)
    member[0, :12] = True
    out_s, loss_s = sig.refine_with_losses(logits, embed, [[0, 2]],
                                           dict(sem=[member]))
    out_g, loss_g = gau.refine_with_losses(logits, embed, [[0, 2]],
                                           dict(sem=[member]))
    assert (out_s - out_g).abs().max() > 1e-3
    assert (loss_s['sem'] - loss_g['sem']).abs() > 1e-4
    # the Gaussian head equals its dense reference
    flat = embed[0].flatten(1)
    assert_close(loss_g['sem'],
                 0.5 * affinity_loss_dense(flat, member, 'gaussian'),
                 rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match='affinity must be one of'):
        P2SegAffinityHead(affinity='dot')
