# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Parameter-free head that turns the MDM's maps into instances.

Point mode (stage B, the method): every given point gets the pixels of its
class whose offset vector lands nearest to it (docs/method.md §6.3); centre
mode: centre peaks stand for the points (§6.5). Before grouping, the
semantic map is refined by the same K random walks as training (test-time
I2S, ``test_cfg.use_i2s``) or replaced by the sample's given pseudo-map
(``test_cfg.semantic_source='pseudo_map'``, not in the paper).
"""
from typing import List, Optional, Sequence, Tuple

import torch
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from torch import Tensor, nn

from mmdet.registry import MODELS
from mmdet.structures import DetDataSample, SampleList
from mmdet.utils import OptConfigType
from mmdet.structures.mask import mask2bbox
from ..post_processing.point_decoding import (decode_instances_with_centers,
                                              decode_instances_with_points)
from ..utils.batching import (image_labels, points_of, refine_channels,
                              resize_bilinear, stack_sem_seg)

# the one place of the test-time defaults (docs/method.md §11)
DEFAULT_TEST_CFG = dict(
    mode='point',
    fallback_half_size=32,
    fallback_score=0.5,
    center_threshold=0.1,
    nms_kernel=7,
    top_k=200,
    min_area=0,
    use_i2s=True,
    semantic_source='network',
    group_in_components=False)


@MODELS.register_module()
class P2SegPointGroupingHead(BaseModule):
    """Groups the MDM's semantic map into instances (no parameters).

    Args:
        test_cfg (dict, optional): ``mode`` ('point' or 'center'),
            ``fallback_half_size``, ``fallback_score`` (point mode),
            ``center_threshold``, ``nms_kernel``, ``top_k``, ``min_area``
            (center mode), ``use_i2s`` (walk at test time),
            ``semantic_source`` ('network', the method, or 'pseudo_map':
            an image that carries its pseudo-map (``gt_sem_seg``: the
            training images of stage B, whose export loads it) is grouped
            from that map by the learned offsets; an image without one
            (validation, test, new images) from the network's map),
            ``group_in_components`` (point mode: group each connected
            component among its own points; not in the paper). Defaults in
            ``DEFAULT_TEST_CFG``.
        init_cfg (dict, optional): Defaults to None.

    Raises:
        ValueError: An unknown ``mode`` or ``semantic_source``.
    """

    def __init__(self, test_cfg: OptConfigType = None,
                 init_cfg: OptConfigType = None) -> None:
        super().__init__(init_cfg=init_cfg)
        cfg = {**DEFAULT_TEST_CFG, **dict(test_cfg or {})}
        if cfg['semantic_source'] not in ('network', 'pseudo_map'):
            raise ValueError(
                "test_cfg.semantic_source must be 'network' or 'pseudo_map', "
                f"got {cfg['semantic_source']!r}.")
        if cfg['mode'] not in ('point', 'center'):
            raise ValueError("test_cfg.mode must be 'point' or 'center', "
                             f"got {cfg['mode']!r}.")
        self.test_cfg = cfg
        self._warned_center = False
        self._noted_fallback = False

    def predict(self,
                sem_logits: Tensor,
                center: Tensor,
                offset: Tensor,
                embed: Optional[Tensor],
                batch_data_samples: SampleList,
                affinity_head: Optional[nn.Module] = None,
                num_walks: int = 1,
                center_trained: bool = True,
                input_size: Optional[Tuple[int, int]] = None,
                rescale: bool = True) -> List[InstanceData]:
        """Instances of each image of the batch.

        Args:
            sem_logits (Tensor): (B, C+1, h, w) semantic logits (stride 4).
            center (Tensor): (B, C, h, w) centre heatmaps.
            offset (Tensor): (B, 2, h, w) offsets in input pixels.
            embed (Tensor, optional): (B, D, h, w) affinity embedding; the
                walk needs it (None: no walk).
            batch_data_samples (list[DetDataSample]): Metainfo; in point
                mode ``gt_instances.points`` / ``labels``; with
                ``semantic_source='pseudo_map'`` also ``gt_sem_seg``.
            affinity_head (nn.Module, optional): Gives the walk
                (``refine``). Defaults to None.
            num_walks (int): K, as in training. Defaults to 1.
            center_trained (bool): The centre head was trained (weight
                > 0); centre mode warns once if not. Defaults to True.
            input_size (tuple[int, int], optional): Padded input (H, W).
                Defaults to None (4 x the map size).
            rescale (bool): Results at ``ori_shape``. Defaults to True.

        Returns:
            list[InstanceData]: Per image ``masks`` (N, H', W') bool,
            ``bboxes`` (N, 4), ``labels`` (N,), ``scores`` (N,) and, in
            point mode, ``points`` (N, 2).
        """
        cfg = self.test_cfg
        size = tuple(input_size) if input_size is not None else tuple(
            4 * s for s in sem_logits.shape[-2:])
        point_mode = cfg['mode'] == 'point'
        if point_mode:
            channels = [
                refine_channels(image_labels(s).to(sem_logits.device))
                for s in batch_data_samples
            ]
        else:
            self._warn_untrained_center(center_trained)
            # no points: the classes that win the unrefined argmax somewhere
            # stand for the image labels (training walks only over those)
            won = [logits.argmax(dim=0).unique() for logits in sem_logits]
            channels = [refine_channels(w[w > 0] - 1) for w in won]
        given = [
            cfg['semantic_source'] == 'pseudo_map' and 'gt_sem_seg' in s
            for s in batch_data_samples
        ]
        log_probs = list(sem_logits)
        if not all(given) and embed is not None and \
                affinity_head is not None and cfg.get('use_i2s', True):
            # the same chain as training: K walks, each from the last
            walked = sem_logits
            for _ in range(num_walks):
                walked = affinity_head.refine(walked, embed, channels)
            log_probs = list(walked)
        if any(given):
            maps = pseudo_map_log_probs(
                [s for s, g in zip(batch_data_samples, given) if g],
                sem_logits.shape[1], size)
            picks = iter(maps)
            log_probs = [next(picks) if g else lp
                         for g, lp in zip(given, log_probs)]
        if cfg['semantic_source'] == 'pseudo_map' and not all(given):
            self._note_network_fallback()
        offset = resize_bilinear(offset, size)
        # point mode never reads the (C, H, W) centre maps and upsamples
        # only the image's classes (decode_single): bounded memory
        centers = [None] * len(batch_data_samples) if point_mode else \
            resize_bilinear(center, size)
        return [
            decode_single(log_probs[i], centers[i], offset[i], sample, cfg,
                          rescale, size)
            for i, sample in enumerate(batch_data_samples)
        ]

    def _note_network_fallback(self) -> None:
        """Say once that images without a pseudo-map use the network's."""
        if self._noted_fallback:
            return
        self._noted_fallback = True
        print_log(
            "test_cfg.semantic_source='pseudo_map': images without a "
            "pseudo-map (validation, test or new images) are decoded from "
            "the network's semantic map; the training images of stage B, "
            'whose export loads their maps, are grouped from their maps.',
            logger='current',
            level=20)

    def _warn_untrained_center(self, center_trained: bool) -> None:
        """Centre decoding needs a centre head trained with weight > 0."""
        if center_trained or self._warned_center:
            return
        self._warned_center = True
        print_log(
            "test_cfg.mode='center' decodes centre peaks, but this model's "
            'centre head was trained with loss_center_weight=0: expect few '
            'or no instances. Train with center_offset_head.'
            'loss_center_weight > 0 (the COCO configs use 200) or decode '
            "with points (mode='point').",
            logger='current',
            level=30)


def pseudo_map_log_probs(batch_data_samples: SampleList, num_ch: int,
                         size: Sequence[int]) -> Tensor:
    """The given pseudo-maps as (B, C+1, H, W) log-probabilities.

    ``test_cfg.semantic_source='pseudo_map'`` (not in the paper): on images
    that have a pseudo-map (the training images of stage B) its foreground
    is grouped by the learned offsets, i.e. the online S2I grouping of
    training (docs/method.md §3.3) at test time; ignore pixels (255) count
    as background.

    Raises:
        ValueError: A sample has no ``gt_sem_seg`` (the test pipeline must
            load it: ``LoadP2SegAnnotations(with_seg=True)``), or a map value
            is not a class.
    """
    for sample in batch_data_samples:
        if 'gt_sem_seg' not in sample:
            raise ValueError(
                f'{sample.metainfo.get("img_path")}: test_cfg.'
                "semantic_source='pseudo_map' decodes the image's "
                'semantic pseudo-map, but the sample has none. Fix: '
                'load it in the test pipeline (LoadP2SegAnnotations('
                'with_seg=True) and a data_prefix seg folder) or decode '
                "the network's map (semantic_source='network').")
    maps = stack_sem_seg(batch_data_samples, size)
    maps = maps.masked_fill(maps == 255, 0)
    if int(maps.max()) >= num_ch:
        raise ValueError(
            f'pseudo-map values {maps[maps >= num_ch].unique().tolist()}'
            f' are not classes (0..{num_ch - 1}, 255).')
    one_hot = torch.nn.functional.one_hot(maps, num_ch)
    return one_hot.permute(0, 3, 1, 2).float().clamp(min=1e-6).log()


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
    results.bboxes = mask2bbox(result['masks'])
    results.labels = result['labels']
    results.scores = result['scores']
    if cfg['mode'] == 'point':
        results.points = points.float()
    return results
