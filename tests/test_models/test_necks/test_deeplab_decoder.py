# Copyright (c) p2seg_mm contributors. All rights reserved.
import pytest
import torch

from p2seg_mm.models.necks.deeplab_decoder import (P2SegDeepLabDecoder,
                                                   P2SegHRNetNeck)


def _pyramid(batch=2, height=61, width=70, channels=(8, 16, 32, 64)):
    """Feature sizes of a ResNet on an odd-sized input (ceil at every s2)."""
    feats = []
    h, w = height, width
    for i, ch in enumerate(channels):
        h, w = -(-h // (4 if i == 0 else 2)), -(-w // (4 if i == 0 else 2))
        feats.append(torch.randn(batch, ch, h, w))
    return feats


def _tiny_decoder(**kwargs):
    cfg = dict(
        in_channels=(8, 16, 32, 64),
        channels=12,
        aspp_channels=10,
        proj_channels=(6, 4, 2))
    cfg.update(kwargs)
    return P2SegDeepLabDecoder(**cfg)


def test_decoder_output_is_stride4_tuple_on_odd_sizes():
    feats = _pyramid()
    assert [f.shape[-2:] for f in feats][0] == (16, 18)
    decoder = _tiny_decoder()
    decoder.init_weights()
    out = decoder(feats)
    assert isinstance(out, tuple) and len(out) == 1
    assert out[0].shape == (2, 12, 16, 18)
    out[0].sum().backward()
    assert decoder.aspp.branches[0].conv.weight.grad is not None


def test_decoder_trains_with_one_image():
    # the ASPP pooling branch has no BN, so batch 1 works in train mode
    decoder = _tiny_decoder().train()
    out = decoder(_pyramid(batch=1))[0]
    assert torch.isfinite(out).all()


def test_decoder_init_is_small_normal():
    decoder = _tiny_decoder(
        in_channels=(64, 64, 64, 256), channels=64, aspp_channels=64)
    decoder.init_weights()
    weight = decoder.aspp.branches[1].conv.weight
    assert 0.0005 < weight.std().item() < 0.002
    assert decoder.aspp.image_pool[1].conv.bias.abs().max() == 0


def test_decoder_aspp_has_three_dilated_branches():
    decoder = _tiny_decoder()
    dilations = [b.conv.dilation[0] for b in decoder.aspp.branches]
    assert dilations == [1, 3, 6, 9]
    assert len(decoder.fuses) == 3
    assert decoder.fuses[0].depthwise_conv.conv.kernel_size == (5, 5)


def test_decoder_bad_config_and_inputs():
    with pytest.raises(ValueError, match='proj_channels'):
        _tiny_decoder(proj_channels=(6, 4))
    with pytest.raises(ValueError, match='at least two'):
        P2SegDeepLabDecoder(in_channels=(8, ), proj_channels=())
    with pytest.raises(ValueError, match='expects 4 levels'):
        _tiny_decoder()(_pyramid()[:3])


def test_hrnet_neck_selects_and_projects():
    x = [torch.randn(2, 6, 16, 18), torch.randn(2, 12, 8, 9)]
    neck = P2SegHRNetNeck(in_channels=6)
    out = neck(x)
    assert len(out) == 1 and out[0] is x[0]
    proj = P2SegHRNetNeck(in_channels=6, out_channels=5)
    assert proj(x)[0].shape == (2, 5, 16, 18)
    cat = P2SegHRNetNeck(in_channels=(6, 12), concat=True)
    assert cat(x)[0].shape == (2, 18, 16, 18)


def test_hrnet_neck_on_mmdet_hrnet_single_output():
    from mmdet.models.backbones import HRNet

    extra = dict(
        stage1=dict(
            num_modules=1,
            num_branches=1,
            block='BOTTLENECK',
            num_blocks=(1, ),
            num_channels=(4, )),
        stage2=dict(
            num_modules=1,
            num_branches=2,
            block='BASIC',
            num_blocks=(1, 1),
            num_channels=(4, 8)),
        stage3=dict(
            num_modules=1,
            num_branches=3,
            block='BASIC',
            num_blocks=(1, 1, 1),
            num_channels=(4, 8, 16)),
        stage4=dict(
            num_modules=1,
            num_branches=4,
            block='BASIC',
            num_blocks=(1, 1, 1, 1),
            num_channels=(4, 8, 16, 32)))
    backbone = HRNet(extra, multiscale_output=False)
    # mmdet's HRNet upsamples by powers of 2: inputs are padded to 32k
    feats = backbone(torch.randn(1, 3, 64, 96))
    assert len(feats) == 1  # only the stride-4 branch
    out = P2SegHRNetNeck(in_channels=4)(feats)
    assert out[0].shape == (1, 4, 16, 24)
