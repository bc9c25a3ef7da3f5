# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Targets and losses of P2Seg's chained MDM stages (S2I -> I2S)."""
from typing import Dict, List, NamedTuple, Optional, Tuple

import torch
from mmengine.logging import print_log
from torch import Tensor, nn

from mmdet.registry import MODELS, TASK_UTILS
from mmdet.structures import SampleList
from mmdet.utils import ConfigType, OptConfigType
from ..task_modules.target_generators.affinity_target import (
    instance_membership, semantic_membership)
from ..utils.batching import (image_labels, points_of, refine_channels,
                              refined_semantic_map, resize_bilinear,
                              s2i_coverage, stack_s2i, stack_sem_seg)

# the one place of the training defaults (docs/method.md §11)
DEFAULT_TRAIN_CFG = dict(
    num_stages=1,
    use_online_s2i=True,
    use_i2s=True,
    use_inst_affinity=True,
    aff_membership='max',
    aff_background=False,
    unrefined_sem_loss_weight=0.0,
    i2s_window=None)


class MDMOutputs(NamedTuple):
    """Raw stride-4 outputs of the network (``P2Seg._forward``).

    ``sem_logits`` (B, C+1, h, w), ``center`` (B, C, h, w), ``offset``
    (B, 2, h, w) in input pixels, ``embed`` (B, D, h, w) or None without an
    affinity head.
    """
    sem_logits: Tensor
    center: Tensor
    offset: Tensor
    embed: Optional[Tensor]


class MDMHeads(NamedTuple):
    """The heads whose losses the criterion combines."""
    semantic: nn.Module
    center_offset: nn.Module
    affinity: Optional[nn.Module]


@MODELS.register_module()
class P2SegMDMCriterion:
    """Losses of ``num_stages`` MDM stages (docs/method.md §3-§5, §4.5).

    Parameter-free: builds the online S2I targets and the affinity
    memberships, runs the K-stage S2I -> I2S loop and asks each head for
    its loss (``loss_by_feat`` of the semantic head, ``loss_center`` /
    ``loss_offset`` of the centre-offset head, ``refine_with_losses`` of
    the affinity head). The detector's ``train_cfg`` is its config.

    Args:
        train_cfg (dict, optional): ``num_stages`` (K, default 1),
            ``use_online_s2i``, ``use_i2s``, ``use_inst_affinity`` (T2),
            ``aff_stride`` (derived: ``aff_stride`` argument; a
            contradicting value raises), ``aff_membership`` ('max', the
            release, or 'majority'; see ``pool_membership``),
            ``aff_background`` (T1 gets a background row; not in the
            paper), ``unrefined_sem_loss_weight`` (CE on the unrefined
            logits; 0, the method), ``i2s_window`` (None, the method, or
            (h, w) pixels, multiples of ``aff_stride``: the affinity losses,
            the walk and the refined CE of each batch run on one random
            window of that size instead of the whole crop, N^2 pairs
            shrinking with the window's area; not in the paper, for CPU
            budgets; docs/method.md §4.6). Defaults in
            ``DEFAULT_TRAIN_CFG``.
        online_target (dict): TASK_UTILS config of the online S2I target.
            Defaults to ``dict(type='OnlineS2ITarget')``.
        aff_stride (int): Stride of the affinity grid, 4 x the affinity
            head's ``pool``. Defaults to 4.

    Raises:
        ValueError: unknown ``train_cfg`` keys, a switch that is not a
            bool, an unknown ``aff_membership``, ``num_stages`` < 1,
            ``train_cfg.aff_stride`` contradicts ``aff_stride``, or
            ``i2s_window`` is not two positive multiples of ``aff_stride``.
    """

    def __init__(self,
                 train_cfg: OptConfigType = None,
                 online_target: ConfigType = dict(type='OnlineS2ITarget'),
                 aff_stride: int = 4) -> None:
        unknown = sorted(set(dict(train_cfg or {})) -
                         set(DEFAULT_TRAIN_CFG) - {'aff_stride'})
        if unknown:
            raise ValueError(
                f'model.train_cfg has unknown keys {unknown} (a typo keeps '
                f'the default silently); valid keys: '
                f'{sorted(DEFAULT_TRAIN_CFG)} and aff_stride.')
        cfg = {**DEFAULT_TRAIN_CFG, **dict(train_cfg or {})}
        for key in ('use_online_s2i', 'use_i2s', 'use_inst_affinity',
                    'aff_background'):
            if not isinstance(cfg[key], bool):
                raise ValueError(
                    f'model.train_cfg.{key} must be True or False, got '
                    f'{cfg[key]!r} (a string such as "Flase" would count as '
                    'true).')
        if cfg['aff_membership'] not in ('max', 'majority'):
            raise ValueError(
                "model.train_cfg.aff_membership must be 'max' or "
                f"'majority', got {cfg['aff_membership']!r}.")
        given = cfg.get('aff_stride')
        if given is not None and int(given) != aff_stride:
            raise ValueError(
                f'train_cfg.aff_stride={given} contradicts affinity_head.'
                f'pool (stride 4 x pool = {aff_stride}); drop aff_stride, it '
                'follows the head.')
        cfg['aff_stride'] = aff_stride
        if int(cfg['num_stages']) < 1:
            raise ValueError('train_cfg.num_stages must be >= 1, got '
                             f'{cfg["num_stages"]}.')
        window = cfg['i2s_window']
        if window is not None:
            if not isinstance(window, (list, tuple)) or len(window) != 2 or \
                    any(not float(v).is_integer() or int(v) <= 0
                        or int(v) % aff_stride for v in window):
                raise ValueError(
                    'train_cfg.i2s_window must be None or (h, w) pixels, '
                    f'positive multiples of the affinity stride {aff_stride}'
                    f' (4 x affinity_head.pool), got {window!r}.')
            cfg['i2s_window'] = (int(window[0]), int(window[1]))
        self.train_cfg = cfg
        self.online_target = TASK_UTILS.build(online_target)
        self._warned_absent = False
        self._warned_window = False

    @property
    def num_walks(self) -> int:
        """K: training chains K stages, so inference walks K times."""
        return int(self.train_cfg['num_stages']) \
            if self.train_cfg['use_i2s'] else 1

    def loss(self, outputs: MDMOutputs, heads: MDMHeads,
             batch_data_samples: SampleList,
             input_size: Tuple[int, int]) -> Dict[str, Tensor]:
        """All losses of one batch.

        Args:
            outputs (MDMOutputs): The network's stride-4 outputs.
            heads (MDMHeads): The heads that own the loss functions.
            batch_data_samples (list[DetDataSample]): With ``gt_sem_seg``
                (pseudo-map, padded to ``input_size``), ``gt_instances``
                (``points``, ``labels``) and ``gt_s2i`` (static targets).
            input_size (tuple[int, int]): Padded input (H, W).

        Returns:
            dict[str, Tensor]: ``loss_sem_seg``, ``loss_center``,
            ``loss_offset_static`` and, when switched on,
            ``loss_offset_online``, ``loss_affinity_sem``,
            ``loss_affinity_inst``, ``loss_sem_seg_unrefined``; plus the
            ``s2i_coverage`` and ``absent_cls_px`` diagnostics.
        """
        size = tuple(input_size)
        device = outputs.offset.device
        gt_sem = stack_sem_seg(batch_data_samples, size).to(device)
        labels = [image_labels(s).to(device) for s in batch_data_samples]
        refined_gt, absent = self._ignore_absent_classes(
            gt_sem, labels, batch_data_samples,
            heads.semantic.num_classes + 1)
        offset = resize_bilinear(outputs.offset, size)
        losses = self._static_s2i_losses(
            heads.center_offset, resize_bilinear(outputs.center, size),
            offset, batch_data_samples)
        window = self._i2s_window(size)
        log_probs, stage_losses = self._mdm_stages(
            heads, outputs.sem_logits, offset, outputs.embed, gt_sem, labels,
            batch_data_samples, window)
        losses.update(stage_losses)
        sem_target = refined_gt if self.train_cfg['use_i2s'] else gt_sem
        if window is not None:
            sem_target = sem_target[(slice(None), ) + window]
        # Bilinear upsampling of log-probs is renormalised like logits.
        losses.update(
            heads.semantic.loss_by_feat(
                resize_bilinear(log_probs,
                                sem_target.shape[-2:]).log_softmax(dim=1),
                sem_target))
        losses['absent_cls_px'] = absent
        aux_weight = float(self.train_cfg.get('unrefined_sem_loss_weight', 0))
        if aux_weight > 0:
            # Not in the paper: a direct per-pixel signal for the semantic
            # head where the walk averages small objects away
            # (docs/method.md §4.6); 0 (off) in every paper config.
            aux = heads.semantic.loss_by_feat(
                resize_bilinear(outputs.sem_logits,
                                size).log_softmax(dim=1), gt_sem)
            losses['loss_sem_seg_unrefined'] = aux_weight * aux['loss_sem_seg']
        return losses

    def _i2s_window(
            self, size: Tuple[int, int]) -> Optional[Tuple[slice, slice]]:
        """Pixel slices (rows, cols) of this batch's I2S window, or None.

        ``train_cfg.i2s_window`` (h, w), clipped to the input; its corner is
        drawn uniformly on the affinity grid (multiples of ``aff_stride``)
        from torch's generator, so the run's seed fixes it. None when I2S is
        off or the window covers the input.
        """
        cfg = self.train_cfg
        if cfg['i2s_window'] is None or not cfg['use_i2s']:
            return None
        if all(want >= full for want, full in zip(cfg['i2s_window'], size)):
            if not self._warned_window:
                self._warned_window = True
                print_log(
                    f'train_cfg.i2s_window={cfg["i2s_window"]} covers the '
                    f'whole {tuple(size)} input: the I2S terms run over '
                    'whole crops (no saving); give a smaller window.',
                    logger='current',
                    level=30)
            return None
        stride = int(cfg['aff_stride'])
        out = []
        for length, full in zip(cfg['i2s_window'], size):
            length = min(length, full - full % stride)
            start = stride * int(
                torch.randint(0, (full - length) // stride + 1, ()))
            out.append(slice(start, start + length))
        return tuple(out)

    def _ignore_absent_classes(self, gt_sem: Tensor, labels: List[Tensor],
                               batch_data_samples: SampleList,
                               num_ch: int) -> Tuple[Tensor, Tensor]:
        """Pseudo-map pixels of classes without a point, set to ignore.

        I2S refines only background and the classes of the image's points
        (docs/method.md §4.7): a pseudo-map pixel of another class (WSSS
        maps often hold extra classes) would see the constant channel
        ``log(eps)`` after the walk, a CE of ~13.8 with no gradient that
        takes a hard-pixel slot. The refined CE ignores those pixels; the
        first batch that has any logs a warning.

        Returns:
            tuple[Tensor, Tensor]: (B, H, W) map for the refined CE and the
            share of such pixels in the batch (a logged diagnostic).

        Raises:
            ValueError: A map value is neither a class nor 255.
        """
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
        if num and not self._warned_absent:
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

    @staticmethod
    def _static_s2i_losses(
            head: nn.Module, center: Tensor, offset: Tensor,
            batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """Centre and static offset losses at the input resolution."""
        size = offset.shape[-2:]
        weight = stack_s2i(batch_data_samples, 'offset_weight', size)
        return dict(
            loss_center=head.loss_center(
                center, stack_s2i(batch_data_samples, 'center_heatmap', size),
                weight),
            loss_offset_static=head.loss_offset(
                offset, stack_s2i(batch_data_samples, 'offset', size), weight))

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

    def _mdm_stages(
            self,
            heads: MDMHeads,
            sem_logits: Tensor,
            offset: Tensor,
            embed: Optional[Tensor],
            gt_sem: Tensor,
            labels: List[Tensor],
            batch_data_samples: SampleList,
            window: Optional[Tuple[slice, slice]] = None
    ) -> Tuple[Tensor, Dict[str, Tensor]]:
        """Run the K stages S2I -> I2S (docs/method.md §4.5).

        Stage 1 groups the pseudo-map's foreground; stage k+1 groups stage
        k's refined map (ignore pixels kept) and walks from stage k's
        refined probabilities. Online offset and T2 losses are averaged
        over the stages. With ``window`` (pixel slices, from
        ``_i2s_window``) the affinity targets, losses and walk see only
        that part of each image; online S2I still groups the whole image.

        Returns:
            tuple: final (B, C+1, h, w) log-probs (logits without I2S; the
            window's cells with a window) and the stage losses /
            diagnostics.
        """
        cfg = self.train_cfg
        use_i2s = bool(cfg['use_i2s'])
        use_t2 = use_i2s and bool(cfg['use_inst_affinity'])
        num_stages = int(cfg['num_stages']) if use_i2s else 1
        channels = [refine_channels(lab) for lab in labels]
        pix = (slice(None), slice(None))
        log_probs, fg_map = sem_logits, gt_sem
        if window is not None:
            step = gt_sem.shape[-1] // sem_logits.shape[-1]  # 4
            cells = tuple(
                slice(s.start // step, s.stop // step) for s in window)
            pix = window
            log_probs = sem_logits[(Ellipsis, ) + cells]
            embed = embed[(Ellipsis, ) + cells]
        online, inst, coverage = [], [], []
        losses = dict()
        for stage in range(num_stages):
            aff_targets = dict()
            if use_i2s and stage == 0:  # T1 targets do not change
                aff_targets['sem'] = [
                    semantic_membership(seg[pix], lab.tolist(),
                                        cfg['aff_stride'],
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
                        heads.center_offset.loss_offset(
                            offset, targets, weights, online=True))
                if use_t2:
                    aff_targets['inst'] = [
                        instance_membership(ids_i[pix], len(s.gt_instances),
                                            cfg['aff_stride'],
                                            cfg['aff_membership'])
                        for ids_i, s in zip(ids, batch_data_samples)
                    ]
            if use_i2s:
                # losses and random walk share their passes over N x N
                log_probs, aff_losses = heads.affinity.refine_with_losses(
                    log_probs, embed, channels, aff_targets)
                if 'inst' in aff_losses:
                    inst.append(aff_losses['inst'])
                if 'sem' in aff_losses:
                    losses['loss_affinity_sem'] = aff_losses['sem']
                if stage + 1 < num_stages:
                    part = gt_sem[(slice(None), ) + pix]
                    refined = refined_semantic_map(
                        resize_bilinear(log_probs.detach(), part.shape[-2:]),
                        channels, part)
                    if window is None:
                        fg_map = refined
                    else:  # outside the window: the pseudo-map
                        fg_map = gt_sem.clone()
                        fg_map[(slice(None), ) + pix] = refined
        if online:
            losses['loss_offset_online'] = torch.stack(online).mean()
        if inst:
            losses['loss_affinity_inst'] = torch.stack(inst).mean()
        if coverage:
            losses['s2i_coverage'] = torch.stack(coverage).mean().detach()
        return log_probs, losses
