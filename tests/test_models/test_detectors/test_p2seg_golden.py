# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Golden-number regression of the tiny P2Seg model's losses.

If a change of the maths is intended, paste the values printed in the
failure message into ``GOLDEN``.
"""
import torch
from mmengine.structures import InstanceData, PixelData

from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.utils import register_all_modules

GOLDEN = {
    'absent_cls_px': 0.0,
    'loss_affinity_inst': 0.21282747387886047,
    'loss_affinity_sem': 0.22409436106681824,
    'loss_center': 186.27403259277344,
    'loss_offset_online': 0.06931581348180771,
    'loss_offset_static': 0.010316797532141209,
    'loss_sem_seg': 2.0238778591156006,
    's2i_coverage': 1.0,
}
# Larger init than the default N(0, 0.001^2), so that the maths of every
# head (random walk, affinity, hard-pixel CE) moves the numbers.
INIT = dict(type='Normal', layer='Conv2d', std=0.3, bias=0.01)

MODEL = dict(
    type='P2Seg',
    data_preprocessor=dict(
        type='P2SegDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=32),
    backbone=dict(
        type='ResNet',
        depth=18,
        base_channels=8,
        out_indices=(0, 1, 2, 3),
        norm_cfg=dict(type='BN'),
        init_cfg=None),
    neck=dict(
        type='P2SegDeepLabDecoder',
        in_channels=[8, 16, 32, 64],
        channels=8,
        aspp_channels=8,
        proj_channels=(4, 4, 4),
        dropout_ratio=0.0,
        init_cfg=INIT),
    semantic_head=dict(
        type='P2SegSemanticHead',
        num_classes=2,
        in_channels=8,
        feat_channels=8,
        init_cfg=INIT),
    center_offset_head=dict(
        type='P2SegCenterOffsetHead',
        num_classes=2,
        in_channels=8,
        feat_channels=8,
        loss_center_weight=200.,
        init_cfg=INIT),
    affinity_head=dict(
        type='P2SegAffinityHead',
        in_channels=8,
        embed_dims=8,
        block_size=50,
        init_cfg=INIT),
    train_cfg=dict(num_stages=2))


def _sample(seed):
    gen = torch.Generator().manual_seed(seed)
    height, width = 48, 40
    sem = torch.zeros(height, width, dtype=torch.long)
    sem[4:20, 4:20] = 1
    sem[24:44, 10:36] = 2
    sem[:, -1] = 255
    weight = (sem == 1).float()[None]
    offset = torch.randn(2, height, width, generator=gen) * weight
    sample = DetDataSample(
        metainfo=dict(
            img_shape=(height, width),
            ori_shape=(height, width),
            scale_factor=(1., 1.)))
    sample.gt_instances = InstanceData(
        points=torch.tensor([[12.5, 12.5], [15.5, 30.5], [30.5, 38.5]]),
        labels=torch.tensor([0, 1, 1]))
    sample.gt_sem_seg = PixelData(sem_seg=sem[None])
    sample.gt_s2i = PixelData(
        center_heatmap=torch.rand(2, height, width, generator=gen),
        offset=offset,
        offset_weight=weight)
    img = torch.randint(0, 256, (3, height, width), generator=gen)
    return img.to(torch.uint8), sample


def compute_losses():
    register_all_modules()
    torch.manual_seed(2024)
    model = MODELS.build(MODEL)
    model.init_weights()
    model.train()
    imgs, samples = zip(*[_sample(1), _sample(2)])
    data = model.data_preprocessor(
        dict(inputs=list(imgs), data_samples=list(samples)), True)
    with torch.no_grad():
        losses = model(**data, mode='loss')
    return {k: float(v) for k, v in losses.items()}


def test_golden_losses():
    losses = compute_losses()
    message = 'new values: GOLDEN = {\n' + ''.join(
        f'    {k!r}: {v!r},\n' for k, v in sorted(losses.items())) + '}'
    assert set(losses) == set(GOLDEN), message
    for key, value in GOLDEN.items():
        assert abs(losses[key] - value) <= 1e-6 + 1e-4 * abs(value), message
