# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Fabricate a tiny COCO-point dataset on disk for integration tests.

Layout under ``root`` (the config's ``data_root``)::

    images/img_<k>.png               RGB images (H, W, 3)
    pseudo_sem/img_<k>.png           semantic pseudo-maps (mode L)
    annotations/train_points.json    points, no segmentation
    annotations/val_points.json      same points (for test/val loaders)
    annotations/train_gt.json        same ids, RLE masks, bbox, area
    annotations/val_gt.json          same as train_gt.json

Every image holds elliptic blobs of two classes (``'ecoli'``,
``'hela_nucleus'``, the demo-cells metainfo); one pair of same-class blobs
always touches, so that the pseudo-map (union of the masks) merges them
into one connected component. Points lie at the pixel centre
``(j + 0.5, i + 0.5)`` of the mask pixel nearest the mask's centroid (always
inside the instance). Everything is deterministic for a given ``seed``.
"""
import json
import os
import os.path as osp
from typing import Dict, List, Tuple

import numpy as np
from PIL import Image

CLASSES = ('ecoli', 'hela_nucleus')
CATEGORY_IDS = (1, 2)
IMG_DIR = 'images'
SEG_DIR = 'pseudo_sem'
ANN_DIR = 'annotations'
POINTS_JSON = 'train_points.json'
VAL_POINTS_JSON = 'val_points.json'
GT_JSON = 'train_gt.json'
VAL_GT_JSON = 'val_gt.json'

# Per image: list of (cy, cx, ry, rx, label). The first two blobs of image 0
# and 2 touch (same class), image 1 has touching blobs of different classes.
_LAYOUTS = (
    [(20, 18, 9, 8, 0), (20, 34, 9, 8, 0), (46, 58, 11, 13, 1)],
    [(18, 22, 10, 12, 1), (18, 44, 10, 10, 0), (48, 20, 9, 9, 0),
     (45, 60, 10, 9, 1)],
    [(40, 30, 11, 9, 1), (40, 48, 11, 9, 1), (16, 62, 8, 10, 0)],
    [(16, 16, 8, 8, 0), (44, 40, 12, 14, 1)],
)


def _ellipse(shape: Tuple[int, int], cy: float, cx: float, ry: float,
             rx: float) -> np.ndarray:
    """Boolean (H, W) mask of the pixel centres inside an ellipse."""
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    yy = yy + 0.5
    xx = xx + 0.5
    return ((yy - cy) / ry)**2 + ((xx - cx) / rx)**2 <= 1.0


def _point_inside(mask: np.ndarray) -> List[float]:
    """Pixel centre ``[x, y]`` of the mask pixel nearest its centroid."""
    rows, cols = np.nonzero(mask)
    cy, cx = rows.mean(), cols.mean()
    k = int(np.argmin((rows - cy)**2 + (cols - cx)**2))
    return [float(cols[k]) + 0.5, float(rows[k]) + 0.5]


def _encode_rle(mask: np.ndarray) -> dict:
    """Compressed COCO RLE of a boolean mask (json-ready counts)."""
    from pycocotools import mask as mask_utils
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle['counts'] = rle['counts'].decode('ascii')
    return rle


def _masks_of(layout, shape):
    """Instance masks of one layout; later blobs never steal pixels."""
    taken = np.zeros(shape, dtype=bool)
    masks = []
    for cy, cx, ry, rx, label in layout:
        mask = _ellipse(shape, cy, cx, ry, rx) & ~taken
        taken |= mask
        masks.append((mask, label))
    return masks


def _render_image(masks, shape, rng: np.random.Generator) -> np.ndarray:
    """RGB uint8 image: dark noisy background, class-coloured blobs."""
    colours = np.array([[200, 80, 60], [70, 110, 210]], dtype=np.float32)
    img = np.full(shape + (3, ), 30.0, dtype=np.float32)
    for mask, label in masks:
        img[mask] = colours[label]
    img += rng.normal(0, 8, size=img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def make_point_dataset(root: str,
                       num_images: int = 4,
                       height: int = 64,
                       width: int = 80,
                       seed: int = 0) -> Dict[str, str]:
    """Write the tiny dataset under ``root``.

    Args:
        root (str): Target folder (created if missing).
        num_images (int): Number of images, 1..4. Defaults to 4.
        height (int): Image height; at least 64. Defaults to 64.
        width (int): Image width; at least 80. Defaults to 80.
        seed (int): Seed of the image noise. Defaults to 0.

    Returns:
        dict[str, str]: ``root``, ``points_json``, ``val_points_json``,
        ``gt_json``, ``val_gt_json``, ``img_dir`` and ``seg_dir``
        (absolute paths).
    """
    if not 1 <= num_images <= len(_LAYOUTS):
        raise ValueError(
            f'num_images must be in 1..{len(_LAYOUTS)}, got {num_images}.')
    if height < 64 or width < 80:
        raise ValueError('the blob layouts need images of at least 64 x 80 '
                         f'(H x W), got {height} x {width}.')
    rng = np.random.default_rng(seed)
    shape = (height, width)
    paths = dict(
        root=osp.abspath(root),
        img_dir=osp.join(osp.abspath(root), IMG_DIR),
        seg_dir=osp.join(osp.abspath(root), SEG_DIR),
        points_json=osp.join(osp.abspath(root), ANN_DIR, POINTS_JSON),
        val_points_json=osp.join(osp.abspath(root), ANN_DIR, VAL_POINTS_JSON),
        gt_json=osp.join(osp.abspath(root), ANN_DIR, GT_JSON),
        val_gt_json=osp.join(osp.abspath(root), ANN_DIR, VAL_GT_JSON))
    for key in ('img_dir', 'seg_dir'):
        os.makedirs(paths[key], exist_ok=True)
    os.makedirs(osp.dirname(paths['points_json']), exist_ok=True)

    images, point_anns, gt_anns = [], [], []
    ann_id = 1
    for img_id, layout in enumerate(_LAYOUTS[:num_images], start=1):
        file_name = f'img_{img_id}.png'
        masks = _masks_of(layout, shape)
        Image.fromarray(_render_image(masks, shape, rng)).save(
            osp.join(paths['img_dir'], file_name))
        sem = np.zeros(shape, dtype=np.uint8)
        for mask, label in masks:
            sem[mask] = label + 1
        Image.fromarray(
            sem, mode='L').save(osp.join(paths['seg_dir'], file_name))
        images.append(
            dict(id=img_id, file_name=file_name, height=height, width=width))
        for mask, label in masks:
            rows, cols = np.nonzero(mask)
            x0, y0 = float(cols.min()), float(rows.min())
            bbox = [x0, y0, cols.max() + 1 - x0, rows.max() + 1 - y0]
            base = dict(
                id=ann_id,
                image_id=img_id,
                category_id=CATEGORY_IDS[label],
                point=_point_inside(mask),
                iscrowd=0)
            point_anns.append(dict(base))
            gt_anns.append(
                dict(
                    base,
                    segmentation=_encode_rle(mask),
                    bbox=[float(v) for v in bbox],
                    area=float(mask.sum())))
            ann_id += 1
    categories = [
        dict(id=cat_id, name=name)
        for cat_id, name in zip(CATEGORY_IDS, CLASSES)
    ]
    for key, anns in (('points_json', point_anns), ('val_points_json',
                                                    point_anns),
                      ('gt_json', gt_anns), ('val_gt_json', gt_anns)):
        with open(paths[key], 'w') as f:
            json.dump(
                dict(images=images, annotations=anns, categories=categories),
                f)
    return paths
