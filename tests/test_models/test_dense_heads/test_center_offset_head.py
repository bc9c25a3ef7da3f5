# Copyright (c) p2seg_mm contributors. All rights reserved.
import pytest
import torch

from p2seg_mm.models.dense_heads.center_offset_head import \
    P2SegCenterOffsetHead


def _head(**kwargs):
    return P2SegCenterOffsetHead(
        num_classes=3, in_channels=8, feat_channels=8, **kwargs)


def test_forward_shapes_and_init():
    head = _head()
    head.init_weights()
    center, offset = head(torch.randn(2, 8, 16, 18))
    assert center.shape == (2, 3, 16, 18)
    assert offset.shape == (2, 2, 16, 18)
    assert head.offset_branch[2].bias.abs().max() == 0


def test_empty_targets_give_graph_connected_zero():
    head = _head(loss_center_weight=200.)
    pred_c = torch.randn(2, 3, 8, 8, requires_grad=True)
    pred_o = torch.randn(2, 2, 8, 8, requires_grad=True)
    weight = torch.zeros(2, 1, 8, 8)
    loss_c = head.loss_center(pred_c, torch.rand(2, 3, 8, 8), weight)
    loss_o = head.loss_offset(pred_o, torch.rand(2, 2, 8, 8), weight)
    assert loss_c.item() == 0 and loss_o.item() == 0
    (loss_c + loss_o).backward()
    assert pred_c.grad.abs().sum() == 0 and pred_o.grad is not None


def test_one_instance_hand_values():
    head = _head(
        loss_center_weight=200.,
        loss_offset_static_weight=0.005,
        loss_offset_online_weight=0.01)
    weight = torch.zeros(2, 1, 4, 4)
    weight[0, 0, 1:3, 1:3] = 1  # 4 pixels in image 0, none in image 1
    pred_o = torch.zeros(2, 2, 4, 4, requires_grad=True)
    target_o = torch.zeros(2, 2, 4, 4)
    target_o[0, 0] = 2.  # dx = 2 everywhere
    target_o[0, 1] = -1.  # dy = -1 everywhere
    # image 0: sum over 4 px of (2 + 1) / 4 = 3; image 1: 0; mean 1.5
    static = head.loss_offset(pred_o, target_o, weight)
    online = head.loss_offset(pred_o, target_o, weight, online=True)
    assert static.item() == pytest.approx(0.005 * 1.5)
    assert online.item() == pytest.approx(0.01 * 1.5)
    pred_c = torch.zeros(2, 3, 4, 4, requires_grad=True)
    target_c = torch.zeros(2, 3, 4, 4)
    target_c[0, :, 1, 1] = 1.  # one weighted pixel, 3 channels
    # normaliser counts pixels (4), not pixel x channel: 3 / 4, mean 3 / 8
    loss_c = head.loss_center(pred_c, target_c, weight)
    assert loss_c.item() == pytest.approx(200. * 3 / 8)
    (static + online + loss_c).backward()
    assert pred_o.grad.abs().sum() > 0


def test_shape_mismatch_raises():
    head = _head()
    with pytest.raises(ValueError, match='loss_offset'):
        head.loss_offset(
            torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 4),
            torch.zeros(1, 2, 4, 4))
