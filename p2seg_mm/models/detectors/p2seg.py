# Copyright (c) p2seg_mm contributors. All rights reserved.
"""P2Seg stage-A network: MDM (S2I + I2S) as an MMDetection detector."""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.logging import print_log
from torch import Tensor

from mmdet.models.detectors import BaseDetector
from mmdet.registry import MODELS, TASK_UTILS
from mmdet.structures import SampleList
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from ..task_modules.target_generators.affinity_target import (
    instance_membership, semantic_membership)
from .p2seg_utils import (decode_single, image_labels, points_of,
                          refine_channels, refined_semantic_map,
                          resize_bilinear, s2i_coverage, stack_s2i,
                          stack_sem_seg)

DEFAULT_TRAIN_CFG = dict(
    num_stages=1,
    use_online_s2i=True,
    use_i2s=True,
    use_inst_affinity=True,
    aff_membership='max',
    aff_background=False,
    unrefined_sem_loss_weight=0.0)
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
class P2Seg(BaseDetector):
    """Implementation of `P2Seg <https://arxiv.org/abs/2401.09709>`_.

    ``backbone -> neck`` gives one stride-4 feature; the semantic, centre /
    offset and affinity heads run on it. Training runs ``num_stages`` MDM
    stages (docs/method.md §0.4): S2I groups the foreground by the predicted
    offsets (online targets + instance ids), I2S refines the semantic map by a
    random walk on the affinity; stage k's refined map is stage k+1's S2I
    foreground and stage k+1's walk starts from stage k's probabilities.

    Args:
        backbone (dict): Backbone config.
        neck (dict): Neck returning a one-tuple stride-4 map.
        semantic_head (dict): ``P2SegSemanticHead`` config.
        center_offset_head (dict): ``P2SegCenterOffsetHead`` config.
        affinity_head (dict, optional): ``P2SegAffinityHead`` config;
            required when ``train_cfg.use_i2s``. Defaults to None.
        online_target (dict): TASK_UTILS config of the online S2I target.
            Defaults to ``dict(type='OnlineS2ITarget')``.
        train_cfg (dict, optional): ``num_stages`` (K, default 1),
            ``use_online_s2i``, ``use_i2s``, ``use_inst_affinity`` (T2),
            ``aff_stride`` (derived: 4 x ``affinity_head.pool``; a
            contradicting value raises), ``aff_membership`` (how a cell of
            the affinity grid joins a class or instance: 'max', the
            release, or 'majority'; see ``pool_membership``),
            ``aff_background`` (T1 gets a background row: background pairs
            positive; not in the paper),
            ``unrefined_sem_loss_weight`` (CE on the unrefined logits; 0,
            the method).
        test_cfg (dict, optional): ``mode`` ('point' or 'center'),
            ``fallback_half_size``, ``fallback_score`` (point mode),
            ``center_threshold``, ``nms_kernel``, ``top_k``, ``min_area``
            (center mode), ``use_i2s`` (walk at test time),
            ``semantic_source`` ('network', the method, or 'pseudo_map':
            group the sample's given pseudo-map by the learned offsets),
            ``group_in_components`` (point mode: group each connected
            component among its own points; not in the paper).
        data_preprocessor (dict, optional): Defaults to None.
        init_cfg (dict, optional): Defaults to None.
    """

    def __init__(self,
                 backbone: ConfigType,
                 neck: OptConfigType,
                 semantic_head: ConfigType,
                 center_offset_head: ConfigType,
                 affinity_head: OptConfigType = None,
                 online_target: ConfigType = dict(type='OnlineS2ITarget'),
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg: OptMultiConfig = None) -> None:
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.neck = MODELS.build(neck) if neck is not None else None
        self.semantic_head = MODELS.build(semantic_head)
        self.center_offset_head = MODELS.build(center_offset_head)
        self.affinity_head = MODELS.build(affinity_head) \
            if affinity_head is not None else None
        self.online_target = TASK_UTILS.build(online_target)
        self.train_cfg = {**DEFAULT_TRAIN_CFG, **dict(train_cfg or {})}
        self.test_cfg = {**DEFAULT_TEST_CFG, **dict(test_cfg or {})}
        # the affinity grid's stride: the stride-4 feature, pooled by the
        # head (one quantity, one place: the head's ``pool``)
        stride = 4 * (self.affinity_head.pool
                      if self.affinity_head is not None else 1)
        given = self.train_cfg.get('aff_stride')
        if given is not None and int(given) != stride:
            raise ValueError(
                f'train_cfg.aff_stride={given} contradicts affinity_head.'
                f'pool (stride 4 x pool = {stride}); drop aff_stride, it '
                'follows the head.')
        self.train_cfg['aff_stride'] = stride
        if self.train_cfg['use_i2s'] and self.affinity_head is None:
            raise ValueError('train_cfg.use_i2s=True needs an affinity_head; '
                             'add one or set use_i2s=False.')
        if int(self.train_cfg['num_stages']) < 1:
            raise ValueError('train_cfg.num_stages must be >= 1, got '
                             f'{self.train_cfg["num_stages"]}.')
        if self.test_cfg['semantic_source'] not in ('network', 'pseudo_map'):
            raise ValueError(
                "test_cfg.semantic_source must be 'network' or 'pseudo_map', "
                f"got {self.test_cfg['semantic_source']!r}.")
        if self.test_cfg['mode'] not in ('point', 'center'):
            raise ValueError("test_cfg.mode must be 'point' or 'center', "
                             f"got {self.test_cfg['mode']!r}.")

    def extract_feat(self, batch_inputs: Tensor) -> Tuple[Tensor]:
        """(B, 3, H, W) -> one-tuple (B, C_feat, H/4, W/4)."""
        x = self.backbone(batch_inputs)
        return self.neck(x) if self.neck is not None else x

    def _forward(
        self,
        batch_inputs: Tensor,
        batch_data_samples: Optional[SampleList] = None
    ) -> Tuple[Tensor, Tensor, Tensor, Optional[Tensor]]:
        """Raw stride-4 outputs (no ground truth is read).

        Returns:
            tuple: ``sem_logits`` (B, C+1, h, w), ``center`` (B, C, h, w),
            ``offset`` (B, 2, h, w) in input pixels, ``embedding``
            (B, D, h, w) or None without an affinity head.
        """
        feats = self.extract_feat(batch_inputs)
        sem_logits = self.semantic_head(feats)
        center, offset = self.center_offset_head(feats)
        embed = self.affinity_head(feats) \
            if self.affinity_head is not None else None
        return sem_logits, center, offset, embed

    # ------------------------------------------------------------- training
    def _online_s2i(
            self, offset: Tensor, fg_map: Tensor,
            batch_data_samples: SampleList
    ) -> Tuple[Tensor, Tensor, List[Tensor]]:
        """Online S2I targets of the batch (no gradient).

        Returns:
            tuple: offset targets (B, 2, H, W), weights (B, 1, H, W) and the
            per-image (H, W) instance-id maps.
        """
        targets, weights, ids = [], [], []
        for off, seg, sample in zip(offset, fg_map, batch_data_samples):
            points, labels = points_of(sample)
            target, weight, inst = self.online_target(off.detach(), seg,
                                                      points.to(off.device),
                                                      labels.to(off.device))
            targets.append(target)
            weights.append(weight)
            ids.append(inst)
        return torch.stack(targets), torch.stack(weights), ids

    def _inst_memberships(self, ids: List[Tensor],
                          batch_data_samples: SampleList) -> List[Tensor]:
        stride = self.train_cfg['aff_stride']
        return [
            instance_membership(inst, len(sample.gt_instances), stride,
                                self.train_cfg['aff_membership'])
            for inst, sample in zip(ids, batch_data_samples)
        ]

    def loss(self, batch_inputs: Tensor,
             batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """Losses of ``num_stages`` MDM stages (docs/method.md §3-§5, §0.4).

        Returns:
            dict[str, Tensor]: ``loss_sem_seg``, ``loss_center``,
            ``loss_offset_static`` and, when switched on,
            ``loss_offset_online``, ``loss_affinity_sem``,
            ``loss_affinity_inst``; plus the ``s2i_coverage`` diagnostic.
        """
        sem_logits, center, offset, embed = self._forward(batch_inputs)
        size = batch_inputs.shape[-2:]
        gt_sem = stack_sem_seg(batch_data_samples, size).to(offset.device)
        labels = [
            image_labels(s).to(offset.device) for s in batch_data_samples
        ]
        refined_gt, absent = self._ignore_absent_classes(
            gt_sem, labels, batch_data_samples)
        offset = resize_bilinear(offset, size)
        losses = self._static_s2i_losses(
            resize_bilinear(center, size), offset, batch_data_samples)
        log_probs, stage_losses = self._mdm_stages(sem_logits, offset, embed,
                                                   gt_sem, labels,
                                                   batch_data_samples)
        losses.update(stage_losses)
        # Bilinear upsampling of log-probs is renormalised like logits.
        losses.update(
            self.semantic_head.loss_by_feat(
                resize_bilinear(log_probs, size).log_softmax(dim=1),
                refined_gt if self.train_cfg['use_i2s'] else gt_sem))
        losses['absent_cls_px'] = absent
        aux_weight = float(self.train_cfg.get('unrefined_sem_loss_weight', 0))
        if aux_weight > 0:
            # Not in the paper: a direct per-pixel signal for the semantic
            # head where the walk averages small objects away
            # (docs/method.md §4.6); 0 (off) in every paper config.
            aux = self.semantic_head.loss_by_feat(
                resize_bilinear(sem_logits, size).log_softmax(dim=1), gt_sem)
            losses['loss_sem_seg_unrefined'] = aux_weight * aux['loss_sem_seg']
        return losses

    def _ignore_absent_classes(
            self, gt_sem: Tensor, labels: List[Tensor],
            batch_data_samples: SampleList) -> Tuple[Tensor, Tensor]:
        """Pseudo-map pixels of classes without a point, set to ignore.

        I2S refines only background and the classes of the image's points
        (docs/method.md, I2S): a pseudo-map pixel of another class (WSSS
        maps often hold extra classes) would see the constant channel
        ``log(eps)`` after the walk, a CE of ~13.8 with no gradient that
        takes a hard-pixel slot. The refined CE ignores those pixels; the
        first batch that has any logs a warning.

        Returns:
            tuple[Tensor, Tensor]: (B, H, W) map for the refined CE and the
            share of such pixels in the batch (a logged diagnostic).
        """
        num_ch = self.semantic_head.num_classes + 1
        bad = (gt_sem >= num_ch) & (gt_sem != 255)
        if bool(bad.any()):
            i = int(bad.flatten(1).any(1).nonzero()[0])
            raise ValueError(
                f'{batch_data_samples[i].metainfo.get("img_path")}: pseudo-'
                f'map values {gt_sem[i][bad[i]].unique().tolist()} are not '
                f'classes (0 = background, 1..{num_ch - 1}, 255 = ignore). '
                'Fix the map or the number of classes.')
        allowed = torch.zeros((gt_sem.shape[0], 256),
                              dtype=torch.bool,
                              device=gt_sem.device)
        for i, lab in enumerate(labels):
            allowed[i, refine_channels(lab)] = True
        allowed[:, 255] = True
        keep = torch.gather(allowed, 1, gt_sem.flatten(1).clamp(0, 255))
        absent = ~keep.view_as(gt_sem)
        num = int(absent.sum())
        if num and not getattr(self, '_warned_absent', False):
            self._warned_absent = True
            names = [
                str(s.metainfo.get('img_path', s.metainfo.get('img_id')))
                for s, a in zip(batch_data_samples, absent) if bool(a.any())
            ]
            print_log(
                f'{num} pseudo-map pixels in {names} belong to classes '
                'without a point in their image; the refined semantic loss '
                'ignores them (I2S refines only the classes of the points). '
                'Their share per batch is logged as absent_cls_px.',
                logger='current',
                level=30)
        return gt_sem.masked_fill(absent, 255), \
            absent.float().mean().detach()

    def _static_s2i_losses(
            self, center: Tensor, offset: Tensor,
            batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """Centre and static offset losses at the input resolution."""
        size = offset.shape[-2:]
        head = self.center_offset_head
        weight = stack_s2i(batch_data_samples, 'offset_weight', size)
        return dict(
            loss_center=head.loss_center(
                center, stack_s2i(batch_data_samples, 'center_heatmap', size),
                weight),
            loss_offset_static=head.loss_offset(
                offset, stack_s2i(batch_data_samples, 'offset', size), weight))

    def _mdm_stages(
            self, sem_logits: Tensor, offset: Tensor, embed: Optional[Tensor],
            gt_sem: Tensor, labels: List[Tensor],
            batch_data_samples: SampleList
    ) -> Tuple[Tensor, Dict[str, Tensor]]:
        """Run the K stages S2I -> I2S (docs/method.md §0.4).

        Stage 1 groups the pseudo-map's foreground; stage k+1 groups stage
        k's refined map (ignore pixels kept) and walks from stage k's
        refined probabilities. Online offset and T2 losses are averaged
        over the stages.

        Returns:
            tuple: final (B, C+1, h, w) log-probs (logits without I2S) and
            the stage losses / diagnostics.
        """
        cfg = self.train_cfg
        use_i2s = bool(cfg['use_i2s'])
        use_t2 = use_i2s and bool(cfg['use_inst_affinity'])
        num_stages = int(cfg['num_stages']) if use_i2s else 1
        channels = [refine_channels(lab) for lab in labels]
        log_probs, fg_map = sem_logits, gt_sem
        online, inst, coverage = [], [], []
        losses = dict()
        for stage in range(num_stages):
            aff_targets = dict()
            if use_i2s and stage == 0:  # T1 targets do not change
                aff_targets['sem'] = [
                    semantic_membership(seg, lab.tolist(), cfg['aff_stride'],
                                        cfg['aff_membership'],
                                        cfg['aff_background'])
                    for seg, lab in zip(gt_sem, labels)
                ]
            if cfg['use_online_s2i'] or use_t2:
                targets, weights, ids = self._online_s2i(
                    offset, fg_map, batch_data_samples)
                coverage.append(s2i_coverage(weights, fg_map))
                if cfg['use_online_s2i']:
                    online.append(
                        self.center_offset_head.loss_offset(
                            offset, targets, weights, online=True))
                if use_t2:
                    aff_targets['inst'] = self._inst_memberships(
                        ids, batch_data_samples)
            if use_i2s:
                # losses and random walk share their passes over N x N
                log_probs, aff_losses = self.affinity_head.refine_with_losses(
                    log_probs, embed, channels, aff_targets)
                if 'inst' in aff_losses:
                    inst.append(aff_losses['inst'])
                if 'sem' in aff_losses:
                    losses['loss_affinity_sem'] = aff_losses['sem']
                if stage + 1 < num_stages:
                    fg_map = refined_semantic_map(
                        resize_bilinear(log_probs.detach(), gt_sem.shape[-2:]),
                        channels, gt_sem)
        if online:
            losses['loss_offset_online'] = torch.stack(online).mean()
        if inst:
            losses['loss_affinity_inst'] = torch.stack(inst).mean()
        if coverage:
            losses['s2i_coverage'] = torch.stack(coverage).mean().detach()
        return log_probs, losses

    # ------------------------------------------------------------ inference
    def _num_walks(self) -> int:
        """K: training chains K stages, so inference walks K times."""
        return int(self.train_cfg['num_stages']) \
            if self.train_cfg['use_i2s'] else 1

    @staticmethod
    def _pseudo_map_log_probs(batch_data_samples: SampleList, num_ch: int,
                              size: Sequence[int]) -> Tensor:
        """The given pseudo-maps as (B, C+1, H, W) log-probabilities.

        ``test_cfg.semantic_source='pseudo_map'`` (not in the paper): on
        images that have a pseudo-map (the training images of stage B) its
        foreground is grouped by the learned offsets, i.e. the online S2I
        grouping of training (docs/method.md §3.3) at test time; ignore
        pixels (255) count as background.

        Raises:
            ValueError: A sample has no ``gt_sem_seg`` (the test pipeline
                must load it: ``LoadP2SegAnnotations(with_seg=True)``).
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

    def _warn_untrained_center(self) -> None:
        """Centre decoding needs a centre head trained with weight > 0."""
        if self.center_offset_head.loss_center_weight > 0 or \
                getattr(self, '_warned_center', False):
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

    def predict(self,
                batch_inputs: Tensor,
                batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        """One mask per given point (``mode='point'``) or centre decoding.

        Returns:
            list[DetDataSample]: With ``pred_instances`` = InstanceData of
            ``masks`` (N, H0, W0) bool, ``bboxes`` (N, 4), ``labels`` (N,),
            ``scores`` (N,), at ``ori_shape`` when ``rescale``.
        """
        sem_logits, center, offset, embed = self._forward(batch_inputs)
        point_mode = self.test_cfg['mode'] == 'point'
        if point_mode:
            channels = [
                refine_channels(image_labels(s).to(sem_logits.device))
                for s in batch_data_samples
            ]
        else:
            self._warn_untrained_center()
            # no points: the classes that win the unrefined argmax somewhere
            # stand for the image labels (training walks only over those)
            won = [logits.argmax(dim=0).unique() for logits in sem_logits]
            channels = [refine_channels(w[w > 0] - 1) for w in won]
        log_probs = sem_logits
        size = batch_inputs.shape[-2:]
        if self.test_cfg['semantic_source'] == 'pseudo_map':
            log_probs = self._pseudo_map_log_probs(batch_data_samples,
                                                   sem_logits.shape[1], size)
        elif embed is not None and self.test_cfg.get('use_i2s', True):
            # the same chain as training: K walks, each from the last
            for _ in range(self._num_walks()):
                log_probs = self.affinity_head.refine(log_probs, embed,
                                                      channels)
        offset = resize_bilinear(offset, size)
        # point mode never reads the (C, H, W) centre maps and upsamples
        # only the image's classes (decode_single): bounded memory
        center = [None] * len(batch_data_samples) if point_mode else \
            resize_bilinear(center, size)
        for i, sample in enumerate(batch_data_samples):
            sample.pred_instances = decode_single(log_probs[i], center[i],
                                                  offset[i], sample,
                                                  self.test_cfg, rescale,
                                                  size)
        return batch_data_samples
