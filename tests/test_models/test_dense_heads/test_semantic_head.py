# Copyright (c) p2seg_mm contributors. All rights reserved.
import math

import pytest
import torch

from p2seg_mm.models.dense_heads.semantic_head import (P2SegSemanticHead,
                                                       hard_pixel_ce_single)


def test_forward_shape_and_init():
    head = P2SegSemanticHead(num_classes=3, in_channels=8, feat_channels=16)
    head.init_weights()
    assert head.cls.bias.abs().max() == 0
    assert head.conv.weight.std() < 0.01
    out = head((torch.randn(2, 8, 16, 18), ))
    assert out.shape == (2, 4, 16, 18)
    with pytest.raises(ValueError, match='one stride-4'):
        head((torch.randn(2, 8, 4, 4), torch.randn(2, 8, 2, 2)))


def test_hard_pixel_ce_matches_hand_computation():
    # 2 classes + background on a 2x5 image; two ignore pixels
    probs = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4],
                          [0.5, 0.25, 0.25], [0.05, 0.05, 0.9],
                          [0.6, 0.3, 0.1], [0.2, 0.2, 0.6], [0.1, 0.1, 0.8],
                          [0.4, 0.4, 0.2], [0.9, 0.05, 0.05]])
    target = torch.tensor([0, 1, 2, 255, 0, 0, 255, 2, 1, 0])
    log_probs = probs.log().t().reshape(3, 2, 5)
    nll = []
    for p, t in zip(probs, target.tolist()):
        nll.append(0. if t == 255 else -math.log(p[t].item()))
    # k = floor(0.2 * 10) = 2 largest: -log(0.05) and -log(0.4)
    expected = sum(sorted(nll, reverse=True)[:2]) / 2
    got = hard_pixel_ce_single(log_probs, target.reshape(2, 5), 0.2, 255)
    assert got.item() == pytest.approx(expected, rel=1e-6)
    # top_k_percent=1 is the plain mean where ignored pixels count
    full = hard_pixel_ce_single(log_probs, target.reshape(2, 5), 1.0, 255)
    assert full.item() == pytest.approx(sum(nll) / 10, rel=1e-6)


def test_loss_by_feat_averages_images_and_backward():
    head = P2SegSemanticHead(
        num_classes=2, in_channels=4, feat_channels=4, loss_weight=2.0)
    logits = torch.randn(2, 3, 8, 8, requires_grad=True)
    gt = torch.randint(0, 3, (2, 8, 8))
    gt[1] = 255  # an all-ignore image contributes 0
    loss = head.loss_by_feat(logits.log_softmax(1), gt)['loss_sem_seg']
    single = hard_pixel_ce_single(logits[0].log_softmax(0), gt[0])
    assert loss.item() == pytest.approx(2.0 * single.item() / 2, rel=1e-6)
    loss.backward()
    assert torch.isfinite(logits.grad).all()
    with pytest.raises(ValueError, match='share batch'):
        head.loss_by_feat(logits.log_softmax(1), gt[:, :4])


def test_class_weight_scales_pixels_before_mining():
    # background pixels slightly wrong, one class-1 pixel badly wrong
    probs = torch.tensor([[0.6, 0.4], [0.6, 0.4], [0.6, 0.4], [0.7, 0.3]])
    target = torch.tensor([0, 0, 0, 1])
    log_probs = probs.log().t().reshape(2, 2, 2)
    nll = [-math.log(0.6)] * 3 + [-math.log(0.3)]
    weight = torch.tensor([1.0, 4.0])
    # k = floor(0.5 * 4) = 2: the weighted class-1 pixel and one bg pixel
    expected = (4 * nll[3] + nll[0]) / 2
    got = hard_pixel_ce_single(log_probs, target.reshape(2, 2), 0.5, 255,
                               weight)
    assert got.item() == pytest.approx(expected, rel=1e-6)
    head = P2SegSemanticHead(
        num_classes=1, in_channels=2, feat_channels=2, top_k_percent=0.5,
        class_weight=[1.0, 4.0])
    loss = head.loss_by_feat(log_probs[None], target.reshape(1, 2, 2))
    assert loss['loss_sem_seg'].item() == pytest.approx(expected, rel=1e-6)
    # not saved in checkpoints; wrong length or negative weights are refused
    assert 'class_weight' not in head.state_dict()
    with pytest.raises(ValueError, match='2 non-negative'):
        P2SegSemanticHead(num_classes=1, class_weight=[1.0])
    with pytest.raises(ValueError, match='non-negative'):
        P2SegSemanticHead(num_classes=1, class_weight=[1.0, -1.0])
