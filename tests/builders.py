# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Shared test builders: the tiny P2Seg model of the real config and
hand-made samples with known targets (mmdet keeps its builders in
``mmdet/testing/_utils.py``)."""
import copy
from pathlib import Path

import torch
from mmengine.config import Config
from mmengine.structures import InstanceData, PixelData

from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.utils import register_all_modules

REPO = Path(__file__).resolve().parents[1]


def tiny_model_cfg(num_classes=3):
    register_all_modules()
    cfg = Config.fromfile(str(REPO / 'configs/p2seg/p2seg_r50_voc.py'))
    model = copy.deepcopy(cfg.model)
    model.backbone.update(depth=18, base_channels=16, init_cfg=None)
    model.neck.update(
        in_channels=[16, 32, 64, 128],
        channels=16,
        aspp_channels=16,
        proj_channels=(8, 8, 8))
    model.semantic_head.update(
        num_classes=num_classes, in_channels=16, feat_channels=16)
    model.center_offset_head.update(
        num_classes=num_classes,
        in_channels=16,
        feat_channels=16,
        loss_center_weight=1.0)
    model.affinity_head.update(in_channels=16, embed_dims=16, block_size=100)
    return model


def make_sample(height,
                width,
                instances,
                ignored=(),
                scale=1.0,
                num_classes=3):
    """instances: list of (class, (y0, y1, x0, x1) box, [(x, y) points])."""
    sem = torch.zeros(height, width, dtype=torch.long)
    sem[:, -2:] = 255
    heat = torch.zeros(num_classes, height, width)
    offset = torch.zeros(2, height, width)
    weight = torch.zeros(1, height, width)
    points, labels = [], []
    rows = torch.arange(height).float()[:, None] + 0.5
    cols = torch.arange(width).float()[None] + 0.5
    for cls, (y0, y1, x0, x1), pts in instances:
        sem[y0:y1, x0:x1] = cls + 1
        for x, y in pts:
            points.append((x, y))
            labels.append(cls)
            gauss = torch.exp(-((rows - y)**2 + (cols - x)**2) / 72.)
            heat[cls] = torch.maximum(heat[cls], gauss)
        x, y = pts[0]
        offset[0, y0:y1, x0:x1] = x - cols.expand(height, width)[y0:y1, x0:x1]
        offset[1, y0:y1, x0:x1] = y - rows.expand(height, width)[y0:y1, x0:x1]
        weight[0, y0:y1, x0:x1] = 1
    ori = (round(height / scale), round(width / scale))
    sample = DetDataSample(
        metainfo=dict(
            img_id=f'img_{height}x{width}',
            img_shape=(height, width),
            ori_shape=ori,
            scale_factor=(width / ori[1], height / ori[0])))
    sample.gt_instances = InstanceData(
        points=torch.tensor(points, dtype=torch.float32).reshape(-1, 2),
        labels=torch.tensor(labels, dtype=torch.long))
    sample.ignored_instances = InstanceData(
        points=torch.tensor([p for _, p in ignored],
                            dtype=torch.float32).reshape(-1, 2),
        labels=torch.tensor([c for c, _ in ignored], dtype=torch.long))
    sample.gt_sem_seg = PixelData(sem_seg=sem[None])
    sample.gt_s2i = PixelData(
        center_heatmap=heat, offset=offset, offset_weight=weight)
    return sample


def make_batch(empty=False, scale=0.5):
    torch.manual_seed(0)
    if empty:
        insts_a, insts_b = [], []
    else:
        insts_a = [(0, (5, 25, 5, 30), [(17.5, 15.5)]),
                   (2, (30, 55, 35, 65), [(40.5, 40.5), (60.5, 50.5)])]
        insts_b = [(1, (10, 40, 10, 40), [(25.5, 25.5)])]
    samples = [
        make_sample(61, 70, insts_a, ignored=[(1, (3.5, 3.5))], scale=scale),
        make_sample(64, 64, insts_b, scale=scale)
    ]
    inputs = [
        torch.randint(0, 256, (3, *s.img_shape), dtype=torch.uint8)
        for s in samples
    ]
    return dict(inputs=inputs, data_samples=samples)


def build(**overrides):
    cfg = tiny_model_cfg()
    for key, value in overrides.items():
        cfg[key].update(value)
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def two_touching_rods():
    """A long rod (rows 2-5, 20 px) above a short one (rows 6-9, columns
    0-7), touching along a bright one-pixel seam (row 6 of the image), for
    the geodesic split (docs/method.md §3.5). Returns ``(fg, image,
    points)``: (12, 20) bool, (12, 20, 3) uint8, (2, 2) (x, y) at the rods'
    centres. Pixel (3, 1) of the long rod is nearer (Euclidean) to the
    short rod's point."""
    import numpy as np
    fg = np.zeros((12, 20), bool)
    fg[2:6] = True
    fg[6:10, :8] = True
    image = np.full((12, 20, 3), 200, np.uint8)
    image[fg] = 40
    image[6, :8] = 200  # the seam between the touching rods
    points = np.array([[10.0, 4.0], [4.0, 8.0]])
    return fg, image, points
