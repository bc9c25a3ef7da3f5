# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Semantic pseudo-maps from images + points, without a WSSS model.

For images where objects differ from a flat background by brightness
(stained nuclei, fluorescence, phase-contrast cells); natural images need a
weakly-supervised semantic segmentation method instead. Per image
(:func:`make_pseudo_map`):

1. the image by the loading rule (:mod:`p2seg_mm.datasets.image_io`), grey,
   Gaussian-smoothed (``sigma``);
2. a robust threshold ``median +/- k * 1.4826 * MAD``. The polarity
   (bright or dark objects) is the one that puts more annotated points in
   the foreground; the level is the larger of ``k_mad`` MADs and half the
   points' median contrast (edges at half maximum), lowered (down to
   ``min_k`` MADs) until ``min_point_coverage`` of the points lie in it;
3. opening then closing (``radius``), components below ``min_area`` pixels
   removed;
4. each connected component takes the class of the points inside it: no
   point -> ignore (255); points of several classes -> each pixel takes the
   class of its nearest point (``conflict='nearest'``) or the component is
   ignored (``conflict='ignore'``);
5. a band of ``ignore_band`` pixels outside every component is set to
   ignore (255): object borders are the least certain pixels.

Values: 0 background, ``c + 1`` class ``c`` (category order of the json),
255 ignore. The demo data (``demo_cells.py``) is made with it.
"""
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import cv2
import numpy as np

from p2seg_mm.datasets.categories import category_to_label
from p2seg_mm.datasets.data_checks import (DataCheckError, error, image_sizes,
                                           is_number, point_problem)

IGNORE = 255


@dataclass
class PseudoMapConfig:
    """Parameters of :func:`make_pseudo_map` (see the module docstring)."""
    sigma: float = 1.0
    k_mad: float = 6.0
    min_k: float = 1.0
    min_point_coverage: float = 0.9
    radius: int = 1
    min_area: int = 4
    ignore_band: int = 1
    conflict: str = 'nearest'


def _foreground(grey: np.ndarray, xy: np.ndarray,
                cfg: PseudoMapConfig) -> Tuple[np.ndarray, str, float]:
    """Threshold (H, W) float ``grey``; returns mask, polarity, k.

    The level above (below) the median is ``max(k_mad * MAD, half the
    points' median contrast)`` (half-maximum: edges of blurred objects at
    their middle), lowered by 0.75 steps down to ``min_k * MAD`` until
    ``min_point_coverage`` of the points are in the foreground.
    """
    median = float(np.median(grey))
    mad = 1.4826 * float(np.median(np.abs(grey - median))) or 1e-6
    cols = np.clip(xy[:, 0].astype(int), 0, grey.shape[1] - 1)
    rows = np.clip(xy[:, 1].astype(int), 0, grey.shape[0] - 1)
    at_points = grey[rows, cols]
    bright = int((at_points > median).sum()) >= int(
        (at_points < median).sum())
    sign = 1.0 if bright else -1.0
    contrast = sign * (float(np.median(at_points)) - median) \
        if len(xy) else 0.0
    level = max(cfg.k_mad * mad, 0.5 * contrast)
    while True:
        fg = sign * (grey - median) > level
        covered = fg[rows, cols].mean() if len(xy) else 1.0
        if covered >= cfg.min_point_coverage or level <= cfg.min_k * mad:
            break
        level = max(cfg.min_k * mad, level * 0.75)
    return fg, 'bright' if bright else 'dark', level / mad


def _clean(fg: np.ndarray, cfg: PseudoMapConfig) -> np.ndarray:
    """Opening, closing, small-component removal; (H, W) bool."""
    mask = fg.astype(np.uint8)
    if cfg.radius > 0:
        kernel = cv2.getStructuringElement(
            cv2.MORPH_ELLIPSE, (2 * cfg.radius + 1, 2 * cfg.radius + 1))
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, kernel)
    num, comp, stats, _ = cv2.connectedComponentsWithStats(mask, 4)
    small = np.flatnonzero(stats[:, cv2.CC_STAT_AREA] < cfg.min_area)
    mask[np.isin(comp, small[small > 0])] = 0
    return mask.astype(bool)


def _label_components(fg: np.ndarray, xy: np.ndarray, labels: np.ndarray,
                      cfg: PseudoMapConfig) -> np.ndarray:
    """(H, W) uint8 map: components -> class + 1, 255 or nearest split."""
    out = np.zeros(fg.shape, np.uint8)
    num, comp = cv2.connectedComponents(fg.astype(np.uint8), connectivity=4)
    rows, cols = xy[:, 1].astype(int), xy[:, 0].astype(int)
    point_comp = comp[rows, cols] if len(xy) else np.zeros(0, int)
    for c in range(1, num):
        inside = comp == c
        members = np.flatnonzero(point_comp == c)
        classes = np.unique(labels[members])
        if len(classes) == 0:
            out[inside] = IGNORE
        elif len(classes) == 1:
            out[inside] = classes[0] + 1
        elif cfg.conflict == 'ignore':
            out[inside] = IGNORE
        else:
            pr, pc = np.nonzero(inside)
            centres = xy[members]
            d2 = ((pc[:, None] + 0.5 - centres[None, :, 0])**2 +
                  (pr[:, None] + 0.5 - centres[None, :, 1])**2)
            out[pr, pc] = labels[members][d2.argmin(axis=1)] + 1
    return out


def make_pseudo_map(image: np.ndarray,
                    xy: np.ndarray,
                    labels: np.ndarray,
                    cfg: Optional[PseudoMapConfig] = None
                    ) -> Tuple[np.ndarray, Dict[str, float]]:
    """Semantic pseudo-map of one image from its points.

    Args:
        image (np.ndarray): (H, W) or (H, W, 3) uint8, as loaded by the rule.
        xy (np.ndarray): (P, 2) points ``(x, y)``, continuous coordinates.
        labels (np.ndarray): (P,) 0-based classes.
        cfg (PseudoMapConfig, optional): Parameters. Defaults to None
            (the defaults).

    Returns:
        tuple[np.ndarray, dict]: (H, W) uint8 map (0 background, c + 1,
        255 ignore) and statistics: ``polarity`` (1 bright, -1 dark),
        ``k``, ``point_coverage`` (share of points on their class).

    Raises:
        ValueError: An unknown ``cfg.conflict``, or a point outside the
            image (``0 <= x < W``, ``0 <= y < H``; the rule of
            :func:`~p2seg_mm.datasets.data_checks.point_problem`).
    """
    cfg = cfg or PseudoMapConfig()
    if cfg.conflict not in ('nearest', 'ignore'):
        raise ValueError("conflict must be 'nearest' or 'ignore', got "
                         f'{cfg.conflict!r}.')
    xy = np.asarray(xy, np.float64).reshape(-1, 2)
    for k, point in enumerate(xy.tolist()):
        reason = point_problem(dict(point=point), *image.shape[:2])
        if reason is not None:
            raise ValueError(f'make_pseudo_map: point #{k}: {reason}')
    labels = np.asarray(labels, np.int64).reshape(-1)
    grey = image.astype(np.float32)
    if grey.ndim == 3:
        grey = grey.mean(axis=2)
    if cfg.sigma > 0:
        grey = cv2.GaussianBlur(grey, (0, 0), cfg.sigma)
    fg, polarity, k = _foreground(grey, xy, cfg)
    fg = _clean(fg, cfg)
    out = _label_components(fg, xy, labels, cfg)
    if cfg.ignore_band > 0:
        kernel = cv2.getStructuringElement(
            cv2.MORPH_ELLIPSE, (2 * cfg.ignore_band + 1, ) * 2)
        band = cv2.dilate(fg.astype(np.uint8), kernel).astype(bool) & ~fg
        out[band] = IGNORE
    hit = out[xy[:, 1].astype(int), xy[:, 0].astype(int)] == labels + 1 \
        if len(xy) else np.ones(0, bool)
    stats = dict(polarity=1.0 if polarity == 'bright' else -1.0, k=k,
                 point_coverage=float(hit.mean()) if len(hit) else 1.0)
    return out, stats


def points_by_image(
        coco: dict,
        classes: Optional[Sequence[str]] = None,
        source: str = '<json>') -> Dict[int, Tuple[np.ndarray, np.ndarray]]:
    """Image id -> (xy (P, 2), 0-based labels (P,)).

    Labels by the project's one rule (:func:`~p2seg_mm.datasets.categories.
    category_to_label`): ``classes[k]`` (by name, json order checked), or
    every json category in json order when ``classes`` is None; points of
    other categories are left out. Crowd points count too (they mark real
    objects).

    Every point used is checked first (the rule of
    :func:`~p2seg_mm.datasets.data_checks.point_problem`: ``[x, y]``, two
    finite numbers with ``0 <= x < width`` and ``0 <= y < height`` of its
    image entry), so that a bad point stops the tool before any map is
    written instead of crashing on it (outside right/below) or silently
    moving the threshold (outside left/above).

    Raises:
        ValueError: Categories against ``classes`` (see
            ``category_to_label``).
        DataCheckError: (a ``ValueError``) Listing every used annotation
            whose point is missing, malformed or outside its image, whose
            image id is not in ``"images"`` or whose image has no valid
            size, or whose ``category_id`` is not in ``"categories"`` (it
            would vanish from the map silently); each names ``source``, the
            image id, the annotation id and the fix.
    """
    label_of = category_to_label(coco['categories'], classes, source)
    sizes = image_sizes(coco)
    out: Dict[int, list] = {im['id']: [] for im in coco['images']}
    problems = []
    json_cats = [cat.get('id') for cat in coco['categories']]
    for ann in coco['annotations']:
        if ann.get('category_id') not in json_cats:
            problems.append(
                error(f'{source}: image id {ann.get("image_id")}, annotation '
                      f'id {ann.get("id")}: category_id '
                      f'{ann.get("category_id")!r} is not in "categories" '
                      f'{json_cats}. Fix the category_id or add the '
                      'category.'))
            continue
        if ann.get('category_id') not in label_of:
            continue
        img_id = ann.get('image_id')
        height, width = sizes.get(img_id, (None, None))
        if img_id not in sizes:
            reason = ('its image id is not in "images". Fix: add the image '
                      'entry or drop the annotation.')
        elif not (is_number(height) and is_number(width)):
            reason = (f'its image entry has no valid "width"/"height" (got '
                      f'{width!r}, {height!r}). Fix: write the image size '
                      'in the json.')
        else:
            reason = point_problem(ann, height, width)
        if reason is not None:
            problems.append(
                error(f'{source}: image id {img_id}, annotation id '
                      f'{ann.get("id")}: {reason}'))
            continue
        out[img_id].append((*ann['point'], label_of[ann['category_id']]))
    if problems:
        raise DataCheckError(problems, f'{source} (no map was written)')
    return {
        i: (np.array([p[:2] for p in pts], np.float64).reshape(-1, 2),
            np.array([p[2] for p in pts], np.int64))
        for i, pts in out.items()
    }


def foreground_iou(pred: np.ndarray, gt_fg: np.ndarray,
                   classes: Sequence[int] = ()) -> float:
    """IoU of ``pred``'s foreground (values 1..254) with a bool mask."""
    fg = (pred > 0) & (pred != IGNORE)
    if classes:
        fg = np.isin(pred, [c + 1 for c in classes])
    union = (fg | gt_fg).sum()
    return float((fg & gt_fg).sum() / union) if union else 1.0
