# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Decoding of one image: the MDM's maps at the input size -> instances at
the original resolution (docs/method.md §6.3, §6.5).

Used by :class:`~p2seg_mm.models.seg_heads.P2SegPointGroupingHead`, which
refines (or replaces) the semantic map first; here the maps are cropped to
the image, resized to ``ori_shape``, and grouped by
:mod:`.point_decoding` (one mask per point, or centre peaks).
"""
from typing import Optional, Sequence, Tuple

import torch
from mmengine.structures import InstanceData
from torch import Tensor

from mmdet.structures import DetDataSample
from mmdet.structures.mask import mask2bbox
from ..utils.batching import (image_labels, points_of, refine_channels,
                              resize_bilinear)
from ..task_modules.geodesic_grouping import (DEFAULT_EDGE_WEIGHT,
                                               image_edge_cost)
from .pixel_refinement import pamr_refine
from .point_decoding import (decode_instances_with_centers,
                             decode_instances_with_points)


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
                  input_size: Optional[Sequence[int]] = None,
                  image: Optional[Tensor] = None,
                  raw_image: Optional[Tensor] = None) -> InstanceData:
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
        image (Tensor, optional): (3, H, W) network input at the padded
            input size, needed when ``cfg['pamr']`` (a dict of
            :func:`~.pixel_refinement.pamr_refine` options) is set: the
            probabilities are then refined by its local affinity at the
            output resolution before the argmax (not in the paper).
            Defaults to None.
        raw_image (Tensor, optional): (3, H, W) the same input before
            normalisation (0-255), needed in point mode when
            ``cfg['grouping'] == 'geodesic'`` (its edges split the
            foreground, not in the paper). Defaults to None.

    Raises:
        ValueError: ``cfg['pamr']`` is set but ``image`` is None, or a
            geodesic grouping without ``raw_image``.

    Returns:
        InstanceData: ``masks`` (N, H', W') bool, ``bboxes`` (N, 4),
        ``labels`` (N,), ``scores`` (N,); in point mode also ``points``
        (N, 2), the given points in the frame of the masks (the exported
        pseudo json keeps them).
    """
    offset = to_original_single(offset, sample, rescale)
    pamr = cfg.get('pamr')
    if pamr is not None:
        if image is None:
            raise ValueError("cfg['pamr'] refines the map with the image: "
                             'pass the network input as image=.')
        image = to_original_single(image.float(), sample, rescale)
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
        prob = _point_mode_probs(log_probs, channels, sample, rescale,
                                 input_size)
        if pamr is not None:
            prob = pamr_refine(image, prob, **pamr)
        grouping = cfg.get('grouping', 'offset')
        edge = None
        if grouping == 'geodesic':
            if raw_image is None:
                raise ValueError("cfg['grouping']='geodesic' splits by the "
                                 "image's edges: pass the unnormalised "
                                 'input as raw_image=.')
            raw = to_original_single(raw_image.float(), sample, rescale)
            edge = image_edge_cost(
                raw.clamp(0, 255).permute(1, 2, 0).cpu().numpy())
        result = decode_instances_with_points(
            prob,
            offset,
            points,
            position[labels + 1] - 1,
            fallback_half_size=cfg['fallback_half_size'],
            group_in_components=cfg['group_in_components'],
            fallback_score=cfg['fallback_score'],
            grouping=grouping,
            edge=edge,
            edge_weight=cfg.get('geodesic_edge_weight', DEFAULT_EDGE_WEIGHT))
        result['labels'] = labels
    else:
        if input_size is not None:
            log_probs = resize_bilinear(log_probs[None], input_size)[0]
        prob = to_original_single(log_probs, sample,
                                  rescale).log_softmax(dim=0).exp()
        if pamr is not None:
            prob = pamr_refine(image, prob, **pamr)
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
    results.bboxes = mask2bbox(result['masks'])
    results.labels = result['labels']
    results.scores = result['scores']
    if cfg['mode'] == 'point':
        results.points = points.float()
    return results
