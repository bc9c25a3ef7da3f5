# Copyright (c) p2seg_mm contributors. All rights reserved.
"""P2Seg stage-A network: MDM (S2I + I2S) as an MMDetection detector."""
from typing import Dict, Optional, Tuple

from torch import Tensor

from mmdet.models.detectors import BaseDetector
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.utils import ConfigType, OptConfigType, OptMultiConfig
from ..losses.mdm_criterion import MDMHeads, MDMOutputs, P2SegMDMCriterion
from ..seg_heads.point_grouping_head import P2SegPointGroupingHead


@MODELS.register_module()
class P2Seg(BaseDetector):
    """Implementation of `P2Seg <https://arxiv.org/abs/2401.09709>`_.

    ``backbone -> neck`` gives one stride-4 feature; the semantic, centre /
    offset and affinity heads run on it. Training runs ``num_stages`` MDM
    stages (docs/method.md §4.5): S2I groups the foreground by the predicted
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
        train_cfg (dict, optional): The MDM criterion's options (K =
            ``num_stages``, the switches of S2I and I2S; see
            :class:`P2SegMDMCriterion`, defaults in ``DEFAULT_TRAIN_CFG``).
        test_cfg (dict, optional): The grouping head's options (``mode``,
            ``use_i2s``, ``semantic_source``, fallback and centre settings;
            see :class:`P2SegPointGroupingHead`, defaults in
            ``DEFAULT_TEST_CFG``).
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
        # the affinity grid's stride: the stride-4 feature, pooled by the
        # head (one quantity, one place: the head's ``pool``)
        self.criterion = P2SegMDMCriterion(
            train_cfg, online_target,
            4 * (self.affinity_head.pool
                 if self.affinity_head is not None else 1))
        self.grouping_head = P2SegPointGroupingHead(test_cfg)
        # one dict each, shared with the criterion / grouping head
        self.train_cfg = self.criterion.train_cfg
        self.test_cfg = self.grouping_head.test_cfg
        if self.train_cfg['use_i2s'] and self.affinity_head is None:
            raise ValueError('train_cfg.use_i2s=True needs an affinity_head; '
                             'add one or set use_i2s=False.')

    def extract_feat(self, batch_inputs: Tensor) -> Tuple[Tensor]:
        """(B, 3, H, W) -> one-tuple (B, C_feat, H/4, W/4)."""
        x = self.backbone(batch_inputs)
        return self.neck(x) if self.neck is not None else x

    def _forward(self,
                 batch_inputs: Tensor,
                 batch_data_samples: Optional[SampleList] = None
                 ) -> MDMOutputs:
        """Raw stride-4 outputs (no ground truth is read).

        Returns:
            MDMOutputs: ``sem_logits`` (B, C+1, h, w), ``center``
            (B, C, h, w), ``offset`` (B, 2, h, w) in input pixels,
            ``embed`` (B, D, h, w) or None without an affinity head.
        """
        feats = self.extract_feat(batch_inputs)
        center, offset = self.center_offset_head(feats)
        embed = self.affinity_head(feats) \
            if self.affinity_head is not None else None
        return MDMOutputs(self.semantic_head(feats), center, offset, embed)

    def loss(self, batch_inputs: Tensor,
             batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """Losses and diagnostics of :meth:`P2SegMDMCriterion.loss`."""
        heads = MDMHeads(self.semantic_head, self.center_offset_head,
                         self.affinity_head)
        return self.criterion.loss(
            self._forward(batch_inputs), heads, batch_data_samples,
            batch_inputs.shape[-2:])

    def predict(self,
                batch_inputs: Tensor,
                batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        """One mask per given point (``mode='point'``) or centre decoding
        (:class:`P2SegPointGroupingHead`).

        Returns:
            list[DetDataSample]: With ``pred_instances`` = InstanceData of
            ``masks`` (N, H0, W0) bool, ``bboxes`` (N, 4), ``labels`` (N,),
            ``scores`` (N,), at ``ori_shape`` when ``rescale``.
        """
        outputs = self._forward(batch_inputs)
        raw_inputs = None
        if self.grouping_head.test_cfg['grouping'] == 'geodesic':
            raw_inputs = self._unnormalised(batch_inputs)
        results = self.grouping_head.predict(
            *outputs,
            batch_data_samples,
            affinity_head=self.affinity_head,
            num_walks=self.criterion.num_walks,
            center_trained=self.center_offset_head.loss_center_weight > 0,
            input_size=batch_inputs.shape[-2:],
            rescale=rescale,
            inputs=batch_inputs,
            raw_inputs=raw_inputs)
        return self.add_pred_to_datasample(batch_data_samples, results)

    def _unnormalised(self, batch_inputs: Tensor) -> Tensor:
        """The input before the data preprocessor's (x - mean) / std
        (0-255, its channel order), for ``test_cfg.grouping='geodesic'``."""
        pre = self.data_preprocessor
        if not getattr(pre, '_enable_normalize', False):
            return batch_inputs
        return batch_inputs * pre.std + pre.mean
