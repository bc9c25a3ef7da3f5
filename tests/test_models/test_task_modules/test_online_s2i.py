# Copyright (c) p2seg_mm contributors. All rights reserved.
import pytest
import torch

from mmdet.registry import TASK_UTILS
from p2seg_mm.models.task_modules.target_generators.online_s2i import \
    OnlineS2ITarget
from p2seg_mm.models.utils.point_grouping import pixel_centres


def _seg_8x8():
    """Class 0 everywhere except ignore row 0 and background column 0."""
    seg = torch.ones((8, 8), dtype=torch.long)
    seg[0, :] = 255
    seg[:, 0] = 0
    return seg


POINTS = torch.tensor([[1.5, 4.5], [6.5, 4.5]])


def test_online_target_voronoi_with_zero_offsets():
    seg = _seg_8x8()
    labels = torch.tensor([0, 0])
    target = TASK_UTILS.build(dict(type='OnlineS2ITarget'))
    assert isinstance(target, OnlineS2ITarget)
    offset, weight, ids = target(torch.zeros(2, 8, 8), seg, POINTS, labels)
    fg = seg == 1
    expected = torch.zeros(8, 8, dtype=torch.long)
    expected[1:, 1:4] = 1
    expected[1:, 4:] = 2
    assert torch.equal(ids, expected)
    assert torch.equal(weight[0], fg.float())
    centres = pixel_centres(8, 8)
    assigned = POINTS[(ids - 1).clamp(min=0)].permute(2, 0, 1)
    torch.testing.assert_close(offset, (assigned - centres) * fg)
    # hand-checked pixel: (i, j) = (2, 5) -> point 1 (6.5, 4.5)
    assert offset[:, 2, 5].tolist() == [1.0, 2.0]


def test_online_target_follows_predicted_offsets():
    seg = _seg_8x8()
    centres = pixel_centres(8, 8)
    pred = POINTS[1].view(2, 1, 1) - centres  # every pixel lands on point 1
    offset, weight, ids = OnlineS2ITarget()(pred, seg, POINTS,
                                            torch.tensor([0, 0]))
    fg = seg == 1
    assert torch.equal(ids, fg.long() * 2)
    torch.testing.assert_close(offset, pred * fg)
    assert weight.sum() == fg.sum()


def test_online_target_does_not_mix_classes():
    seg = _seg_8x8()
    seg[6:, 1:] = 2  # class 1 in the bottom rows
    points = torch.cat([POINTS, torch.tensor([[4.5, 2.5]])])
    labels = torch.tensor([0, 0, 1])
    _, weight, ids = OnlineS2ITarget()(torch.zeros(2, 8, 8), seg, points,
                                       labels)
    # class-1 pixels all go to their only point, however far it is
    assert (ids[6:, 1:] == 3).all()
    # class-0 pixels never go to the class-1 point, even nearest to it
    assert ids[2, 4] == 2 and ids[2, 3] == 1
    assert set(ids[1:6, 1:].unique().tolist()) == {1, 2}
    assert (ids[0] == 0).all() and (ids[:, 0] == 0).all()
    assert torch.equal(weight[0] > 0, ids > 0)


def test_online_target_empty_and_no_grad():
    seg = _seg_8x8()
    pred = torch.randn(2, 8, 8, requires_grad=True)
    offset, weight, ids = OnlineS2ITarget()(pred, seg, torch.zeros(0, 2),
                                            torch.zeros(0, dtype=torch.long))
    assert not offset.any() and not weight.any() and not ids.any()
    offset, weight, ids = OnlineS2ITarget()(pred, seg, POINTS,
                                            torch.tensor([0, 0]))
    assert not offset.requires_grad and not weight.requires_grad
    assert offset.dtype == torch.float32 and ids.dtype == torch.long
    # a class whose points have no pixels gives nothing
    _, weight, ids = OnlineS2ITarget()(pred, seg, POINTS, torch.tensor([3, 3]))
    assert not weight.any() and not ids.any()
    with pytest.raises(ValueError, match='does not match'):
        OnlineS2ITarget()(pred, seg[:4], POINTS, torch.tensor([0, 0]))
