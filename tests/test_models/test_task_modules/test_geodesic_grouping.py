# Copyright (c) p2seg_mm contributors. All rights reserved.
"""The geodesic split of a foreground between points, against hand-worked
cases where it and the Euclidean (Voronoi) split differ."""
import numpy as np
import pytest

from p2seg_mm.evaluation.nearest_point_baseline import nearest_point_masks
from p2seg_mm.models.task_modules.geodesic_grouping import (
    geodesic_point_labels, image_edge_cost)
from p2seg_mm.models.task_modules.target_generators.static_s2i import \
    make_static_offsets
from tests.builders import two_touching_rods


def _u_shape():
    """Two horizontal arms (rows 0 and 6, columns 0-19) joined by column 0;
    point 0 at the right end of the top arm, point 1 in the bottom arm."""
    fg = np.zeros((7, 20), bool)
    fg[0], fg[6], fg[:, 0] = True, True, True
    points = np.array([[19.5, 0.5], [10.5, 6.5]])
    return fg, points


def test_image_edge_cost_is_one_across_a_unit_step():
    img = np.zeros((5, 6), np.float32)
    img[:, 3:] = 255
    edge = image_edge_cost(img)
    assert edge.dtype == np.float32 and edge.shape == (5, 6)
    # Sobel [1 2 1] x [-1 0 1] / 4 across the step, 0 away from it
    np.testing.assert_allclose(edge[2, 2:4], 1.0)
    np.testing.assert_allclose(edge[2, 0], 0.0)
    # polarity-free and channel-averaged
    np.testing.assert_allclose(image_edge_cost(255 - img), edge)
    np.testing.assert_allclose(
        image_edge_cost(np.repeat(img[..., None], 3, 2)), edge)
    with pytest.raises(ValueError, match='image must be'):
        image_edge_cost(np.zeros((2, 3, 4, 5)))


def test_plain_geodesic_follows_the_foreground_not_the_straight_line():
    fg, points = _u_shape()
    labels = geodesic_point_labels(fg, points)
    # (0, 10): 6 px from point 1 across the gap, 9 px from point 0 along
    # the arm; the path to point 1 runs around the U (26 px)
    assert labels[0, 10] == 0
    euclid = ((np.arange(20) + 0.5 - points[:, :1])**2 +
              (0.5 - points[:, 1:])**2).argmin(0)
    assert euclid[10] == 1
    # the top arm up to its middle (19 - 0.5 * 26 px) is point 0's
    assert (labels[0, 13:] == 0).all() and (labels[6, 1:] == 1).all()
    assert (labels[~fg] == -1).all() and (labels[fg] >= 0).all()


def test_edges_keep_the_split_on_the_seam_between_touching_rods():
    fg, image, points = two_touching_rods()
    edge = image_edge_cost(image)
    labels = geodesic_point_labels(fg, points, edge, edge_weight=30.0)
    assert (labels[2:6] == 0).all() and (labels[7:10, :8] == 1).all()
    # without the edge the short rod's point takes the long rod's left end
    plain = geodesic_point_labels(fg, points)
    assert plain[3, 1] == 1
    # and so does the Voronoi split (the paper's dis_group)
    euclid = (1.5 - 4.0)**2 + (3.5 - 8.0)**2 < (1.5 - 10)**2 + (3.5 - 4)**2
    assert euclid


def test_points_off_the_foreground_or_without_reach():
    fg = np.zeros((6, 12), bool)
    fg[1:4, 1:4] = True  # component with a point
    fg[1:4, 8:11] = True  # component without one
    points = np.array([[2.5, 2.5], [6.5, 5.5], [2.5, 2.5]])
    labels = geodesic_point_labels(fg, points)
    # point 1 (off the foreground) gets nothing; the duplicate point 2
    # loses to the earlier point 0; the far component stays unassigned
    assert (labels[1:4, 1:4] == 0).all()
    assert (labels[1:4, 8:11] == -1).all()
    assert not (labels == 1).any() and not (labels == 2).any()
    assert (geodesic_point_labels(fg, np.zeros((0, 2))) == -1).all()


def test_bad_inputs_are_named():
    fg, points = _u_shape()
    for weight in (-1, float('nan'), 1e308, None, 'heavy'):
        with pytest.raises(ValueError, match='edge_weight'):
            geodesic_point_labels(fg, points, edge_weight=weight)
    # a negative edge map would hang the shortest-path search
    with pytest.raises(ValueError, match='finite and >= 0'):
        geodesic_point_labels(fg, points, -np.ones(fg.shape))
    with pytest.raises(ValueError, match='finite and >= 0'):
        geodesic_point_labels(fg, points, np.full(fg.shape, np.nan))
    with pytest.raises(ValueError, match=r'\(K, 2\)'):
        geodesic_point_labels(fg, np.zeros((2, 3)))
    # images the edge cost would misread
    ramp = np.tile(np.linspace(0, 1, 8, dtype=np.float32), (4, 1))
    with pytest.raises(ValueError, match='within \\[0, 1\\]'):
        image_edge_cost(ramp)
    with pytest.raises(ValueError, match='16-bit'):
        image_edge_cost((ramp * 65535).astype(np.uint16))
    with pytest.raises(ValueError, match='NaN'):
        image_edge_cost(np.full((3, 3), np.nan))
    with pytest.raises(ValueError, match='0-255'):
        image_edge_cost(np.zeros((3, 3), bool))
    np.testing.assert_allclose(image_edge_cost(ramp * 255),
                               image_edge_cost((ramp * 255).round()),
                               atol=0.01)
    with pytest.raises(ValueError, match='same shape'):
        geodesic_point_labels(fg, points, np.zeros((3, 3)))
    with pytest.raises(ValueError, match='outside'):
        geodesic_point_labels(fg, np.array([[25.0, 1.0]]))
    with pytest.raises(ValueError, match=r'fg must be \(H, W\)'):
        geodesic_point_labels(np.zeros(5, bool), points)


def test_static_offsets_switch_to_the_geodesic_split():
    fg, image, points = two_touching_rods()
    seg = fg.astype(np.uint8)  # class 0 -> value 1
    labels = np.array([0, 0])
    euclid, w_e = make_static_offsets(seg, points, labels, min_area=1)
    geo, w_g = make_static_offsets(
        seg, points, labels, min_area=1, grouping='geodesic', image=image)
    assert (w_e == w_g).all() and w_g[0][fg].all()
    # pixel (3, 1) (centre (1.5, 3.5)): Voronoi sends it to the short rod's
    # point (4, 8), the geodesic split to its own rod's point (10, 4)
    np.testing.assert_allclose(euclid[:, 3, 1], [4.0 - 1.5, 8.0 - 3.5])
    np.testing.assert_allclose(geo[:, 3, 1], [10.0 - 1.5, 4.0 - 3.5])
    # every long-rod pixel points to the long rod's point
    ii, jj = np.nonzero(fg[:6])
    np.testing.assert_allclose(geo[0, ii, jj], 10.0 - (jj + 0.5))
    # without dis_group the switch has nothing to split
    a, _ = make_static_offsets(seg, points, labels, min_area=1,
                               dis_group=False)
    b, _ = make_static_offsets(seg, points, labels, min_area=1,
                               dis_group=False, grouping='geodesic')
    assert (a == b).all()
    with pytest.raises(ValueError, match='needs the image'):
        make_static_offsets(seg, points, labels, grouping='geodesic')
    with pytest.raises(ValueError, match='grouping'):
        make_static_offsets(seg, points, labels, grouping='watershed')


def test_geodesic_baseline_masks_are_the_rods():
    fg, image, points = two_touching_rods()
    seg = fg.astype(np.uint8)
    labels = np.array([0, 0])
    geo = nearest_point_masks(seg, points, labels, 1, grouping='geodesic',
                              image=image)
    near = nearest_point_masks(seg, points, labels, 1)
    # each rod to its point (the seam row itself may go either way)
    assert geo['masks'][0][2:6].all() and geo['masks'][1][7:10, :8].all()
    assert not (geo['masks'][0] & geo['masks'][1]).any()
    assert ((geo['masks'][0] | geo['masks'][1]) == fg).all()
    assert geo['scores'].tolist() == [1.0, 1.0]
    assert near['masks'][1][3, 1] and not geo['masks'][1][3, 1]
    # a foreground component without a point goes to the nearest point,
    # a point off the foreground gets the fallback square
    seg2 = seg.copy()
    seg2[11, 15:18] = 1
    out = nearest_point_masks(seg2, np.vstack([points, [[1.5, 11.5]]]),
                              np.array([0, 0, 0]), 1, fallback_half_size=1,
                              fallback_score=0.3, grouping='geodesic',
                              image=image)
    assert out['masks'][0][11, 15:18].all()
    assert out['scores'][2] == pytest.approx(0.3)
    assert out['masks'][2].sum() == 4
    with pytest.raises(ValueError, match='needs the image'):
        nearest_point_masks(seg, points, labels, 1, grouping='geodesic')
    with pytest.raises(ValueError, match='grouping'):
        nearest_point_masks(seg, points, labels, 1, grouping='knn')
    for bad in (np.array([-1, 0]), np.array([0, 1]), np.array([0])):
        for grouping in ('euclidean', 'geodesic'):
            with pytest.raises(ValueError, match='one 0-based label'):
                nearest_point_masks(seg, points, bad, 1, grouping=grouping,
                                    image=image)


def test_point_decoding_switch_splits_the_rods_on_their_seam():
    """decode_instances_with_points(grouping='geodesic') with zero offsets:
    the long rod keeps pixel (3, 1) that the offset grouping (Voronoi
    here) gives the short rod; bad settings are named."""
    import torch

    from p2seg_mm.models.post_processing.point_decoding import \
        decode_instances_with_points
    fg, image, points = two_touching_rods()
    prob = torch.stack([torch.from_numpy(~fg), torch.from_numpy(fg)]).float()
    args = (prob, torch.zeros(2, *fg.shape), torch.from_numpy(points).float(),
            torch.tensor([0, 0]))
    offset = decode_instances_with_points(*args, fallback_half_size=0)
    geo = decode_instances_with_points(
        *args, fallback_half_size=0, grouping='geodesic',
        edge=image_edge_cost(image))
    assert offset['masks'][1][3, 1] and not geo['masks'][1][3, 1]
    assert geo['masks'][0][2:6].all() and geo['masks'][1][7:10, :8].all()
    with pytest.raises(ValueError, match='edge map'):
        decode_instances_with_points(*args, grouping='geodesic')
    with pytest.raises(ValueError, match='grouping'):
        decode_instances_with_points(*args, grouping='voronoi')
