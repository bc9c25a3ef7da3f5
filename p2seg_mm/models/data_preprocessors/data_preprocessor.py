# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Data preprocessor that also pads P2Seg's dense targets."""
from typing import Sequence

import torch.nn.functional as F
from mmengine.structures import PixelData
from torch import Tensor

from mmdet.models.data_preprocessors import DetDataPreprocessor
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample


def _pad_bottom_right(x: Tensor, shape: Sequence[int], value) -> Tensor:
    """Pad a (..., h, w) tensor at the bottom/right to ``shape`` (H, W)."""
    height, width = x.shape[-2:]
    pad_h, pad_w = shape[0] - height, shape[1] - width
    if pad_h < 0 or pad_w < 0:
        raise ValueError(f'a dense target of size {(height, width)} is '
                         f'larger than batch_input_shape {tuple(shape)}; '
                         'the pipeline must resize targets with the image.')
    if pad_h == 0 and pad_w == 0:
        return x
    return F.pad(x, (0, pad_w, 0, pad_h), mode='constant', value=value)


@MODELS.register_module()
class P2SegDataPreprocessor(DetDataPreprocessor):
    """``DetDataPreprocessor`` that pads ``gt_sem_seg`` and ``gt_s2i``.

    After the images are normalised and padded, ``gt_sem_seg.sem_seg`` is
    padded with ``seg_pad_value`` (255, ignore) and every field of
    ``gt_s2i`` (centre heatmap, offsets, offset weights) with
    ``s2i_pad_value`` (0: no target, no weight) on the bottom/right to
    ``batch_input_shape``. Unlike mmdet's ``pad_seg`` this happens in
    training **and** test mode, whenever the fields are present.

    Args:
        seg_pad_value (int): Pad value of the semantic map. Defaults to 255.
        s2i_pad_value (float): Pad value of the S2I targets. Defaults to 0.
        **kwargs: Passed to ``DetDataPreprocessor``.
    """

    def __init__(self,
                 seg_pad_value: int = 255,
                 s2i_pad_value: float = 0.,
                 **kwargs) -> None:
        super().__init__(seg_pad_value=seg_pad_value, **kwargs)
        self.s2i_pad_value = s2i_pad_value

    def forward(self, data: dict, training: bool = False) -> dict:
        """Run ``DetDataPreprocessor`` then pad the P2Seg targets.

        Args:
            data (dict): Data sampled from the dataloader.
            training (bool): Training mode. Defaults to False.

        Returns:
            dict: ``inputs`` and ``data_samples`` with padded targets.
        """
        data = super().forward(data=data, training=training)
        data_samples = data['data_samples']
        if data_samples is not None:
            for sample in data_samples:
                self._pad_targets(sample)
        return data

    def _pad_targets(self, sample: DetDataSample) -> None:
        shape = sample.batch_input_shape
        if 'gt_sem_seg' in sample:
            sem_seg = _pad_bottom_right(sample.gt_sem_seg.sem_seg, shape,
                                        self.seg_pad_value)
            sample.gt_sem_seg = PixelData(
                metainfo=sample.gt_sem_seg.metainfo, sem_seg=sem_seg)
        if 'gt_s2i' in sample:
            s2i = sample.gt_s2i
            sample.gt_s2i = PixelData(
                metainfo=s2i.metainfo,
                **{
                    key:
                    _pad_bottom_right(s2i.get(key), shape, self.s2i_pad_value)
                    for key in s2i.keys()
                })
