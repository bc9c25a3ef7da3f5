# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Static S2I targets (docs/method.md §3.2), made on the CPU in the pipeline.

Conventions (docs/design.md): points are ``(x, y)`` in continuous pixel
coordinates; pixel ``(i, j)`` covers ``[j, j+1) x [i, i+1)`` and its centre is
``(j + 0.5, i + 0.5)``; the pixel that holds a point is
``(floor(y), floor(x))``. Offsets are ``(dx, dy)`` (channel 0 = x, channel
1 = y) from the pixel centre to the target point. Semantic map: ``0``
background, ``c + 1`` class ``c``, ``255`` ignore.

These targets depend only on the annotations (points + semantic pseudo-map),
so they are built in a ``TRANSFORMS`` step (``GenerateS2ITargets``).
"""
import math
from typing import Optional, Tuple

import cv2
import numpy as np

from ..geodesic_grouping import (DEFAULT_EDGE_WEIGHT, check_edge_weight,
                                 geodesic_point_labels, image_edge_cost)

OFFSET_TARGETS = ('point', 'centroid')
GROUPINGS = ('euclidean', 'geodesic')


def _point_pixels(points: np.ndarray, shape: Tuple[int, int],
                  what: str) -> Tuple[np.ndarray, np.ndarray]:
    """Validate points and return the (row, column) of their pixels."""
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f'{what}: points must have shape (N, 2) as (x, y), '
                         f'got {points.shape}.')
    height, width = shape
    inside = ((points[:, 0] >= 0) & (points[:, 0] < width)
              & (points[:, 1] >= 0) & (points[:, 1] < height))
    if not inside.all():
        bad = np.nonzero(~inside)[0]
        raise ValueError(
            f'{what}: points {bad.tolist()} '
            f'({points[bad].tolist()}) lie outside the image of size '
            f'(H, W) = {shape}; filter out-of-image points (they carry '
            f'gt_ignore_flags=True) before making targets.')
    rows = np.floor(points[:, 1]).astype(np.int64)
    cols = np.floor(points[:, 0]).astype(np.int64)
    return rows, cols


def _check_labels(labels: np.ndarray, num_points: int,
                  num_classes: Optional[int], what: str) -> np.ndarray:
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    if labels.shape[0] != num_points:
        raise ValueError(f'{what}: got {num_points} points but '
                         f'{labels.shape[0]} labels.')
    if labels.size and labels.min() < 0:
        raise ValueError(f'{what}: point labels must be 0-based classes, '
                         f'got {np.unique(labels)}.')
    if (num_classes is not None and labels.size
            and labels.max() >= num_classes):
        raise ValueError(f'{what}: point labels must be 0-based classes in '
                         f'[0, {num_classes}), got {np.unique(labels)}.')
    return labels


def make_center_heatmap(points: np.ndarray,
                        labels: np.ndarray,
                        num_classes: int,
                        shape: Tuple[int, int],
                        sigma: float = 6.0) -> np.ndarray:
    """Draw one Gaussian per point into its class channel.

    Each Gaussian is centred on the centre of the pixel holding the point,
    so that pixel has value exactly 1.0, and a pixel at distance ``d`` (in
    pixels, centre to centre) has ``exp(-d**2 / (2 * sigma**2))``. Patches
    cover a window of radius ``ceil(3 * sigma) + 1`` (39x39 for sigma 6, the
    release's 6 sigma + 3 window), clipped at the borders. Overlapping
    Gaussians of one class are merged with a maximum.

    Args:
        points (np.ndarray): Shape (N, 2), (x, y) continuous coordinates,
            all inside the image.
        labels (np.ndarray): Shape (N,), 0-based class of each point.
        num_classes (int): Number of foreground classes C.
        shape (tuple[int, int]): Image size (H, W).
        sigma (float): Gaussian standard deviation in pixels.
            Defaults to 6.0.

    Returns:
        np.ndarray: Shape (C, H, W), float32 heatmap in [0, 1].
    """
    if sigma <= 0:
        raise ValueError(f'sigma must be > 0, got {sigma}.')
    height, width = int(shape[0]), int(shape[1])
    heatmap = np.zeros((num_classes, height, width), dtype=np.float32)
    rows, cols = _point_pixels(points, (height, width), 'make_center_heatmap')
    labels = _check_labels(labels, rows.shape[0], num_classes,
                           'make_center_heatmap')
    radius = int(math.ceil(3 * sigma)) + 1
    grid = np.arange(-radius, radius + 1, dtype=np.float64)
    gauss_1d = np.exp(-grid**2 / (2 * sigma**2))
    # Separable Gaussian: the centre value is exp(0) * exp(0) = 1.0 exactly.
    patch = (gauss_1d[:, None] * gauss_1d[None, :]).astype(np.float32)
    for row, col, label in zip(rows, cols, labels):
        top, bottom = max(row - radius, 0), min(row + radius + 1, height)
        left, right = max(col - radius, 0), min(col + radius + 1, width)
        sub = patch[top - row + radius:bottom - row + radius,
                    left - col + radius:right - col + radius]
        region = heatmap[label, top:bottom, left:right]
        np.maximum(region, sub, out=region)
    return heatmap


def _component_targets(cx: np.ndarray, cy: np.ndarray, cand: np.ndarray,
                       centroid: np.ndarray, offset_to: str) -> Tuple:
    """Target (x, y) of each pixel centre (cx, cy) of one component.

    ``cand`` (P, 2) holds the component's points; ``centroid`` is cv2's
    centroid in pixel-index units. Several points: the nearest one (ties go
    to the earlier point).
    """
    if len(cand) == 1 and offset_to == 'centroid':
        # Release (BESTIE) behaviour, not ours (docs/method.md §0.2): the
        # truncated centroid, i.e. the centre of pixel (int(cy), int(cx)).
        return np.floor(centroid[0]) + 0.5, np.floor(centroid[1]) + 0.5
    if len(cand) == 1:
        return cand[0, 0], cand[0, 1]
    dist2 = ((cx[:, None] - cand[None, :, 0])**2 +
             (cy[:, None] - cand[None, :, 1])**2)
    nearest = dist2.argmin(axis=1)
    return cand[nearest, 0], cand[nearest, 1]


def make_static_offsets(
        seg_map: np.ndarray,
        points: np.ndarray,
        labels: np.ndarray,
        min_area: int = 50,
        dis_group: bool = True,
        offset_to: str = 'point',
        grouping: str = 'euclidean',
        image: Optional[np.ndarray] = None,
        edge_weight: float = DEFAULT_EDGE_WEIGHT
) -> Tuple[np.ndarray, np.ndarray]:
    """Offset targets from the 8-connected components of the semantic map.

    For every class ``c`` that has points, each 8-connected component of
    ``seg_map == c + 1`` with at least ``min_area`` pixels is handled by the
    number of class-``c`` points whose pixel lies inside it:

    - exactly one: every pixel of the component points to that point
      (``offset_to='point'``, docs/method.md §0.2) or to the centre of the
      pixel ``(int(cy), int(cx))`` holding the component centroid
      (``offset_to='centroid'``, the release's BESTIE leftover); weight 1;
    - several and ``dis_group``: every pixel points to its nearest point
      (``grouping='euclidean'``: from the pixel centre, ties go to the
      earlier point; ``'geodesic'``, not in the paper: by the shortest path
      inside the component, steps across image edges cost more,
      ``task_modules/geodesic_grouping.py``, docs/method.md §3.5); weight
      1;
    - several without ``dis_group``, or none: weight 0.

    Pixels outside accepted components (background, ignore, small or
    point-less components) have offset 0 and weight 0.

    Args:
        seg_map (np.ndarray): Shape (H, W), uint8 semantic map (0 bg,
            c + 1 class c, 255 ignore).
        points (np.ndarray): Shape (N, 2), (x, y) of the non-ignored points,
            all inside the image (the caller filters).
        labels (np.ndarray): Shape (N,), 0-based classes of the points.
        min_area (int): Components with fewer pixels get weight 0.
            Defaults to 50.
        dis_group (bool): Split multi-point components between their points
            by distance. Defaults to True.
        offset_to (str): ``'point'`` or ``'centroid'``, the target of
            single-point components. Defaults to 'point'.
        grouping (str): ``'euclidean'`` (the paper) or ``'geodesic'``, how
            ``dis_group`` splits a component. Defaults to 'euclidean'.
        image (np.ndarray, optional): (H, W, 3) 0-255 image of the map's
            size, needed by ``'geodesic'``. Defaults to None.
        edge_weight (float): Edge weight of ``'geodesic'``. Defaults to
            ``DEFAULT_EDGE_WEIGHT``.

    Returns:
        tuple[np.ndarray, np.ndarray]: ``offset`` of shape (2, H, W), float32
        (dx, dy) from each pixel centre to its target, and ``weight`` of
        shape (1, H, W), float32 in {0, 1}.

    Raises:
        ValueError: Bad shapes or options; ``'geodesic'`` without an image
            of the map's size.
    """
    if offset_to not in OFFSET_TARGETS:
        raise ValueError(f'offset_to must be one of {OFFSET_TARGETS}, '
                         f'got {offset_to!r}.')
    if grouping not in GROUPINGS:
        raise ValueError(f'grouping must be one of {GROUPINGS}, got '
                         f'{grouping!r}.')
    seg_map = np.asarray(seg_map)
    if seg_map.ndim != 2:
        raise ValueError('make_static_offsets: seg_map must have shape '
                         f'(H, W), got {seg_map.shape}.')
    edge = None
    if grouping == 'geodesic' and dis_group:
        edge_weight = check_edge_weight(edge_weight)
        if image is None or np.shape(image)[:2] != seg_map.shape:
            raise ValueError(
                "make_static_offsets: grouping='geodesic' needs the image "
                f"of the map's size {seg_map.shape}, got "
                f'{None if image is None else np.shape(image)}.')
        edge = image_edge_cost(image)
    height, width = seg_map.shape
    offset = np.zeros((2, height, width), dtype=np.float32)
    weight = np.zeros((1, height, width), dtype=np.float32)
    rows, cols = _point_pixels(points, (height, width), 'make_static_offsets')
    labels = _check_labels(labels, rows.shape[0], None, 'make_static_offsets')
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    for cls in np.unique(labels):
        fg = (seg_map == cls + 1).astype(np.uint8)
        if not fg.any():
            continue
        _, comp_map, stats, centroids = cv2.connectedComponentsWithStats(
            fg, connectivity=8)
        cls_idx = np.nonzero(labels == cls)[0]
        # Component id of each point's pixel; 0 = not on class-c pixels.
        pt_comp = comp_map[rows[cls_idx], cols[cls_idx]]
        for comp in np.unique(pt_comp[pt_comp > 0]):
            if stats[comp, cv2.CC_STAT_AREA] < min_area:
                continue
            members = cls_idx[pt_comp == comp]
            if len(members) > 1 and not dis_group:
                continue
            x0, y0, w, h = stats[comp, :4]
            ii, jj = np.nonzero(comp_map[y0:y0 + h, x0:x0 + w] == comp)
            ii, jj = ii + y0, jj + x0
            cx, cy = jj + 0.5, ii + 0.5
            tx, ty = _component_targets(cx, cy, points[members],
                                        centroids[comp], offset_to)
            if edge is not None and len(members) > 1:
                tx, ty = _geodesic_targets(comp_map[y0:y0 + h, x0:x0 + w]
                                           == comp, ii - y0, jj - x0,
                                           points[members] - (x0, y0),
                                           edge[y0:y0 + h, x0:x0 + w],
                                           edge_weight, tx, ty, points,
                                           members)
            offset[0, ii, jj] = tx - cx
            offset[1, ii, jj] = ty - cy
            weight[0, ii, jj] = 1.0
    return offset, weight


def _geodesic_targets(fg: np.ndarray, ii: np.ndarray, jj: np.ndarray,
                      local: np.ndarray, edge: np.ndarray,
                      edge_weight: float, tx: np.ndarray, ty: np.ndarray,
                      points: np.ndarray, members: np.ndarray) -> Tuple:
    """Targets of one multi-point component split geodesically, in the box
    of the component (``ii``, ``jj``, ``local``: box coordinates); pixels
    no point reaches keep their Euclidean targets ``tx``, ``ty``."""
    owner = geodesic_point_labels(fg, local, edge, edge_weight)[ii, jj]
    got = owner >= 0
    tx, ty = np.array(tx, np.float64), np.array(ty, np.float64)
    tx[got] = points[members[owner[got]], 0]
    ty[got] = points[members[owner[got]], 1]
    return tx, ty
