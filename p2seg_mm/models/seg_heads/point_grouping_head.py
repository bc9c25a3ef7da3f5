# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Parameter-free head that turns the MDM's maps into instances.

Point mode (stage B, the method): every given point gets the pixels of its
class whose offset vector lands nearest to it (docs/method.md §6.3); centre
mode: centre peaks stand for the points (§6.5). Before grouping, the
semantic map is refined by the same K random walks as training (test-time
I2S, ``test_cfg.use_i2s``) or replaced by the sample's given pseudo-map
(``test_cfg.semantic_source='pseudo_map'``, not in the paper).
"""
import math
from typing import List, Optional, Sequence, Tuple

import torch
from mmengine.logging import print_log
from mmengine.model import BaseModule
from mmengine.structures import InstanceData
from torch import Tensor, nn

from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.utils import OptConfigType
from ..post_processing.image_decoding import decode_single
from ..post_processing.point_decoding import GROUPINGS
from ..task_modules.geodesic_grouping import (DEFAULT_EDGE_WEIGHT,
                                               check_edge_weight)
from ..post_processing.pixel_refinement import (DEFAULT_PAMR,
                                                check_pamr_cfg)
from ..utils.batching import (image_labels, refine_channels, resize_bilinear,
                              stack_sem_seg)

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
    group_in_components=False,
    pamr=None,
    grouping='offset',
    geodesic_edge_weight=DEFAULT_EDGE_WEIGHT)


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
            component among its own points; not in the paper), ``pamr``
            (None, or a dict of ``num_iter``, ``dilations``,
            ``temperature``, missing keys from ``DEFAULT_PAMR``: the
            network's probabilities, after the walk, are refined at full
            resolution by the image's local affinity before the argmax;
            Araslanov & Roth, CVPR 2020; not in the paper; images decoded
            from their given pseudo-map are not refined), ``grouping``
            (point mode: 'offset', the method's S2I, or 'geodesic': each
            class's foreground split between its points by the shortest
            path inside it that avoids image edges, offsets only for
            pixels no point reaches; not in the paper, docs/method.md
            §6.6) and ``geodesic_edge_weight`` (30). Defaults in
            ``DEFAULT_TEST_CFG``.
        init_cfg (dict, optional): Defaults to None.

    Raises:
        ValueError: An unknown key, an unknown ``mode``,
            ``semantic_source``, ``grouping`` or ``pamr`` key, a bad
            ``geodesic_edge_weight``.
    """

    def __init__(self, test_cfg: OptConfigType = None,
                 init_cfg: OptConfigType = None) -> None:
        super().__init__(init_cfg=init_cfg)
        unknown = sorted(set(dict(test_cfg or {})) - set(DEFAULT_TEST_CFG))
        if unknown:
            # a misspelt key would leave its option at the default unnoticed
            raise ValueError(
                f'test_cfg has unknown keys {unknown}; it takes '
                f'{sorted(DEFAULT_TEST_CFG)} (docs/method.md §11).')
        cfg = {**DEFAULT_TEST_CFG, **dict(test_cfg or {})}
        if cfg['semantic_source'] not in ('network', 'pseudo_map'):
            raise ValueError(
                "test_cfg.semantic_source must be 'network' or 'pseudo_map', "
                f"got {cfg['semantic_source']!r}.")
        if cfg['mode'] not in ('point', 'center'):
            raise ValueError("test_cfg.mode must be 'point' or 'center', "
                             f"got {cfg['mode']!r}.")
        if cfg['pamr'] is not None:
            if not isinstance(cfg['pamr'], dict):
                raise ValueError(
                    'test_cfg.pamr must be None (off) or a dict of '
                    f'{sorted(DEFAULT_PAMR)}, got {cfg["pamr"]!r}; on the '
                    'command line set its keys one by one, e.g. '
                    '--cfg-options model.test_cfg.pamr.num_iter=10.')
            pamr = dict(cfg['pamr'])
            unknown = sorted(set(pamr) - set(DEFAULT_PAMR))
            if unknown:
                raise ValueError(
                    f'test_cfg.pamr has unknown keys {unknown}; it takes '
                    f'{sorted(DEFAULT_PAMR)} (or None to switch it off).')
            cfg['pamr'] = {**DEFAULT_PAMR, **pamr}
            try:
                check_pamr_cfg(**cfg['pamr'])
            except ValueError as err:
                raise ValueError(f'test_cfg.{err}') from None
        for key, low in (('top_k', 1), ('nms_kernel', 1),
                         ('fallback_half_size', 0), ('min_area', 0)):
            value = cfg[key]
            if isinstance(value, bool) or not isinstance(value, int) \
                    or value < low:
                raise ValueError(f'test_cfg.{key} must be an int >= {low}, '
                                 f'got {value!r}.')
        if cfg['nms_kernel'] % 2 == 0:
            raise ValueError('test_cfg.nms_kernel must be odd (a centred '
                             f"window), got {cfg['nms_kernel']}.")
        if cfg['grouping'] not in GROUPINGS:
            raise ValueError(f'test_cfg.grouping must be one of {GROUPINGS}'
                             f", got {cfg['grouping']!r}.")
        try:
            cfg['geodesic_edge_weight'] = check_edge_weight(
                cfg['geodesic_edge_weight'])
        except ValueError as err:
            raise ValueError(f'test_cfg.geodesic_{err}') from None
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
                rescale: bool = True,
                inputs: Optional[Tensor] = None,
                raw_inputs: Optional[Tensor] = None) -> List[InstanceData]:
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
            inputs (Tensor, optional): (B, 3, H, W) network input; needed
                with ``test_cfg.pamr``. Defaults to None.
            raw_inputs (Tensor, optional): (B, 3, H, W) the input before
                normalisation (0-255); needed in point mode with
                ``test_cfg.grouping='geodesic'``. Defaults to None.

        Returns:
            list[InstanceData]: Per image ``masks`` (N, H', W') bool,
            ``bboxes`` (N, 4), ``labels`` (N,), ``scores`` (N,) and, in
            point mode, ``points`` (N, 2).
        """
        cfg = self.test_cfg
        if cfg['grouping'] == 'geodesic' and cfg['mode'] == 'point' and \
                raw_inputs is None:
            raise ValueError("test_cfg.grouping='geodesic' splits by the "
                             "image's edges: pass the unnormalised input "
                             'as raw_inputs=.')
        if cfg['pamr'] is not None and inputs is None:
            raise ValueError('test_cfg.pamr refines the map with the image: '
                             'pass the network input as inputs=.')
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
            log_probs = [
                walk_image(logits, emb, ch, sample, size, affinity_head,
                           num_walks) for logits, emb, ch, sample in zip(
                               sem_logits, embed, channels,
                               batch_data_samples)
            ]
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
        # the given pseudo-map is not refined (like the walk)
        map_cfg = {**cfg, 'pamr': None}
        return [
            decode_single(log_probs[i], centers[i], offset[i], sample,
                          map_cfg if given[i] else cfg, rescale, size,
                          None if inputs is None else inputs[i],
                          None if raw_inputs is None else raw_inputs[i])
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


def walk_image(logits: Tensor, embed: Tensor, channels: Tensor,
               sample, size: Sequence[int], affinity_head: nn.Module,
               num_walks: int) -> Tensor:
    """The test-time walk of one image over its own cells, not the padding.

    The chain of training (K walks, each from the last) over the cells
    that cover ``img_shape`` (the image before padding to the batch's
    input ``size``): padded cells, all alike, would otherwise form one
    affine set whose walked probability leaks into the image's border
    cells. Padded cells keep the unrefined log-probabilities.

    Args:
        logits (Tensor): (C+1, h, w) semantic logits (stride 4).
        embed (Tensor): (D, h, w) affinity embedding.
        channels (Tensor): Channels to refine (background + classes).
        sample (DetDataSample): Gives ``img_shape``.
        size (Sequence[int]): Padded input (H, W).
        affinity_head (nn.Module): Gives ``refine``.
        num_walks (int): K.

    Returns:
        Tensor: (C+1, h, w) log-probabilities.
    """
    img_h, img_w = sample.metainfo.get('img_shape', size)[:2]
    rows = min(logits.shape[-2],
               math.ceil(img_h * logits.shape[-2] / size[0]))
    cols = min(logits.shape[-1],
               math.ceil(img_w * logits.shape[-1] / size[1]))
    out = logits.log_softmax(dim=0)
    walked = logits[None, :, :rows, :cols]
    for _ in range(num_walks):
        walked = affinity_head.refine(walked, embed[None, :, :rows, :cols],
                                      [channels])
    out[:, :rows, :cols] = walked[0]
    return out


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
