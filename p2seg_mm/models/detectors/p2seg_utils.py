# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Per-image helpers of the ``P2Seg`` detector (batching, labels, maps)."""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.structures import InstanceData
from torch import Tensor

from mmdet.structures import DetDataSample, SampleList
from ..post_processing.point_decoding import (decode_instances_with_centers,
                                              decode_instances_with_points,
                                              masks_to_boxes)


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


def to_original_single(maps: Tensor, sample: DetDataSample,
                       rescale: bool) -> Tensor:
    """Crop (K, H, W) maps to ``img_shape`` and resize to ``ori_shape``."""
    height, width = sample.img_shape[:2]
    maps = maps[:, :height, :width]
    if rescale:
        maps = resize_bilinear(maps[None], sample.ori_shape[:2])[0]
    return maps


def rescale_offsets_and_points(offset: Tensor, points: Tensor,
                               sample: DetDataSample) -> Tuple[Tensor, Tensor]:
    """Map input-scale offsets/points of one image to original pixels.

    Args:
        offset (Tensor): (2, H0, W0) (dx, dy) in input pixels, already
            resized to ``ori_shape``.
        points (Tensor): (K, 2) (x, y) in input coordinates.
        sample (DetDataSample): Gives ``img_shape``, ``ori_shape`` and
            ``scale_factor`` (w_scale, h_scale).

    Returns:
        tuple[Tensor, Tensor]: Offsets (2, H0, W0) and points (K, 2) in
        original-image pixels; points are clamped into the image.
    """
    height, width = sample.img_shape[:2]
    ori_h, ori_w = sample.ori_shape[:2]
    scale = offset.new_tensor([ori_w / width, ori_h / height])
    offset = offset * scale[:, None, None]
    factor = sample.metainfo.get('scale_factor', (1., 1.))
    points = points / points.new_tensor(factor[:2])
    # Rounding of the resized size may push a point just outside.
    points = torch.stack([
        points[:, 0].clamp(0, ori_w - 1e-3), points[:, 1].clamp(
            0, ori_h - 1e-3)
    ],
                         dim=1)
    return offset, points


# Channels upsampled at once when point decoding normalises the
# log-probabilities: bounds the full-resolution memory to this many maps.
_CHANNEL_CHUNK = 8


def _point_mode_probs(log_probs: Tensor, channels: Tensor,
                      sample: DetDataSample, rescale: bool,
                      input_size: Optional[Sequence[int]]) -> Tensor:
    """Probabilities of ``channels`` only, at the output resolution.

    Equal to ``softmax`` over all C + 1 channels of the upsampled
    log-probabilities, restricted to ``channels``; the normaliser is
    accumulated ``_CHANNEL_CHUNK`` channels at a time, so an 80-class model
    never holds 81 full-resolution maps (docs/method.md §6.3).
    """
    def full(x: Tensor) -> Tensor:
        if input_size is not None:
            x = resize_bilinear(x[None], input_size)[0]
        return to_original_single(x, sample, rescale)

    lse = None
    for chunk in log_probs.split(_CHANNEL_CHUNK):
        part = full(chunk).logsumexp(dim=0)
        lse = part if lse is None else torch.logaddexp(lse, part)
    return (full(log_probs[channels]) - lse).exp()


def decode_single(log_probs: Tensor,
                  center: Optional[Tensor],
                  offset: Tensor,
                  sample: DetDataSample,
                  cfg: dict,
                  rescale: bool,
                  input_size: Optional[Sequence[int]] = None) -> InstanceData:
    """Decode one image from maps at the padded input size.

    Args:
        log_probs (Tensor): (C+1, H, W) refined log-probabilities, at the
            padded input size, or at any size when ``input_size`` is
            given (point mode upsamples only what it needs).
        center (Tensor, optional): (C, H, W) centre heatmaps; only read
            in centre mode (None in point mode).
        offset (Tensor): (2, H, W) (dx, dy) in input pixels.
        sample (DetDataSample): Metainfo and, in point mode, the points.
        cfg (dict): The detector's ``test_cfg``.
        rescale (bool): Return results at ``ori_shape``.
        input_size (Sequence[int], optional): Padded input (H, W) that
            ``log_probs`` is first upsampled to. Defaults to None (it is
            already at that size).

    Returns:
        InstanceData: ``masks`` (N, H', W') bool, ``bboxes`` (N, 4),
        ``labels`` (N,), ``scores`` (N,); in point mode also ``points``
        (N, 2), the given points in the frame of the masks (the exported
        pseudo json keeps them).
    """
    offset = to_original_single(offset, sample, rescale)
    if cfg['mode'] == 'point':
        points, labels = points_of(sample)
        points, labels = points.to(offset.device), labels.to(offset.device)
        if rescale:
            offset, points = rescale_offsets_and_points(offset, points, sample)
        # background + the image's classes, renumbered 0..K for decoding
        channels = refine_channels(image_labels(sample).to(offset.device))
        position = torch.full((log_probs.shape[0], ),
                              -1,
                              dtype=torch.long,
                              device=offset.device)
        position[channels] = torch.arange(
            len(channels), device=offset.device)
        result = decode_instances_with_points(
            _point_mode_probs(log_probs, channels, sample, rescale,
                              input_size),
            offset,
            points,
            position[labels + 1] - 1,
            fallback_half_size=cfg['fallback_half_size'],
            group_in_components=cfg['group_in_components'],
            fallback_score=cfg['fallback_score'])
        result['labels'] = labels
    else:
        if input_size is not None:
            log_probs = resize_bilinear(log_probs[None], input_size)[0]
        prob = to_original_single(log_probs, sample,
                                  rescale).log_softmax(dim=0).exp()
        if rescale:
            offset, _ = rescale_offsets_and_points(offset,
                                                   offset.new_zeros((0, 2)),
                                                   sample)
        result = decode_instances_with_centers(
            prob,
            to_original_single(center, sample, rescale),
            offset,
            threshold=cfg['center_threshold'],
            nms_kernel=cfg['nms_kernel'],
            top_k=cfg['top_k'],
            min_area=cfg['min_area'])
    results = InstanceData()
    results.masks = result['masks']
    results.bboxes = masks_to_boxes(result['masks'])
    results.labels = result['labels']
    results.scores = result['scores']
    if cfg['mode'] == 'point':
        results.points = points.float()
    return results
