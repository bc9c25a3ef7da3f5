# Copyright (c) p2seg_mm contributors. All rights reserved.
"""The one mask codec of p2seg_mm: binary masks <-> COCO RLE / annotations.

Thin wrappers of ``pycocotools.mask``; every json writer and reader of the
package (pseudo-mask export, inference, metrics) and of the tools
(dataset converters, nearest-point baseline) goes through these functions. Boxes of masks as tensors come from mmdet
(``mmdet.structures.mask.mask2bbox``).
"""
from typing import List, Optional

import numpy as np
from pycocotools import mask as mask_utils


def encode_mask(mask: np.ndarray) -> dict:
    """Encode a boolean mask (H, W) as a json-ready compressed RLE
    (``counts`` a str)."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle['counts'] = rle['counts'].decode('ascii')
    return rle


def encode_masks(masks: np.ndarray) -> List[dict]:
    """Encode dense masks (N, H, W) into N COCO RLE dicts (bytes counts,
    as ``pycocotools.mask.iou`` takes them).

    Raises:
        ValueError: ``masks`` is not 3-D.
    """
    masks = np.asarray(masks)
    if masks.ndim != 3:
        raise ValueError(f'encode_masks expects (N, H, W), got {masks.shape}')
    if len(masks) == 0:
        return []
    return list(
        mask_utils.encode(
            np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8))))


def ann_to_mask(ann: dict, height: int, width: int) -> np.ndarray:
    """Decode an annotation's ``segmentation`` into a bool mask (H, W).

    Supports polygons, compressed RLE and uncompressed RLE.

    Raises:
        KeyError: if the annotation has no ``segmentation``.
        ValueError: if an RLE's size differs from ``(height, width)``.
    """
    seg = ann['segmentation']
    if isinstance(seg, list):
        polys = [p for p in seg if len(p) >= 6]
        if not polys:
            return np.zeros((height, width), dtype=bool)
        rle = mask_utils.merge(mask_utils.frPyObjects(polys, height, width))
    elif isinstance(seg, dict):
        if list(seg.get('size', [])) != [height, width]:
            raise ValueError(
                f'annotation id {ann.get("id")}: RLE size {seg.get("size")} '
                f'differs from its image size [{height}, {width}]; fix the '
                'image entry or the segmentation.')
        if isinstance(seg['counts'], list):
            rle = mask_utils.frPyObjects(seg, height, width)
        else:
            rle = dict(seg)
            if isinstance(rle['counts'], str):
                rle['counts'] = rle['counts'].encode('ascii')
    else:
        raise ValueError(f'annotation id {ann.get("id")}: unsupported '
                         f'segmentation type {type(seg).__name__}.')
    return mask_utils.decode(rle).astype(bool)


def mask_to_annotation(mask: np.ndarray,
                       image_id: int,
                       category_id: int,
                       score: Optional[float] = None) -> Optional[dict]:
    """COCO annotation (no ``id``) of one binary mask; None if it is empty.

    Args:
        mask (np.ndarray): Shape (H, W), bool, original image size.
        image_id (int): Json image id.
        category_id (int): Json category id.
        score (float, optional): Prediction score (omitted when None).

    Returns:
        dict | None: ``segmentation`` (RLE, str counts), tight ``bbox``
        ``[x, y, w, h]`` of the mask (pixel edges), ``area`` (pixels),
        ``iscrowd`` 0 and ``score``.
    """
    rle = encode_mask(np.asarray(mask, bool))
    area = int(mask_utils.area(rle_bytes(rle)))
    if area == 0:
        return None
    ann = dict(
        image_id=image_id,
        category_id=int(category_id),
        segmentation=dict(size=[int(s) for s in rle['size']],
                          counts=rle['counts']),
        bbox=[float(v) for v in mask_utils.toBbox(rle_bytes(rle))],
        area=area,
        iscrowd=0)
    if score is not None:
        ann['score'] = float(score)
    return ann


def rle_bytes(rle: dict) -> dict:
    """The RLE with ``counts`` as bytes (pycocotools' own form)."""
    if isinstance(rle.get('counts'), str):
        return dict(rle, counts=rle['counts'].encode('ascii'))
    return rle
