# Copyright (c) p2seg_mm contributors. All rights reserved.
from typing import Sequence

import numpy as np
import torch
from mmengine.structures import InstanceData, PixelData

from mmdet.datasets.transforms import PackDetInputs
from mmdet.registry import TRANSFORMS

_S2I_KEYS = {
    'gt_center_heatmap': 'center_heatmap',
    'gt_offset': 'offset',
    'gt_offset_weight': 'offset_weight',
}


@TRANSFORMS.register_module()
class PackP2SegInputs(PackDetInputs):
    """Pack image, points, pseudo-map and static S2I targets for `P2Seg
    <https://arxiv.org/abs/2401.09709>`_.

    The ``DetDataSample`` holds:

    - ``gt_instances``: ``points`` (N, 2) float32 ``(x, y)`` and ``labels``
      (N,) int64 of the non-ignored points;
    - ``ignored_instances``: the same fields for ignored points (crowd or
      cropped away); both are always set, with zero-length tensors when
      empty;
    - ``gt_sem_seg``: ``PixelData(sem_seg=(1, H, W) long)`` from
      ``gt_seg_map`` (0 = background, c + 1 = class c, 255 = ignore);
    - ``gt_s2i``: ``PixelData(center_heatmap=(C, H, W), offset=(2, H, W),
      offset_weight=(1, H, W))`` float32, when ``GenerateS2ITargets`` ran;
    - metainfo: ``meta_keys`` found in the results.

    Boxes and masks are never packed (P2Seg trains on points only).

    Required Keys:

    - img
    - gt_points (np.float32, optional): shape (N, 2)
    - gt_points_labels (np.int64, optional): shape (N,)
    - gt_ignore_flags (bool, optional): shape (N,)
    - gt_seg_map (np.uint8, optional): shape (H, W)
    - gt_center_heatmap, gt_offset, gt_offset_weight (np.float32, optional)

    Added Keys:

    - inputs (torch.Tensor): shape (3, H, W)
    - data_samples (DetDataSample)

    Args:
        meta_keys (Sequence[str]): Keys copied into the metainfo. Defaults to
            those of ``PackDetInputs`` plus ``'homography_matrix'`` and
            ``'seg_map_path'``.
    """

    mapping_table = {'gt_points': 'points', 'gt_points_labels': 'labels'}

    def __init__(
        self,
        meta_keys: Sequence[str] = ('img_id', 'img_path', 'ori_shape',
                                    'img_shape', 'scale_factor', 'flip',
                                    'flip_direction', 'homography_matrix',
                                    'seg_map_path')
    ) -> None:
        super().__init__(meta_keys=meta_keys)

    def transform(self, results: dict) -> dict:
        """Pack ``results`` into ``inputs`` and ``data_samples``.

        Args:
            results (dict): Result dict of the pipeline.

        Returns:
            dict: ``inputs`` (Tensor) and ``data_samples`` (DetDataSample).
        """
        if 'gt_points' in results:
            num_points = len(results['gt_points'])
            results['gt_points'] = np.asarray(
                results['gt_points'], dtype=np.float32).reshape(-1, 2)
            results['gt_points_labels'] = np.asarray(
                results.get('gt_points_labels', np.zeros(0)),
                dtype=np.int64).reshape(-1)
            if len(results['gt_points_labels']) != num_points:
                raise ValueError(
                    f'{results.get("img_path")}: {num_points} gt_points but '
                    f'{len(results["gt_points_labels"])} gt_points_labels. '
                    'Fix: keep the point arrays aligned (never drop points).')
            if 'gt_ignore_flags' in results:
                results['gt_ignore_flags'] = np.asarray(
                    results['gt_ignore_flags'], dtype=bool)
        packed = super().transform(results)
        data_sample = packed['data_samples']
        data_sample.gt_instances = _complete(data_sample.gt_instances)
        data_sample.ignored_instances = _complete(
            data_sample.ignored_instances)
        if 'gt_sem_seg' in data_sample:
            data_sample.gt_sem_seg.sem_seg = \
                data_sample.gt_sem_seg.sem_seg.long()
        gt_s2i = self._pack_s2i(results)
        if gt_s2i is not None:
            data_sample.gt_s2i = gt_s2i
        return packed

    @staticmethod
    def _pack_s2i(results: dict):
        """Build ``PixelData`` of the static S2I targets, if present."""
        present = [key for key in _S2I_KEYS if key in results]
        if not present:
            return None
        if len(present) != len(_S2I_KEYS):
            missing = sorted(set(_S2I_KEYS) - set(present))
            raise ValueError(
                f'{results.get("img_path")}: static S2I targets are '
                f'incomplete, {missing} missing. Fix: produce all of '
                f'{list(_S2I_KEYS)} (GenerateS2ITargets does).')
        fields = {}
        for key, name in _S2I_KEYS.items():
            array = np.ascontiguousarray(results[key], dtype=np.float32)
            if array.ndim != 3:
                raise ValueError(
                    f'{results.get("img_path")}: {key} must be (C, H, W), '
                    f'got shape {array.shape}.')
            fields[name] = torch.from_numpy(array)
        return PixelData(**fields)


def _complete(instances: InstanceData) -> InstanceData:
    """Make sure ``points`` (N, 2) and ``labels`` (N,) exist."""
    if 'points' not in instances:
        instances.points = torch.zeros((0, 2), dtype=torch.float32)
    if 'labels' not in instances:
        instances.labels = torch.zeros((0, ), dtype=torch.int64)
    return instances
