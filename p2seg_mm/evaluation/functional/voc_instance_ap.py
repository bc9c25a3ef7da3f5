# Copyright (c) p2seg_mm contributors. All rights reserved.
"""VOC instance-mask AP (chainercv / BESTIE protocol, docs/method.md §8.2).

Masks of one image are given either densely, as a bool array of shape
``(N, H, W)``, or as a list of ``N`` COCO RLE dicts (``{'size': [H, W],
'counts': bytes | str}``, as ``pycocotools.mask.encode`` writes them). The
RLE form is the one to keep many images in memory: IoUs are computed image by
image and only the ``(P, G)`` IoU matrix of one image is ever dense. Both
forms may be mixed; when either side of an image is RLE, the other side is
encoded and ``pycocotools.mask.iou`` computes the IoUs.

Matching, per class ``c`` and IoU threshold ``t``:

1. predictions of class ``c`` of all images are sorted by score, descending
   (stable sort: ties keep image order, then prediction order; with
   ``tie_orders=n`` the AP is instead the mean over ``n`` seeded random
   orders of equal scores, so that a method whose masks all share one score,
   such as the nearest-point baseline, is not ranked by its file order);
2. a prediction's candidate is its argmax-IoU ground truth of class ``c`` in
   its image; it is a true positive if that IoU is ``>= t`` and the candidate
   is not matched yet (it then becomes matched), otherwise a false positive;
3. precision and recall use the number of ground truths of class ``c``;
   AP is the all-point interpolated area under the monotone precision
   envelope (``use_07_metric=False``).

Classes without ground truth get AP ``nan`` (with or without predictions)
and are left out of the mAP (``nanmean``). A class with ground truth but no
prediction gets AP 0.
"""
from collections import defaultdict
from typing import List, Sequence, Union

import numpy as np
import pycocotools.mask as mask_util

from ...structures.mask_codec import encode_masks

MaskSet = Union[np.ndarray, Sequence[dict]]


def mask_iou(pred_masks: np.ndarray, gt_masks: np.ndarray) -> np.ndarray:
    """IoU between two sets of dense binary masks.

    Args:
        pred_masks (np.ndarray): Shape (P, H, W), bool (or 0/1).
        gt_masks (np.ndarray): Shape (G, H, W), bool (or 0/1).

    Returns:
        np.ndarray: Shape (P, G) float64 IoUs; 0 where the union is empty.
    """
    pred_masks = np.asarray(pred_masks)
    gt_masks = np.asarray(gt_masks)
    if pred_masks.ndim != 3 or gt_masks.ndim != 3:
        raise ValueError(
            'mask_iou expects (N, H, W) arrays, got shapes '
            f'{pred_masks.shape} and {gt_masks.shape}.')
    if pred_masks.shape[1:] != gt_masks.shape[1:]:
        raise ValueError(
            f'mask_iou: predicted masks of size {pred_masks.shape[1:]} and '
            f'ground-truth masks of size {gt_masks.shape[1:]} differ. Fix: '
            'give masks at the original image size.')
    pred = pred_masks.reshape(len(pred_masks), -1).astype(np.float64)
    gt = gt_masks.reshape(len(gt_masks), -1).astype(np.float64)
    inter = pred @ gt.T
    union = pred.sum(1)[:, None] + gt.sum(1)[None, :] - inter
    return np.divide(
        inter, union, out=np.zeros_like(inter), where=union > 0)


def rle_mask_iou(pred_rles: Sequence[dict],
                 gt_rles: Sequence[dict]) -> np.ndarray:
    """IoU between two lists of COCO RLE masks (``pycocotools.mask.iou``).

    Args:
        pred_rles (Sequence[dict]): P RLE dicts of one image size.
        gt_rles (Sequence[dict]): G RLE dicts of the same size.

    Returns:
        np.ndarray: Shape (P, G) float64 IoUs; 0 where the union is empty.
    """
    if len(pred_rles) == 0 or len(gt_rles) == 0:
        return np.zeros((len(pred_rles), len(gt_rles)), dtype=np.float64)
    sizes = {tuple(r['size']) for r in list(pred_rles) + list(gt_rles)}
    if len(sizes) != 1:
        raise ValueError(
            f'rle_mask_iou: masks of different sizes {sorted(sizes)}. Fix: '
            'give all masks of one image at the original image size.')
    ious = mask_util.iou(
        list(pred_rles), list(gt_rles), [0] * len(gt_rles))
    return np.asarray(ious, dtype=np.float64).reshape(
        len(pred_rles), len(gt_rles))


def _is_rle(masks: MaskSet) -> bool:
    return not isinstance(masks, np.ndarray)


def _num_masks(masks: MaskSet) -> int:
    return len(masks)


def image_mask_iou(pred_masks: MaskSet, gt_masks: MaskSet) -> np.ndarray:
    """IoU matrix of one image for dense or RLE masks (see module doc).

    Returns:
        np.ndarray: Shape (P, G) float64.
    """
    if _num_masks(pred_masks) == 0 or _num_masks(gt_masks) == 0:
        return np.zeros((_num_masks(pred_masks), _num_masks(gt_masks)))
    if not _is_rle(pred_masks) and not _is_rle(gt_masks):
        return mask_iou(pred_masks, gt_masks)
    if not _is_rle(pred_masks):
        pred_masks = encode_masks(pred_masks)
    if not _is_rle(gt_masks):
        gt_masks = encode_masks(gt_masks)
    return rle_mask_iou(pred_masks, gt_masks)


def average_precision(precision: np.ndarray, recall: np.ndarray) -> float:
    """All-point interpolated AP (VOC 2010+, ``use_07_metric=False``).

    Args:
        precision (np.ndarray): Shape (K,), precision after each prediction.
        recall (np.ndarray): Shape (K,), recall after each prediction.

    Returns:
        float: Area under the monotone precision envelope.
    """
    mpre = np.concatenate([[0.], np.nan_to_num(precision), [0.]])
    mrec = np.concatenate([[0.], recall, [1.]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    steps = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))


def _check_lengths(**lists) -> int:
    lengths = {name: len(value) for name, value in lists.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(
            'eval_instance_ap: the per-image lists must have one entry per '
            f'image, got lengths {lengths}.')
    return next(iter(lengths.values()))


def _match_image(ious: np.ndarray, pred_labels: np.ndarray,
                 pred_scores: np.ndarray, gt_labels: np.ndarray,
                 num_classes: int) -> list:
    """(class, score, candidate gt, candidate IoU) of each prediction.

    The candidate of a prediction is its argmax-IoU gt among the gts of its
    class in this image (-1 when the class has no gt here).
    """
    records = []
    for p, (label, score) in enumerate(zip(pred_labels, pred_scores)):
        if not 0 <= label < num_classes:
            raise ValueError(
                f'eval_instance_ap: predicted label {label} is outside '
                f'[0, {num_classes}).')
        same = np.flatnonzero(gt_labels == label)
        if len(same) == 0:
            records.append((int(label), float(score), -1, 0.0))
            continue
        best = same[int(np.argmax(ious[p, same]))]
        records.append((int(label), float(score), int(best),
                        float(ious[p, best])))
    return records


def eval_instance_ap(pred_masks: Sequence[MaskSet],
                     pred_labels: Sequence[np.ndarray],
                     pred_scores: Sequence[np.ndarray],
                     gt_masks: Sequence[MaskSet],
                     gt_labels: Sequence[np.ndarray],
                     num_classes: int,
                     iou_thr: Union[float, Sequence[float]] = 0.5,
                     tie_orders: int = 0) -> dict:
    """VOC instance-mask AP over a set of images (see module docstring).

    Args:
        pred_masks (Sequence): Per image, (P_i, H_i, W_i) bool array or a
            list of P_i RLE dicts.
        pred_labels (Sequence[np.ndarray]): Per image, (P_i,) 0-based labels.
        pred_scores (Sequence[np.ndarray]): Per image, (P_i,) scores.
        gt_masks (Sequence): Per image, (G_i, H_i, W_i) bool array or a list
            of G_i RLE dicts.
        gt_labels (Sequence[np.ndarray]): Per image, (G_i,) 0-based labels.
        num_classes (int): Number of classes C.
        iou_thr (float | Sequence[float]): IoU threshold(s); a prediction is
            a true positive when its IoU is ``>= iou_thr``. Defaults to 0.5.
        tie_orders (int): 0: equal scores keep their input order (the VOC
            devkit's and COCO's behaviour). n > 0: AP is the mean over n
            random orders of equal scores (seeds 0 .. n-1, drawn over a
            canonical order of the predictions, so that the result does not
            depend on their input order; distinct scores keep their order):
            the expected AP of a ranking with ties. Defaults to 0.

    Returns:
        dict: For one threshold, ``ap`` (C,) float array (``nan`` for classes
        without gt) and ``map`` (float, nanmean of ``ap``; ``nan`` when no
        class has gt). For a sequence of thresholds, ``ap`` is (T, C) and
        ``map`` is (T,). Always also ``num_gts`` (C,) int array.
    """
    num_images = _check_lengths(
        pred_masks=pred_masks, pred_labels=pred_labels,
        pred_scores=pred_scores, gt_masks=gt_masks, gt_labels=gt_labels)
    single = np.isscalar(iou_thr)
    thrs = [float(iou_thr)] if single else [float(t) for t in iou_thr]
    if isinstance(tie_orders, bool) or not isinstance(
            tie_orders, (int, np.integer)) or tie_orders < 0:
        raise ValueError(
            f'eval_instance_ap: tie_orders must be an int >= 0, got '
            f'{tie_orders!r}.')
    num_gts = np.zeros(num_classes, dtype=np.int64)
    records = defaultdict(list)  # label -> [(score, image, gt, iou)]
    for i in range(num_images):
        p_labels = np.asarray(pred_labels[i], dtype=np.int64).reshape(-1)
        p_scores = np.asarray(pred_scores[i], dtype=np.float64).reshape(-1)
        g_labels = np.asarray(gt_labels[i], dtype=np.int64).reshape(-1)
        if not (len(p_labels) == len(p_scores) ==
                _num_masks(pred_masks[i])):
            raise ValueError(
                f'eval_instance_ap: image {i} has {_num_masks(pred_masks[i])}'
                f' predicted masks, {len(p_labels)} labels and '
                f'{len(p_scores)} scores; they must be equal.')
        if len(g_labels) != _num_masks(gt_masks[i]):
            raise ValueError(
                f'eval_instance_ap: image {i} has {_num_masks(gt_masks[i])} '
                f'gt masks but {len(g_labels)} gt labels.')
        if len(g_labels) and (g_labels.min() < 0
                              or g_labels.max() >= num_classes):
            raise ValueError(
                f'eval_instance_ap: image {i} has gt labels outside '
                f'[0, {num_classes}): {np.unique(g_labels).tolist()}.')
        num_gts += np.bincount(g_labels, minlength=num_classes)
        try:
            ious = image_mask_iou(pred_masks[i], gt_masks[i])
        except ValueError as err:
            raise ValueError(f'eval_instance_ap: image {i}: {err}') from err
        for lab, sc, g, iou in _match_image(ious, p_labels, p_scores,
                                            g_labels, num_classes):
            records[lab].append((sc, i, g, iou))

    aps = np.full((len(thrs), num_classes), np.nan)
    for c in range(num_classes):
        if num_gts[c] == 0:
            continue
        cls_recs = records[c]
        scores = np.array([r[0] for r in cls_recs], dtype=np.float64)
        if tie_orders == 0:
            orders = [np.argsort(-scores, kind='stable')]
        else:
            # a canonical order from the records' content (image, matched
            # gt, IoU), so that the random orders do not depend on the
            # order the predictions were filed in; lexsort: last key first
            canon = np.lexsort((np.array([r[3] for r in cls_recs]),
                                np.array([r[2] for r in cls_recs]),
                                np.array([r[1] for r in cls_recs])))
            orders = []
            for seed in range(tie_orders):
                keys = np.empty(len(scores))
                keys[canon] = np.random.default_rng(seed).random(len(scores))
                orders.append(np.lexsort((keys, -scores)))
        for t, thr in enumerate(thrs):
            aps[t, c] = np.mean([
                _ranked_ap(cls_recs, order, thr, num_gts[c])
                for order in orders
            ])
    maps = np.array([_nanmean(row) for row in aps])
    if single:
        return dict(ap=aps[0], map=float(maps[0]), num_gts=num_gts)
    return dict(ap=aps, map=maps, num_gts=num_gts)


def _ranked_ap(cls_recs: list, order: np.ndarray, thr: float,
               num_gt: int) -> float:
    """AP of one class's predictions matched greedily in ``order``."""
    matched = set()
    tp = np.zeros(len(order), dtype=bool)
    for k, idx in enumerate(order):
        _, img, gt, iou = cls_recs[idx]
        if gt >= 0 and iou >= thr and (img, gt) not in matched:
            matched.add((img, gt))
            tp[k] = True
    tp_cum = np.cumsum(tp)
    fp_cum = np.cumsum(~tp)
    precision = tp_cum / np.maximum(tp_cum + fp_cum, 1)
    recall = tp_cum / num_gt
    return average_precision(precision, recall)


def _nanmean(values: np.ndarray) -> float:
    """Mean over the non-nan entries; nan when all are nan."""
    values = np.asarray(values, dtype=np.float64)
    valid = ~np.isnan(values)
    return float(values[valid].mean()) if valid.any() else float('nan')

