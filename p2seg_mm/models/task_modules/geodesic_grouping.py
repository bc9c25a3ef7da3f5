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


def image_edge_cost(image: np.ndarray) -> np.ndarray:
    """Edge strength of an 8-bit image, polarity-free.

    Sobel gradient magnitude (3 x 3) of the grey image in [0, 1], divided by
    4 (a unit step gives 1 across it), so the cost is in [0, ~1.42].

    Args:
        image (np.ndarray): (H, W) or (H, W, 3) image, 0-255 (any channel
            order: the channels are averaged).

    Returns:
        np.ndarray: (H, W) float32 edge strength.

    Raises:
        ValueError: The image is not (H, W) or (H, W, C).
    """
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 3:
        image = image.mean(axis=2)
    if image.ndim != 2:
        raise ValueError('image_edge_cost: image must be (H, W) or '
                         f'(H, W, C), got shape {image.shape}.')
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
    the earlier one gets the pixels; equal path lengths go to either point.

    Args:
        fg (np.ndarray): (H, W) bool foreground.
        points (np.ndarray): (K, 2) (x, y) in pixels, inside the image.
        edge (np.ndarray, optional): (H, W) edge strength
            (:func:`image_edge_cost`); None: plain geodesic distance.
            Defaults to None.
        edge_weight (float): Weight of the edge term, >= 0. Defaults to
            ``DEFAULT_EDGE_WEIGHT``.

    Returns:
        np.ndarray: (H, W) int64, the index of the point of each pixel; -1
        off the foreground and on foreground that no point reaches (a
        component without any point).

    Raises:
        ValueError: Bad shapes, a negative or non-finite weight, points
            outside the image.
    """
    fg = np.asarray(fg, dtype=bool)
    if fg.ndim != 2:
        raise ValueError('geodesic_point_labels: fg must be (H, W), got '
                         f'{fg.shape}.')
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    height, width = fg.shape
    if not (np.isfinite(edge_weight) and edge_weight >= 0):
        raise ValueError('geodesic_point_labels: edge_weight must be a '
                         f'finite number >= 0, got {edge_weight}.')
    if edge is not None and np.shape(edge) != fg.shape:
        raise ValueError(f'geodesic_point_labels: edge {np.shape(edge)} '
                         f'and fg {fg.shape} must have the same shape.')
    if len(points) and not ((points[:, 0] >= 0).all()
                            and (points[:, 0] < width).all()
                            and (points[:, 1] >= 0).all()
                            and (points[:, 1] < height).all()):
        raise ValueError('geodesic_point_labels: points must lie inside '
                         f'the image of size (H, W) = {fg.shape}.')
    labels = np.full(fg.shape, -1, dtype=np.int64)
    ys, xs = np.nonzero(fg)
    if not len(points) or not len(ys):
        return labels
    index = np.full(fg.shape, -1, dtype=np.int64)
    index[ys, xs] = np.arange(len(ys))
    cost = (np.zeros(fg.shape, np.float64) if edge is None else
            np.asarray(edge, np.float64) * edge_weight)
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
