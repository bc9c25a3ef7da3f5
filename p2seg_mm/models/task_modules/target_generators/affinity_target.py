# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Stride-4 membership rows for the I2S affinity targets (docs/method.md §4.2).

A membership matrix ``M`` of shape (K, N) has one row per class (T1) or per
S2I instance (T2) and one column per cell of the stride-4 embedding, in the
row-major order of ``embed.flatten(1)`` for an embedding of shape (D, h, w)
with ``h = ceil(H / 4)`` and ``w = ceil(W / 4)``. A pair of cells (i, j) is
a positive affinity pair iff some row has a 1 in both columns; the pair
matrix itself is never built here (``affinity_loss_blockwise`` consumes the
rows). A cell is a member of a row iff any of its full-resolution pixels is
(4x4 max-pooling, the release), so a cell touching two classes belongs to
both. ``mode='majority'`` (not in the paper) makes a cell a member iff more
than half of its pixels are: max-pooling dilates every object by up to one
cell, which doubles or triples objects a few cells wide (docs/method.md,
"I2S on small objects").

Background (0) and ignore (255) pixels belong to no row: background-
background pairs are negatives (docs/method.md §4.2). Targets are per image
(docs/method.md §0.1, no batch summation).
"""
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


MEMBERSHIP_MODES = ('max', 'majority')


def pool_membership(masks: Tensor,
                    stride: int = 4,
                    mode: str = 'max') -> Tensor:
    """Pool full-resolution masks to the embedding grid and flatten.

    Sizes that are not multiples of ``stride`` are padded with zeros at the
    bottom/right, i.e. the last cell covers the remaining pixels (same as
    ``max_pool2d(..., ceil_mode=True)``).

    Args:
        masks (Tensor): Shape (K, H, W), bool or {0, 1} float masks.
        stride (int): Kernel size and stride of the pooling. Defaults to 4.
        mode (str): ``'max'`` (a cell is a member if any pixel is; the
            release) or ``'majority'`` (if more than half of its pixels
            are; padded pixels count as non-members). Defaults to 'max'.

    Returns:
        Tensor: Shape (K, h * w), float32 in {0, 1}, with
        ``h = ceil(H / stride)``, ``w = ceil(W / stride)``, row-major.
    """
    if masks.ndim != 3:
        raise ValueError('masks must have shape (K, H, W), got '
                         f'{tuple(masks.shape)}.')
    if stride < 1:
        raise ValueError(f'stride must be >= 1, got {stride}.')
    if mode not in MEMBERSHIP_MODES:
        raise ValueError(f'mode must be one of {MEMBERSHIP_MODES}, got '
                         f'{mode!r}.')
    num, height, width = masks.shape
    out_h, out_w = -(-height // stride), -(-width // stride)
    if num == 0:
        return masks.new_zeros((0, out_h * out_w), dtype=torch.float32)
    masks = masks.float()
    pad_h, pad_w = out_h * stride - height, out_w * stride - width
    if pad_h or pad_w:
        masks = F.pad(masks, (0, pad_w, 0, pad_h), value=0.)
    if mode == 'max':
        pooled = F.max_pool2d(masks[None], kernel_size=stride, stride=stride)
    else:
        pooled = (F.avg_pool2d(masks[None], kernel_size=stride,
                               stride=stride) > 0.5).float()
    return pooled[0].flatten(1)


def semantic_membership(seg_map: Tensor,
                        classes: Sequence[int],
                        stride: int = 4,
                        mode: str = 'max',
                        background: bool = False) -> Tensor:
    """Class membership rows (the T1 target of docs/method.md §4.2).

    Args:
        seg_map (Tensor): Shape (H, W), long semantic map (0 bg, c + 1
            class c, 255 ignore).
        classes (Sequence[int]): 0-based classes present in the image (the
            image-level labels), one row each, in the given order.
        stride (int): Pooling stride. Defaults to 4.
        mode (str): See :func:`pool_membership`. Defaults to 'max'.
        background (bool): Not in the paper. Add a first row for the
            background (value 0; ignore pixels stay in no row), so that
            background-background pairs are positives as in AffinityNet.
            Defaults to False (the release: they are negatives).

    Returns:
        Tensor: Shape (len(classes) + background, h * w), float32 in
        {0, 1}.
    """
    if seg_map.ndim != 2:
        raise ValueError('seg_map must have shape (H, W), got '
                         f'{tuple(seg_map.shape)}.')
    classes = torch.as_tensor(
        list(classes), dtype=torch.long, device=seg_map.device).reshape(-1)
    if classes.numel() and classes.min() < 0:
        raise ValueError(f'classes must be 0-based, got {classes.tolist()}.')
    values = classes + 1
    if background:
        values = torch.cat([values.new_zeros(1), values])
    masks = seg_map.long()[None] == values[:, None, None]
    return pool_membership(masks, stride, mode)


def instance_membership(instance_ids: Tensor,
                        num_instances: int,
                        stride: int = 4,
                        mode: str = 'max') -> Tensor:
    """Instance membership rows (the T2 target of docs/method.md §4.2).

    Args:
        instance_ids (Tensor): Shape (H, W), long, 0 = no instance, k + 1 =
            instance k (as returned by ``OnlineS2ITarget``).
        num_instances (int): Number of instances K (rows for ids 1..K).
        stride (int): Pooling stride. Defaults to 4.
        mode (str): See :func:`pool_membership`. Defaults to 'max'.

    Returns:
        Tensor: Shape (num_instances, h * w), float32 in {0, 1}.
    """
    if instance_ids.ndim != 2:
        raise ValueError('instance_ids must have shape (H, W), got '
                         f'{tuple(instance_ids.shape)}.')
    if num_instances < 0:
        raise ValueError(f'num_instances must be >= 0, got {num_instances}.')
    if instance_ids.numel() and int(instance_ids.max()) > num_instances:
        raise ValueError(f'instance_ids holds id {int(instance_ids.max())} '
                         f'but num_instances is {num_instances}.')
    ids = torch.arange(1, num_instances + 1, device=instance_ids.device)
    masks = instance_ids.long()[None] == ids[:, None, None]
    return pool_membership(masks, stride, mode)
