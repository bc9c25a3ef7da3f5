# Copyright (c) p2seg_mm contributors. All rights reserved.
import pytest
import torch
import torch.nn.functional as F

from p2seg_mm.models.post_processing.point_decoding import (
    decode_instances_with_centers, decode_instances_with_points)
from p2seg_mm.models.task_modules.target_generators.online_s2i import \
    OnlineS2ITarget
from p2seg_mm.models.utils.point_grouping import pixel_centres
from p2seg_mm.models.task_modules.target_generators.static_s2i import \
    make_center_heatmap

NUM_CLASSES = 3


def _separated_scene():
    """Three separated instances on 12x16: two of class 0, one of class 1.

    Returns the semantic map, the (3, H, W) instance masks, the points and
    their labels (points in an order that mixes the classes).
    """
    inst = torch.zeros((3, 12, 16), dtype=torch.bool)
    inst[0, 1:5, 1:6] = True  # class 0
    inst[1, 7:11, 3:13] = True  # class 1
    inst[2, 1:5, 9:15] = True  # class 0
    points = torch.tensor([[3.5, 2.5], [8.5, 8.5], [12.5, 3.5]])
    labels = torch.tensor([0, 1, 0])
    return inst, points, labels


def _touching_scene():
    """Two touching class-0 instances whose border is not the Voronoi one."""
    inst = torch.zeros((2, 8, 16), dtype=torch.bool)
    inst[0, 1:7, 1:5] = True  # columns 1..4
    inst[1, 1:7, 5:15] = True  # columns 5..14
    points = torch.tensor([[2.5, 3.5], [11.5, 3.5]])
    labels = torch.tensor([0, 0])
    return inst, points, labels


def _semantics(inst, labels):
    seg = torch.zeros(inst.shape[1:], dtype=torch.long)
    for mask, label in zip(inst, labels):
        seg[mask] = label + 1
    sem_prob = F.one_hot(seg, NUM_CLASSES + 1).permute(2, 0, 1).float()
    return seg, sem_prob


def _perfect_offsets(inst, points):
    """Offsets from every instance pixel to its own point (by hand)."""
    centres = pixel_centres(*inst.shape[1:])
    offset = torch.zeros_like(centres)
    for mask, point in zip(inst, points):
        offset[:, mask] = (point.view(2, 1, 1) - centres)[:, mask]
    return offset


def _assert_same_masks(pred, inst):
    assert pred.shape == inst.shape and pred.dtype == torch.bool
    for got, want in zip(pred, inst):
        iou = (got & want).sum() / (got | want).sum()
        assert iou == 1.0


def test_round_trip_separated_with_online_targets():
    inst, points, labels = _separated_scene()
    seg, sem_prob = _semantics(inst, labels)
    offset, weight, ids = OnlineS2ITarget()(torch.zeros(2, 12, 16), seg,
                                            points, labels)
    for k, mask in enumerate(inst):
        assert torch.equal(ids == k + 1, mask)
    result = decode_instances_with_points(sem_prob, offset, points, labels)
    _assert_same_masks(result['masks'], inst)
    assert result['labels'].tolist() == [0, 1, 0]
    assert result['scores'].tolist() == [1.0, 1.0, 1.0]


def test_round_trip_touching_with_perfect_offsets():
    inst, points, labels = _touching_scene()
    seg, sem_prob = _semantics(inst, labels)
    # zero offsets split the pair at x = 7 (Voronoi), not at x = 5
    result = decode_instances_with_points(sem_prob, torch.zeros(2, 8, 16),
                                          points, labels)
    assert result['masks'][0].sum() == 6 * 6
    # the online target fed with the true offsets reproduces them
    true_offset = _perfect_offsets(inst, points)
    offset, _, ids = OnlineS2ITarget()(true_offset, seg, points, labels)
    torch.testing.assert_close(offset, true_offset)
    result = decode_instances_with_points(sem_prob, offset, points, labels)
    _assert_same_masks(result['masks'], inst)
    assert result['labels'].tolist() == [0, 0]


def test_scores_and_image_label_cleaning():
    inst, points, labels = _touching_scene()
    sem_prob = torch.zeros(NUM_CLASSES + 1, 8, 16)
    sem_prob[0] = 1.
    any_inst = inst.any(0)
    # instance pixels: class 2 (absent from the image) wins before cleaning
    sem_prob[:, any_inst] = torch.tensor([0.2, 0.3, 0., 0.5])[:, None]
    offset = _perfect_offsets(inst, points)
    result = decode_instances_with_points(sem_prob, offset, points, labels)
    _assert_same_masks(result['masks'], inst)
    torch.testing.assert_close(result['scores'], torch.tensor([0.3, 0.3]))
    # with class 2 declared present the points lose their pixels: fallback
    result = decode_instances_with_points(
        sem_prob,
        offset,
        points,
        labels,
        img_labels=torch.tensor([0, 2]),
        fallback_half_size=1)
    assert result['scores'].tolist() == [0.5, 0.5]
    assert result['masks'].sum(dim=(1, 2)).tolist() == [4, 4]


def test_fallback_square_and_disabled():
    sem_prob = torch.zeros(NUM_CLASSES + 1, 12, 16)
    sem_prob[0] = 1.  # everything is background
    points = torch.tensor([[5.5, 4.5], [0.5, 0.5]])
    labels = torch.tensor([1, 2])
    result = decode_instances_with_points(
        sem_prob,
        torch.zeros(2, 12, 16),
        points,
        labels,
        fallback_half_size=2,
        fallback_score=0.25)
    expected = torch.zeros(2, 12, 16, dtype=torch.bool)
    expected[0, 2:6, 3:7] = True  # rows 4-2..4+1, columns 5-2..5+1
    expected[1, 0:2, 0:2] = True  # clipped at the border
    assert torch.equal(result['masks'], expected)
    assert result['scores'].tolist() == [0.25, 0.25]
    assert result['labels'].tolist() == [1, 2]
    result = decode_instances_with_points(
        sem_prob, torch.zeros(2, 12, 16), points, labels, fallback_half_size=0)
    assert not result['masks'].any()
    assert result['scores'].tolist() == [0.0, 0.0]


def test_decode_with_points_no_points_and_bad_input():
    sem_prob = torch.ones(NUM_CLASSES + 1, 5, 6) / 4
    result = decode_instances_with_points(sem_prob, torch.zeros(2, 5, 6),
                                          torch.zeros(0, 2),
                                          torch.zeros(0, dtype=torch.long))
    assert result['masks'].shape == (0, 5, 6)
    assert result['scores'].shape == (0, ) and result['labels'].shape == (0, )
    with pytest.raises(ValueError, match='offset'):
        decode_instances_with_points(sem_prob, torch.zeros(2, 4, 6),
                                     torch.zeros(0, 2),
                                     torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match='labels'):
        decode_instances_with_points(sem_prob, torch.zeros(2, 5, 6),
                                     torch.ones(1, 2), torch.tensor([3]))


def test_round_trip_with_centers():
    inst, points, labels = _separated_scene()
    seg, sem_prob = _semantics(inst, labels)
    center = torch.from_numpy(
        make_center_heatmap(
            points.numpy(), labels.numpy(), NUM_CLASSES, (12, 16), sigma=2.))
    offset, _, _ = OnlineS2ITarget()(torch.zeros(2, 12, 16), seg, points,
                                     labels)
    result = decode_instances_with_centers(sem_prob, center, offset)
    assert result['masks'].shape == (3, 12, 16)
    assert torch.equal(result['scores'], torch.ones(3))
    # match predictions to instances by their label and their mask
    pairs = {(int(label), tuple(mask.flatten().tolist()))
             for mask, label in zip(result['masks'], result['labels'])}
    assert pairs == {(int(label), tuple(mask.flatten().tolist()))
                     for mask, label in zip(inst, labels)}
    # min_area drops the smallest instance (class 0, 20 px)
    result = decode_instances_with_centers(
        sem_prob, center, offset, min_area=21)
    assert sorted(result['masks'].sum(dim=(1, 2)).tolist()) == [24, 40]


def test_centers_scores_top_k_and_empty():
    inst, points, labels = _separated_scene()
    seg, sem_prob = _semantics(inst, labels)
    center = torch.zeros(NUM_CLASSES, 12, 16)
    center[0, 2, 3] = 0.8  # instance 0 (class 0)
    center[0, 3, 12] = 0.4  # instance 2 (class 0)
    center[1, 8, 8] = 0.05  # below the threshold
    offset = _perfect_offsets(inst, points)
    result = decode_instances_with_centers(sem_prob, center, offset)
    torch.testing.assert_close(result['scores'], torch.tensor([0.8, 0.4]))
    _assert_same_masks(result['masks'], inst[[0, 2]])
    result = decode_instances_with_centers(sem_prob, center, offset, top_k=1)
    # the single class-0 centre takes every class-0 pixel
    assert torch.equal(result['masks'][0], inst[0] | inst[2])
    empty = decode_instances_with_centers(
        F.one_hot(torch.zeros(12, 16, dtype=torch.long),
                  NUM_CLASSES + 1).permute(2, 0, 1).float(), center, offset)
    assert empty['masks'].shape == (0, 12, 16)
    assert empty['masks'].dtype == torch.bool
    assert empty['scores'].shape == (0, ) and empty['labels'].shape == (0, )
    with pytest.raises(ValueError, match='odd'):
        decode_instances_with_centers(sem_prob, center, offset, nms_kernel=4)


def test_group_in_components_keeps_pixels_in_their_blob():
    """Two blobs, one point each, offsets that all point at the left point:
    by default the right blob's pixels go to the left point; grouped in
    components each blob goes to its own point. A blob without a point is
    still grouped among all points."""
    from p2seg_mm.models.post_processing.point_decoding import \
        decode_instances_with_points as decode
    sem = torch.zeros(12, 20, dtype=torch.long)
    sem[2:6, 2:6] = 1  # left blob, point (3.5, 3.5)
    sem[2:6, 12:16] = 1  # right blob, point (13.5, 3.5)
    sem[9:11, 17:19] = 1  # blob without a point
    prob = F.one_hot(sem, 2).permute(2, 0, 1).float()
    points = torch.tensor([[3.5, 3.5], [13.5, 3.5]])
    labels = torch.tensor([0, 0])
    ys, xs = torch.meshgrid(torch.arange(12) + 0.5, torch.arange(20) + 0.5,
                            indexing='ij')
    offset = torch.stack([3.5 - xs, 3.5 - ys])  # everything -> left point
    plain = decode(prob, offset, points, labels, fallback_half_size=0)
    assert plain['masks'][0].sum() == 16 + 16 + 4
    assert plain['masks'][1].sum() == 0
    grouped = decode(prob, offset, points, labels, fallback_half_size=0,
                     group_in_components=True)
    assert torch.equal(grouped['masks'][0], sem.eq(1) & (xs < 10) |
                       (sem.eq(1) & (ys > 8)))
    assert torch.equal(grouped['masks'][1], sem.eq(1) & (xs > 10) &
                       (ys < 8))
