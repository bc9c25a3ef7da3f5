# Copyright (c) p2seg_mm contributors. All rights reserved.
"""The one S2I grouping (pixel centre + offset -> nearest point)."""
import pytest
import torch

from p2seg_mm.models.utils.point_grouping import (group_class_pixels,
                                                  nearest_point_index,
                                                  pixel_centre_xy,
                                                  pixel_centres)

POINTS = torch.tensor([[1.5, 4.5], [6.5, 4.5]])


def group(offset, points):
    """Every pixel of the (H, W) image grouped: an (H, W) index map."""
    fg = torch.ones(offset.shape[1:], dtype=torch.bool)
    ii, jj, nearest = group_class_pixels(fg, offset, points)
    assert torch.equal(pixel_centre_xy(ii, jj),
                       pixel_centres(*fg.shape).flatten(1).t())
    return nearest.view(fg.shape)


def test_pixel_centres():
    grid = pixel_centres(2, 3)
    assert grid.shape == (2, 2, 3)
    assert grid[:, 1, 2].tolist() == [2.5, 1.5]


def test_group_pixels_voronoi_and_shift():
    ids = group(torch.zeros(2, 8, 8), POINTS)
    expected = torch.tensor([0] * 4 + [1] * 4).expand(8, 8)
    assert ids.dtype == torch.long
    assert torch.equal(ids, expected)
    # moving every pixel 2 px to the left: column 5 lands on x = 3.5
    # (point 0), column 6 on x = 4.5 (point 1)
    shift = torch.zeros(2, 8, 8)
    shift[0] = -2.
    ids = group(shift, POINTS)
    assert torch.equal(ids, (torch.arange(8) >= 6).long().expand(8, 8))
    with pytest.raises(ValueError, match='K >= 1'):
        group(shift, torch.zeros(0, 2))


def test_nearest_point_index_blocks_and_ties():
    points = torch.stack([torch.arange(40.), torch.zeros(40)], dim=1)
    points[16] = points[0]  # same place as point 0, in another block
    xy = torch.tensor([[37.2, 5.], [0.5, 0.], [0., 0.]])
    # ties (points 0, 1 and 16 for the 2nd query) go to the lowest index
    assert nearest_point_index(xy, points).tolist() == [37, 0, 0]


def test_in_components_groups_each_blob_among_its_points():
    """Two blobs, a point in each, offsets that all point at the left
    point: by default the right blob goes to the left point; in components
    each blob keeps its own point."""
    fg = torch.zeros(6, 12, dtype=torch.bool)
    fg[1:5, 1:4] = True
    fg[1:5, 8:11] = True
    points = torch.tensor([[2.5, 2.5], [9.5, 2.5]])
    offset = torch.zeros(2, 6, 12)
    offset[0] = 2.5 - (torch.arange(12).float() + 0.5)
    _, jj, plain = group_class_pixels(fg, offset, points)
    assert (plain == 0).all()
    _, jj, own = group_class_pixels(fg, offset, points, in_components=True)
    assert torch.equal(own, (jj >= 8).long())
