# Copyright (c) p2seg_mm contributors. All rights reserved.
import pytest
import torch
from mmengine.structures import InstanceData, PixelData

from mmdet.structures import DetDataSample
from p2seg_mm.models.data_preprocessors.data_preprocessor import \
    P2SegDataPreprocessor


def _sample(height, width, with_s2i=True, with_seg=True):
    sample = DetDataSample(metainfo=dict(img_shape=(height, width)))
    sample.gt_instances = InstanceData(
        bboxes=torch.zeros(0, 4), labels=torch.zeros(0, dtype=torch.long))
    if with_seg:
        sample.gt_sem_seg = PixelData(
            sem_seg=torch.ones(1, height, width, dtype=torch.long))
    if with_s2i:
        sample.gt_s2i = PixelData(
            center_heatmap=torch.full((2, height, width), 0.5),
            offset=torch.full((2, height, width), 3.),
            offset_weight=torch.ones(1, height, width))
    return sample


def _data(samples):
    return dict(
        inputs=[
            torch.randint(0, 255, (3, *s.img_shape), dtype=torch.uint8)
            for s in samples
        ],
        data_samples=samples)


@pytest.mark.parametrize('training', [True, False])
def test_pads_sem_seg_and_s2i_bottom_right(training):
    pre = P2SegDataPreprocessor(
        mean=[0, 0, 0], std=[1, 1, 1], pad_size_divisor=32)
    out = pre(_data([_sample(61, 70), _sample(64, 64)]), training=training)
    assert out['inputs'].shape == (2, 3, 64, 96)
    first, second = out['data_samples']
    assert first.batch_input_shape == (64, 96)
    sem = first.gt_sem_seg.sem_seg
    assert sem.shape == (1, 64, 96)
    assert (sem[:, :61, :70] == 1).all()
    assert (sem[:, 61:] == 255).all() and (sem[:, :, 70:] == 255).all()
    for key, value in (('center_heatmap', 0.5), ('offset', 3.),
                       ('offset_weight', 1.)):
        field = first.gt_s2i.get(key)
        assert field.shape[-2:] == (64, 96)
        assert (field[:, :61, :70] == value).all()
        assert field[:, 61:].abs().sum() == 0
        assert field[:, :, 70:].abs().sum() == 0
    assert second.gt_s2i.offset.shape == (2, 64, 96)
    assert (second.gt_sem_seg.sem_seg[:, :, 64:] == 255).all()


def test_missing_fields_are_fine():
    pre = P2SegDataPreprocessor(mean=[0, 0, 0], std=[1, 1, 1])
    samples = [_sample(30, 20, with_s2i=False, with_seg=False)]
    out = pre(_data(samples), training=False)
    assert 'gt_sem_seg' not in out['data_samples'][0]
    assert 'gt_s2i' not in out['data_samples'][0]
