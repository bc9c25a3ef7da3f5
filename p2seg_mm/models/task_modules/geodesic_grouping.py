# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Image-aware split of a foreground between points (not in the paper).

``dis_group`` (docs/method.md §3.2) splits a component that holds several
points by Euclidean distance: a Voronoi cut, blind to the image. Touching
rods at an angle are cut across. Here each foreground pixel goes to the
point with the shortest path to it *inside the foreground*, where a step
costs its length times ``1 + edge_weight * edge``: crossing an image edge
(the seam between two touching cells) costs more than walking along a
cell. docs/method.md §3.5 gives the measured effect.

Shortest paths: SciPy's multi-source Dijkstra on the 8-connected pixel
graph of the foreground.
"""
from typing import Optional

import cv2
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra

#: Default weight of the image edge in a step's cost (measured on the demo
#: cells, docs/method.md §3.5).
DEFAULT_EDGE_WEIGHT = 30.0

_STEPS = ((0, 1), (1, 0), (1, 1), (1, -1))


def check_edge_weight(edge_weight: float) -> float:
    """``edge_weight`` as a float in [0, 1e6]; ValueError otherwise."""
    try:
        value = float(edge_weight)
    except (TypeError, ValueError):
        value = float('nan')
    if not 0 <= value <= 1e6:
        raise ValueError('edge_weight must be a number in [0, 1e6] (30 on '
                         f'the demo cells), got {edge_weight!r}.')
    return value


def image_edge_cost(image: np.ndarray) -> np.ndarray:
    """Edge strength of an 8-bit-range image, polarity-free.

    Sobel gradient magnitude (3 x 3) of the grey image in [0, 1], divided by
    4 (a unit step gives 1 across it), so the cost is in [0, ~1.42].

    Args:
        image (np.ndarray): (H, W) or (H, W, C) image with values in
            0-255 (uint8, or float as after mmdet's photometric
            transforms); the channels are averaged, in any order.

    Returns:
        np.ndarray: (H, W) float32 edge strength.

    Raises:
        ValueError: Not (H, W) or (H, W, C); a bool image; values outside
            0-255, not finite, or a float image within [0, 1] (normalised
            images make every edge ~255 x weaker: convert back to 0-255).
    """
    image = np.asarray(image)
    if image.dtype == bool or image.ndim not in (2, 3):
        raise ValueError('image_edge_cost: image must be an (H, W) or '
                         '(H, W, C) array of 0-255 values, got '
                         f'{image.dtype} of shape {image.shape}.')
    integer = np.issubdtype(image.dtype, np.integer)
    image = image.astype(np.float32)
    if image.size:
        low, high = float(image.min()), float(image.max())
        if not (np.isfinite(low) and np.isfinite(high)):
            raise ValueError('image_edge_cost: the image holds NaN or inf.')
        if low < 0 or high > 255:
            raise ValueError(
                f'image_edge_cost: values must lie in 0-255, got {low:g}..'
                f'{high:g} (a 16-bit image? load it with the percentile '
                'stretch of LoadP2SegImageFromFile).')
        if 0 < high <= 1 and not integer:
            raise ValueError(
                'image_edge_cost: the image lies within [0, 1], as after '
                'normalisation; pass it in 0-255 (x 255), before the data '
                'preprocessor normalises it.')
    if image.ndim == 3:
        image = image.mean(axis=2)
    grey = image / 255.0
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
    return (np.hypot(gx, gy) / 4.0).astype(np.float32)


def geodesic_point_labels(fg: np.ndarray,
                          points: np.ndarray,
                          edge: Optional[np.ndarray] = None,
                          edge_weight: float = DEFAULT_EDGE_WEIGHT
                          ) -> np.ndarray:
    """Give each foreground pixel to its geodesically nearest point.

    A path moves between 8-connected foreground pixels; a step from pixel
    ``a`` to ``b`` costs ``|b - a| * (1 + edge_weight * max(edge[a],
    edge[b]))`` (1 or sqrt 2 times the edge term). Each point starts from
    the pixel holding it; a point whose pixel is not foreground gets no
    pixel (it would take a neighbour's). Of several points on one pixel,
    the earlier one gets the pixels; between equal path lengths the
    shortest-path search decides (deterministic, by pixel order).

    Args:
        fg (np.ndarray): (H, W) bool foreground.
        points (np.ndarray): (K, 2) (x, y) in pixels, inside the image.
        edge (np.ndarray, optional): (H, W) finite edge strength >= 0
            (:func:`image_edge_cost`); None: plain geodesic distance.
            Defaults to None.
        edge_weight (float): Weight of the edge term, in [0, 1e6].
            Defaults to ``DEFAULT_EDGE_WEIGHT``.

    Returns:
        np.ndarray: (H, W) int64, the index of the point of each pixel; -1
        off the foreground and on foreground that no point reaches (a
        component without a point on it).

    Raises:
        ValueError: Bad shapes (points not (K, 2)), an edge map that is
            negative or not finite, a bad weight, points outside the
            image.
    """
    fg = np.asarray(fg, dtype=bool)
    if fg.ndim != 2:
        raise ValueError('geodesic_point_labels: fg must be (H, W), got '
                         f'{fg.shape}.')
    points = np.asarray(points, dtype=np.float64)
    if points.size == 0:
        points = points.reshape(0, 2)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError('geodesic_point_labels: points must have shape '
                         f'(K, 2) as (x, y), got {points.shape}.')
    height, width = fg.shape
    edge_weight = check_edge_weight(edge_weight)
    if edge is not None:
        edge = np.asarray(edge, dtype=np.float64)
        if edge.shape != fg.shape:
            raise ValueError(f'geodesic_point_labels: edge {edge.shape} '
                             f'and fg {fg.shape} must have the same shape.')
        if edge.size and not (np.isfinite(edge).all() and edge.min() >= 0):
            raise ValueError('geodesic_point_labels: edge must be finite '
                             'and >= 0 (image_edge_cost of a 0-255 image).')
    if len(points) and not ((points[:, 0] >= 0).all()
                            and (points[:, 0] < width).all()
                            and (points[:, 1] >= 0).all()
                            and (points[:, 1] < height).all()):
        bad = np.nonzero(~((points[:, 0] >= 0) & (points[:, 0] < width)
                           & (points[:, 1] >= 0)
                           & (points[:, 1] < height)))[0]
        raise ValueError(
            f'geodesic_point_labels: points {bad.tolist()} lie outside the '
            f'image of size (H, W) = {fg.shape}; drop or clip them first.')
    labels = np.full(fg.shape, -1, dtype=np.int64)
    ys, xs = np.nonzero(fg)
    if not len(points) or not len(ys):
        return labels
    index = np.full(fg.shape, -1, dtype=np.int64)
    index[ys, xs] = np.arange(len(ys))
    cost = (np.zeros(fg.shape, np.float64) if edge is None else
            edge * edge_weight)
    heads, tails, weights = [], [], []
    for dy, dx in _STEPS:
        y2, x2 = ys + dy, xs + dx
        ok = (y2 < height) & (x2 >= 0) & (x2 < width)
        ok[ok] = fg[y2[ok], x2[ok]]
        a = (ys[ok], xs[ok])
        b = (y2[ok], x2[ok])
        heads.append(index[a])
        tails.append(index[b])
        weights.append(
            np.hypot(dy, dx) * (1.0 + np.maximum(cost[a], cost[b])))
    graph = coo_matrix(
        (np.concatenate(weights),
         (np.concatenate(heads), np.concatenate(tails))),
        shape=(len(ys), len(ys))).tocsr()
    rows = np.floor(points[:, 1]).astype(np.int64)
    cols = np.floor(points[:, 0]).astype(np.int64)
    seeds = index[rows, cols]
    # several points on one pixel: the earlier one is the source
    first = {}
    for k, s in enumerate(seeds.tolist()):
        if s >= 0:
            first.setdefault(s, k)
    if not first:
        return labels
    sources = np.array(sorted(first), dtype=np.int64)
    _, _, nearest = dijkstra(
        graph,
        directed=False,
        indices=sources,
        return_predecessors=True,
        min_only=True)
    reached = nearest >= 0
    lookup = np.full(len(ys), -1, dtype=np.int64)
    lookup[sources] = [first[s] for s in sources.tolist()]
    owner = np.full(len(ys), -1, dtype=np.int64)
    owner[reached] = lookup[nearest[reached]]
    labels[ys, xs] = owner
    return labels
