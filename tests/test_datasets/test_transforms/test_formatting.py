# Copyright (c) p2seg_mm contributors. All rights reserved.
import numpy as np
import pytest
import torch
from mmengine.structures import PixelData

from mmdet.registry import TRANSFORMS
from mmdet.structures import DetDataSample
from p2seg_mm.datasets.transforms.formatting import PackP2SegInputs


def _results(h=6, w=7, flags=(False, True, False)):
    n = len(flags)
    return dict(
        img=np.random.randint(0, 255, (h, w, 3)).astype(np.uint8),
        img_id=3,
        img_path='a.jpg',
        seg_map_path='a.png',
        ori_shape=(h, w),
        img_shape=(h, w),
        scale_factor=(1.0, 1.0),
        flip=False,
        flip_direction=None,
        homography_matrix=np.eye(3, dtype=np.float32),
        gt_points=np.arange(2 * n, dtype=np.float32).reshape(n, 2),
        gt_points_labels=np.arange(n, dtype=np.int64),
        gt_ignore_flags=np.array(flags, bool),
        gt_seg_map=np.full((h, w), 255, np.uint8))


def test_pack_points_and_sem_seg():
    pack = TRANSFORMS.build(dict(type='PackP2SegInputs'))
    assert isinstance(pack, PackP2SegInputs)
    results = _results()
    packed = pack(results)
    assert packed['inputs'].shape == (3, 6, 7)
    sample = packed['data_samples']
    assert isinstance(sample, DetDataSample)
    gt, ign = sample.gt_instances, sample.ignored_instances
    assert gt.points.dtype == torch.float32 and gt.points.shape == (2, 2)
    torch.testing.assert_close(gt.points, torch.tensor([[0., 1.], [4., 5.]]))
    torch.testing.assert_close(gt.labels, torch.tensor([0, 2]))
    torch.testing.assert_close(ign.points, torch.tensor([[2., 3.]]))
    assert ign.labels.dtype == torch.int64
    assert set(gt.keys()) == {'points', 'labels'}
    sem = sample.gt_sem_seg.sem_seg
    assert sem.shape == (1, 6, 7) and sem.dtype == torch.long
    assert (sem == 255).all()
    assert sample.seg_map_path == 'a.png'
    assert sample.img_id == 3
    np.testing.assert_array_equal(sample.homography_matrix, np.eye(3))
    assert 'gt_s2i' not in sample


@pytest.mark.parametrize('flags', [(), (True, True), (False, )])
def test_empty_sets_keep_their_shapes(flags):
    sample = PackP2SegInputs()(_results(flags=flags))['data_samples']
    for instances in (sample.gt_instances, sample.ignored_instances):
        assert instances.points.shape[1:] == (2, )
        assert instances.points.dtype == torch.float32
        assert instances.labels.dtype == torch.int64
        assert len(instances.points) == len(instances.labels)
    assert len(sample.gt_instances) + len(
        sample.ignored_instances) == len(flags)


def test_no_point_keys():
    results = _results()
    for key in ('gt_points', 'gt_points_labels', 'gt_ignore_flags',
                'gt_seg_map'):
        del results[key]
    sample = PackP2SegInputs()(results)['data_samples']
    assert sample.gt_instances.points.shape == (0, 2)
    assert sample.ignored_instances.labels.shape == (0, )
    assert 'gt_sem_seg' not in sample


def test_no_ignore_flags_means_all_valid():
    results = _results()
    del results['gt_ignore_flags']
    sample = PackP2SegInputs()(results)['data_samples']
    assert len(sample.gt_instances.points) == 3
    assert sample.ignored_instances.points.shape == (0, 2)


def test_pack_s2i_targets_from_flipped_arrays():
    results = _results()
    heat = np.random.rand(2, 6, 7).astype(np.float32)
    results['gt_center_heatmap'] = heat[:, :, ::-1]  # negative strides
    results['gt_offset'] = np.ones((2, 6, 7), np.float64)
    results['gt_offset_weight'] = np.zeros((1, 6, 7), np.float32)
    results['gt_seg_map'] = results['gt_seg_map'][:, ::-1]
    sample = PackP2SegInputs()(results)['data_samples']
    s2i = sample.gt_s2i
    assert isinstance(s2i, PixelData)
    assert s2i.center_heatmap.shape == (2, 6, 7)
    assert s2i.offset.shape == (2, 6, 7)
    assert s2i.offset_weight.shape == (1, 6, 7)
    for value in s2i.values():
        assert value.dtype == torch.float32
    torch.testing.assert_close(s2i.center_heatmap,
                               torch.from_numpy(heat[:, :, ::-1].copy()))


def test_partial_s2i_targets_is_an_error():
    results = _results()
    results['gt_center_heatmap'] = np.zeros((2, 6, 7), np.float32)
    with pytest.raises(ValueError, match='gt_offset') as err:
        PackP2SegInputs()(results)
    assert 'a.jpg' in str(err.value)


def test_misaligned_points_is_an_error():
    results = _results()
    results['gt_points_labels'] = results['gt_points_labels'][:2]
    with pytest.raises(ValueError, match='3 gt_points but 2'):
        PackP2SegInputs()(results)


def test_meta_keys_and_repr():
    pack = PackP2SegInputs(meta_keys=('img_id', 'ori_shape'))
    sample = pack(_results())['data_samples']
    assert set(sample.metainfo) == {'img_id', 'ori_shape'}
    assert repr(pack) == "PackP2SegInputs(meta_keys=('img_id', 'ori_shape'))"
