# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Batching helpers of P2Seg: ground truth of the samples as tensors,
image labels, refined channels and resizing (shared by the MDM criterion
and the point-grouping head)."""
from typing import List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from mmdet.structures import DetDataSample, SampleList


def resize_bilinear(x: Tensor, size: Sequence[int]) -> Tensor:
    """Bilinear resize of (B, C, h, w) to ``size`` (align_corners=False)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(
        x, size=tuple(size), mode='bilinear', align_corners=False)


def _sample_name(sample: DetDataSample) -> str:
    return str(
        sample.metainfo.get('img_path',
                            sample.metainfo.get('img_id', '<unknown image>')))


def points_of(sample: DetDataSample) -> Tuple[Tensor, Tensor]:
    """(K, 2) float (x, y) points and (K,) long labels of ``gt_instances``."""
    inst = sample.gt_instances
    if 'points' not in inst:
        raise ValueError(
            f'{_sample_name(sample)}: gt_instances has no "points"; the '
            'pipeline must pack points with PackP2SegInputs.')
    points = inst.points.float().reshape(-1, 2)
    return points, inst.labels.long().reshape(-1)


def image_labels(sample: DetDataSample) -> Tensor:
    """Sorted unique 0-based classes of all points, ignored ones included.

    Args:
        sample (DetDataSample): With ``gt_instances.labels`` and optionally
            ``ignored_instances.labels``.

    Returns:
        Tensor: (L,) long image-level labels.
    """
    labels = [sample.gt_instances.labels.long().reshape(-1)]
    if 'ignored_instances' in sample and \
            'labels' in sample.ignored_instances:
        labels.append(sample.ignored_instances.labels.long().reshape(-1).to(
            labels[0].device))
    return torch.cat(labels).unique()


def refine_channels(labels: Tensor) -> Tensor:
    """Channels ``{0} U {c + 1}`` refined by I2S for image labels ``c``."""
    return torch.cat([labels.new_zeros(1), labels.long() + 1])


def stack_sem_seg(batch_data_samples: SampleList,
                  size: Sequence[int]) -> Tensor:
    """Stack ``gt_sem_seg`` to (B, H, W) long, checking the padded size."""
    maps = []
    for sample in batch_data_samples:
        if 'gt_sem_seg' not in sample:
            raise ValueError(
                f'{_sample_name(sample)}: no gt_sem_seg; P2Seg training '
                'needs the semantic pseudo-map (LoadPointAnnotations).')
        sem = sample.gt_sem_seg.sem_seg
        if tuple(sem.shape[-2:]) != tuple(size):
            raise ValueError(
                f'{_sample_name(sample)}: gt_sem_seg {tuple(sem.shape)} does '
                f'not match the batch input {tuple(size)}; use '
                'P2SegDataPreprocessor, which pads it.')
        maps.append(sem.reshape(sem.shape[-2:]).long())
    return torch.stack(maps)


def stack_s2i(batch_data_samples: SampleList, key: str,
              size: Sequence[int]) -> Tensor:
    """Stack ``gt_s2i.<key>`` to (B, C, H, W) float."""
    maps = []
    for sample in batch_data_samples:
        if 'gt_s2i' not in sample or key not in sample.gt_s2i:
            raise ValueError(f'{_sample_name(sample)}: no gt_s2i.{key}; add '
                             'GenerateS2ITargets to the training pipeline.')
        value = sample.gt_s2i.get(key)
        if tuple(value.shape[-2:]) != tuple(size):
            raise ValueError(
                f'{_sample_name(sample)}: gt_s2i.{key} {tuple(value.shape)} '
                f'does not match the batch input {tuple(size)}; use '
                'P2SegDataPreprocessor, which pads it.')
        maps.append(value.float())
    return torch.stack(maps)


def refined_semantic_map(log_probs: Tensor,
                         batch_channels: List[Tensor],
                         pseudo_map: Tensor,
                         ignore_index: int = 255) -> Tensor:
    """Argmax of refined log-probs over each image's present channels.

    Args:
        log_probs (Tensor): (B, C+1, H, W) refined log-probabilities at the
            input resolution.
        batch_channels (list[Tensor]): Per image channels allowed to win.
        pseudo_map (Tensor): (B, H, W) pseudo-map; its ignore pixels stay
            ignored.
        ignore_index (int): Defaults to 255.

    Returns:
        Tensor: (B, H, W) long map in the pseudo-map encoding.
    """
    allowed = torch.zeros(
        log_probs.shape[:2], dtype=torch.bool, device=log_probs.device)
    for i, channels in enumerate(batch_channels):
        allowed[i, channels.to(log_probs.device)] = True
    masked = log_probs.detach().masked_fill(~allowed[..., None, None],
                                            float('-inf'))
    sem = masked.argmax(dim=1)
    return torch.where(pseudo_map == ignore_index,
                       torch.full_like(sem, ignore_index), sem)


def s2i_coverage(weight: Tensor,
                 seg_map: Tensor,
                 ignore_index: int = 255) -> Tensor:
    """Share of foreground pixels that got an online S2I target.

    Args:
        weight (Tensor): (B, 1, H, W) online weights.
        seg_map (Tensor): (B, H, W) foreground map used by S2I.
        ignore_index (int): Defaults to 255.

    Returns:
        Tensor: Scalar in [0, 1] (1 when there is no foreground).
    """
    fg = (seg_map > 0) & (seg_map != ignore_index)
    num = fg.sum()
    if num == 0:
        return weight.new_ones(())
    return ((weight[:, 0] > 0) & fg).sum().float() / num.float()
