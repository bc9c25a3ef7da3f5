# Copyright (c) p2seg_mm contributors. All rights reserved.
import numpy as np
import pytest

from mmdet.registry import TRANSFORMS
from p2seg_mm.datasets.transforms.s2i_targets import GenerateS2ITargets


def _results():
    seg = np.zeros((16, 20), np.uint8)
    seg[2:10, 2:12] = 1  # class 0, 80 px, holds point 0
    seg[12:16, :] = 255
    return dict(
        img_path='demo/img_0.jpg',
        img_shape=(16, 20),
        gt_seg_map=seg,
        gt_points=np.array([[5.5, 4.5], [15.5, 3.5], [-2.0, 3.0]], np.float32),
        gt_points_labels=np.array([0, 1, 0], np.int64),
        gt_ignore_flags=np.array([False, True, True]))


def test_generate_s2i_targets_end_to_end():
    transform = TRANSFORMS.build(
        dict(type='GenerateS2ITargets', num_classes=2, sigma=2.))
    assert isinstance(transform, GenerateS2ITargets)
    results = transform(_results())
    heat = results['gt_center_heatmap']
    offset, weight = results['gt_offset'], results['gt_offset_weight']
    assert heat.shape == (2, 16, 20) and heat.dtype == np.float32
    assert offset.shape == (2, 16, 20) and offset.dtype == np.float32
    assert weight.shape == (1, 16, 20) and weight.dtype == np.float32
    assert heat[0, 4, 5] == 1.0
    assert not heat[1].any()  # the only class-1 point is ignored
    assert weight.sum() == 80 and weight[0, 2:10, 2:12].all()
    # pixel (9, 11), centre (11.5, 9.5) -> point (5.5, 4.5)
    assert offset[:, 9, 11].tolist() == [-6.0, -5.0]
    # the points are left untouched
    assert len(results['gt_points']) == 3


def test_generate_s2i_targets_centroid_and_no_ignore_flags():
    results = _results()
    del results['gt_ignore_flags']
    results['gt_points'] = results['gt_points'][:1]
    results['gt_points_labels'] = results['gt_points_labels'][:1]
    results = GenerateS2ITargets(num_classes=2, offset_to='centroid')(results)
    # centroid of rows 2..9, cols 2..11 = (6.5, 5.5) -> pixel centre (6.5, 5.5)
    assert results['gt_offset'][:, 2, 2].tolist() == [4.0, 3.0]


def test_generate_s2i_targets_errors_name_the_image():
    results = _results()
    results['gt_seg_map'] = results['gt_seg_map'][:8]
    with pytest.raises(ValueError, match='img_0.jpg'):
        GenerateS2ITargets(num_classes=2)(results)
    results = _results()
    results['gt_ignore_flags'][2] = False  # out-of-image, not flagged
    with pytest.raises(ValueError, match='img_0.jpg.*outside'):
        GenerateS2ITargets(num_classes=2)(results)
    results = _results()
    del results['gt_seg_map']
    with pytest.raises(KeyError, match='gt_seg_map'):
        GenerateS2ITargets(num_classes=2)(results)
    with pytest.raises(ValueError, match='offset_to'):
        GenerateS2ITargets(num_classes=2, offset_to='center')


def test_generate_s2i_targets_repr():
    assert repr(GenerateS2ITargets(num_classes=3)) == (
        "GenerateS2ITargets(num_classes=3, sigma=6.0, min_area=50, "
        "dis_group=True, offset_to='point', grouping='euclidean', "
        'edge_weight=30.0)')


def test_generate_s2i_targets_without_num_classes_says_where_it_comes_from():
    """num_classes may be left out of configs (CocoPointDataset fills it
    from its classes); used alone without it, the transform says so."""
    transform = GenerateS2ITargets(sigma=2.)
    with pytest.raises(ValueError, match="metainfo\\['classes'\\]"):
        transform(_results())


def test_geodesic_grouping_reads_the_image_and_changes_the_targets():
    """Two touching rods with a bright seam: the switch moves the split
    from the Voronoi line onto the seam (values in
    tests/test_models/test_task_modules/test_geodesic_grouping.py)."""
    from tests.builders import two_touching_rods
    fg, img, points = two_touching_rods()
    seg = fg.astype(np.uint8)

    def results():
        return dict(img_path='demo/rods.png', img=img.copy(),
                    img_shape=(12, 20), gt_seg_map=seg.copy(),
                    gt_points=points.astype(np.float32),
                    gt_points_labels=np.array([0, 0], np.int64))

    euclid = GenerateS2ITargets(num_classes=1, min_area=1)(results())
    geo = GenerateS2ITargets(num_classes=1, min_area=1,
                             grouping='geodesic')(results())
    assert euclid['gt_offset'][:, 3, 1].tolist() == [2.5, 4.5]
    assert geo['gt_offset'][:, 3, 1].tolist() == [8.5, 0.5]
    no_img = results()
    del no_img['img']
    with pytest.raises(KeyError, match="'img'"):
        GenerateS2ITargets(num_classes=1, grouping='geodesic')(no_img)
    with pytest.raises(ValueError, match='grouping'):
        GenerateS2ITargets(num_classes=1, grouping='voronoi')
    with pytest.raises(ValueError, match='edge_weight'):
        GenerateS2ITargets(num_classes=1, edge_weight=-2)
