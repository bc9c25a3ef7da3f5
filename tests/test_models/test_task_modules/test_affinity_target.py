# Copyright (c) p2seg_mm contributors. All rights reserved.
import pytest
import torch
import torch.nn.functional as F

from p2seg_mm.models.task_modules.target_generators.affinity_target import (
    instance_membership, pool_membership, semantic_membership)


def _two_instances_8x8():
    ids = torch.zeros((8, 8), dtype=torch.long)
    ids[0:4, 0:4] = 1  # exactly the top-left cell
    ids[5, 6] = 2  # one pixel in the bottom-right cell
    ids[3, 4] = 2  # one pixel in the top-right cell
    return ids


def test_instance_membership_exact_2x2():
    member = instance_membership(_two_instances_8x8(), 2)
    assert member.dtype == torch.float32
    # cells in row-major order: (0,0), (0,1), (1,0), (1,1)
    assert member.tolist() == [[1., 0., 0., 0.], [0., 1., 0., 1.]]
    # three rows when a third, absent instance is requested
    assert instance_membership(_two_instances_8x8(), 3)[2].sum() == 0
    with pytest.raises(ValueError, match='num_instances'):
        instance_membership(_two_instances_8x8(), 1)


def test_semantic_membership_ignores_background_and_ignore():
    seg = torch.zeros((8, 8), dtype=torch.long)
    seg[0:4, 4:8] = 255  # ignore: no row
    seg[4:8, 0:4] = 3  # class 2
    seg[1, 1] = 1  # class 0, one pixel
    seg[4, 4] = 1  # class 0, one pixel
    member = semantic_membership(seg, [2, 0, 5])
    assert member.tolist() == [[0., 0., 1., 0.], [1., 0., 0., 1.],
                               [0., 0., 0., 0.]]
    empty = semantic_membership(seg, [])
    assert empty.shape == (0, 4)


def test_pool_membership_odd_size_matches_embedding_grid():
    masks = torch.zeros((2, 9, 10), dtype=torch.bool)
    masks[0, 8, 9] = True  # last pixel -> cell (2, 2)
    masks[1, 4, 4] = True  # cell (1, 1)
    masks[1, 0, 3] = True  # cell (0, 0)
    member = pool_membership(masks)
    assert member.shape == (2, 9)  # h = ceil(9/4) = 3, w = ceil(10/4) = 3
    assert torch.nonzero(member[0]).flatten().tolist() == [8]
    assert torch.nonzero(member[1]).flatten().tolist() == [0, 4]
    # same grid as ceil-mode max pooling
    ref = F.max_pool2d(masks.float()[None], 4, 4, ceil_mode=True)[0]
    assert torch.equal(member, ref.flatten(1))
    assert pool_membership(masks, stride=2).shape == (2, 25)


def test_pool_membership_small_and_empty():
    member = pool_membership(torch.ones((1, 3, 2)))
    assert member.tolist() == [[1.]]
    assert pool_membership(torch.zeros((0, 9, 10))).shape == (0, 9)
    assert instance_membership(torch.zeros((9, 10), dtype=torch.long),
                               0).shape == (0, 9)


def test_majority_membership_does_not_dilate_small_objects():
    """A 3x3 object inside an 8x8 map (stride 4): max-pooling makes every
    cell it touches a member (4 cells, 64 px for 9), majority only the cell
    holding more than half of its pixels in the object."""
    masks = torch.zeros(1, 8, 8, dtype=torch.bool)
    masks[0, 1:4, 1:4] = True  # 9 px of cell (0, 0)
    assert pool_membership(masks, 4).tolist() == [[1., 0., 0., 0.]]
    masks[0, 3:5, 3:5] = True  # now touches all four cells
    assert pool_membership(masks, 4).tolist() == [[1., 1., 1., 1.]]
    assert pool_membership(masks, 4, 'majority').tolist() == \
        [[1., 0., 0., 0.]]  # cell 0 holds 9 of 16 px, the others 1-3
    half = torch.zeros(1, 4, 4, dtype=torch.bool)
    half[0, :2] = True  # exactly half: not a member
    assert pool_membership(half, 4, 'majority').tolist() == [[0.]]
    half[0, 2, 0] = True
    assert pool_membership(half, 4, 'majority').tolist() == [[1.]]
    seg = torch.zeros(8, 8, dtype=torch.long)
    seg[1:4, 1:4] = 2
    assert semantic_membership(seg, [1], 4, 'majority').tolist() == \
        [[1., 0., 0., 0.]]
    with pytest.raises(ValueError, match='mode'):
        pool_membership(masks, 4, 'mean')


def test_semantic_membership_background_row():
    seg = torch.zeros(8, 8, dtype=torch.long)
    seg[0:4, 0:4] = 2  # class 1 fills cell 0
    seg[4:8, 4:8] = 255  # ignore fills cell 3
    assert semantic_membership(seg, [1], 4).tolist() == [[1., 0., 0., 0.]]
    rows = semantic_membership(seg, [1], 4, background=True)
    assert rows.tolist() == [[0., 1., 1., 0.], [1., 0., 0., 0.]]
