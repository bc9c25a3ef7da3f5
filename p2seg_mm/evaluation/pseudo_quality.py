# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Quality of exported pseudo-masks against ground truth (docs/method.md §8.1).

Scores a pseudo-label json (as written by ``PseudoMaskDumper``) against a
COCO instances json with ground-truth masks, on the images present in both
(VOC: the 1,464 SegmentationObject train images among the 10,582 exported):

- COCO segm AP / AP50 / AP75 (pycocotools ``COCOeval``, pseudo ``score``
  used as the detection score, 1.0 when absent);
- VOC all-point mAP at each IoU threshold (chainercv protocol);
- mean IoU per point: for every non-crowd ground-truth instance, the IoU of
  its pseudo-mask, 0 when it has none. When the image's pseudo annotations
  carry ``point`` and the ground truth does too, the pseudo-mask is the one
  of the same category at the same point (tolerance ``point_tol`` px);
  otherwise the best IoU among the pseudo annotations of the same category.
"""
import contextlib
import copy
import io
import json
from typing import Dict, List, Sequence, Union

import numpy as np
import pycocotools.mask as mask_util
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from ..datasets.categories import category_to_label
from ..datasets.data_checks import validate_segmentation
from .functional.voc_instance_ap import eval_instance_ap, rle_mask_iou


def load_coco(source: Union[str, dict]) -> COCO:
    """A pycocotools ``COCO`` from a json path or an already loaded dict."""
    if isinstance(source, str):
        with open(source, encoding='utf-8') as f:
            source = json.load(f)
    coco = COCO()
    coco.dataset = copy.deepcopy(source)
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def ann_to_rle(ann: dict, height: int, width: int, where: str = '') -> dict:
    """RLE of an annotation's polygon / uncompressed / compressed mask."""
    validate_segmentation(ann, height, width, where)
    segm = ann['segmentation']
    if isinstance(segm, list):
        return mask_util.merge(mask_util.frPyObjects(segm, height, width))
    if isinstance(segm.get('counts'), list):
        return mask_util.frPyObjects(segm, height, width)
    return segm


def _image_instances(coco: COCO, img_id: int, cat2label: Dict[int, int],
                     where: str, with_crowd: bool = False) -> tuple:
    """(rles, labels, scores, points, anns) of one image's annotations."""
    img = coco.imgs[img_id]
    anns = [
        ann for ann in coco.imgToAnns.get(img_id, [])
        if with_crowd or not (ann.get('iscrowd', 0) or ann.get('ignore', 0))
    ]
    for ann in anns:
        if ann['category_id'] not in cat2label:
            raise ValueError(
                f'{where}annotation id {ann.get("id")} of image {img_id} has '
                f'category_id {ann["category_id"]}, not among the '
                f'ground-truth categories {list(cat2label)}.')
    rles = [ann_to_rle(a, img['height'], img['width'], where) for a in anns]
    labels = np.array([cat2label[a['category_id']] for a in anns], np.int64)
    scores = np.array([a.get('score', 1.0) for a in anns], np.float64)
    return rles, labels, scores, anns


def check_same_files(pseudo: dict,
                     gt: dict,
                     pseudo_name: str = 'the pseudo-label json',
                     gt_name: str = 'the ground-truth json',
                     max_listed: int = 5) -> None:
    """Images are matched by id: an id listed in both jsons' ``images``
    must name the same ``file_name`` in both.

    Entries without ``file_name`` are not compared (reported by
    :func:`~p2seg_mm.datasets.data_checks.check_coco_structure`).

    Args:
        pseudo (dict): The pseudo-label json (loaded).
        gt (dict): The ground-truth json (loaded).
        pseudo_name (str): Its path, for the message.
            Defaults to 'the pseudo-label json'.
        gt_name (str): Its path, for the message.
            Defaults to 'the ground-truth json'.
        max_listed (int): Mismatches listed in the message. Defaults to 5.

    Raises:
        ValueError: Some ids name other files in the two jsons (a ground
            truth of another split or dataset: the masks would be scored
            against other images, all zeros); the first ``max_listed`` are
            listed with both file names.
    """
    gt_files = {img.get('id'): img.get('file_name')
                for img in gt.get('images') or []}
    shared, mismatches = 0, []
    for img in pseudo.get('images') or []:
        if img.get('id') not in gt_files:
            continue
        shared += 1
        pseudo_file, gt_file = img.get('file_name'), gt_files[img['id']]
        if pseudo_file is not None and gt_file is not None and \
                pseudo_file != gt_file:
            mismatches.append((img['id'], pseudo_file, gt_file))
    if not mismatches:
        return
    listed = '; '.join(f'image id {i}: {p!r} in {pseudo_name}, {g!r} in '
                       f'{gt_name}' for i, p, g in mismatches[:max_listed])
    more = (f'; ... and {len(mismatches) - max_listed} more'
            if len(mismatches) > max_listed else '')
    raise ValueError(
        f'{len(mismatches)} of the {shared} image ids shared by '
        f'{pseudo_name} and {gt_name} name different files, so their masks '
        f'would be scored against other images (all zeros): '
        f'{listed}{more}. Fix: give the ground truth of the images the '
        'pseudo-labels were exported from (same ids and file_name).')


def _point_ious(gt_anns: List[dict], pred_anns: List[dict],
                ious: np.ndarray, point_tol: float) -> np.ndarray:
    """IoU of each gt's pseudo-mask (see module docstring), shape (G,)."""
    by_point = any('point' in a for a in pred_anns)
    out = np.zeros(len(gt_anns))
    for g, gt in enumerate(gt_anns):
        cands = [
            p for p, pred in enumerate(pred_anns)
            if pred['category_id'] == gt['category_id']
        ]
        if by_point and 'point' in gt:
            cands = [
                p for p in cands if 'point' in pred_anns[p] and np.allclose(
                    pred_anns[p]['point'], gt['point'], atol=point_tol)
            ]
        if cands:
            out[g] = ious[cands, g].max()
    return out


def evaluate_pseudo_masks(pseudo: Union[str, dict],
                          gt: Union[str, dict],
                          iou_thrs: Sequence[float] = (0.25, 0.5, 0.7, 0.75),
                          point_tol: float = 1e-3,
                          tie_orders: int = 0) -> Dict[str, float]:
    """Score pseudo-masks against ground truth (see module docstring).

    Args:
        pseudo (str | dict): Pseudo-label json (path or loaded dict).
        gt (str | dict): Ground-truth COCO instances json with masks.
        iou_thrs (Sequence[float]): VOC AP thresholds.
            Defaults to (0.25, 0.5, 0.7, 0.75).
        point_tol (float): Tolerance (px) of point matching.
            Defaults to 1e-3.
        tie_orders (int): VOC AP over this many random orders of equal
            scores (``eval_instance_ap``); 0 keeps the file order. COCO AP
            always keeps the file order. Defaults to 0.

    Raises:
        ValueError: The jsons share no image id, or a shared image id names
            another ``file_name`` in each (:func:`check_same_files`);
            categories of the ground truth that break the one category rule;
            an annotation of an unknown category or with an undecodable
            mask.

    Returns:
        dict[str, float]: ``coco/segm_AP``, ``coco/segm_AP50``,
        ``coco/segm_AP75``, ``voc/mAP{100t}`` per threshold, ``point/mIoU``,
        ``num_images``, ``num_gt_instances``, ``num_pseudo_annotations``;
        per ground-truth category ``name``: ``voc/AP{100t}/<name>`` (nan
        without instances of that class) and ``point/mIoU/<name>``.
    """
    gt_coco, pseudo_coco = load_coco(gt), load_coco(pseudo)
    cats = gt_coco.dataset.get('categories', [])
    # the one category rule, classes = the ground truth's categories
    cat2label = category_to_label(
        cats, None, gt if isinstance(gt, str) else 'ground-truth json')
    pseudo_imgs = set(pseudo_coco.imgs) | set(pseudo_coco.imgToAnns)
    img_ids = [i for i in gt_coco.getImgIds() if i in pseudo_imgs]
    if not img_ids:
        raise ValueError(
            'evaluate_pseudo_masks: the pseudo-label and ground-truth jsons '
            'share no image id. Fix: compare the export of the same split.')
    names = {}
    if isinstance(pseudo, str):
        names['pseudo_name'] = pseudo
    if isinstance(gt, str):
        names['gt_name'] = gt
    check_same_files(pseudo_coco.dataset, gt_coco.dataset, **names)
    for img_id in img_ids:
        if img_id not in pseudo_coco.imgs:
            pseudo_coco.imgs[img_id] = gt_coco.imgs[img_id]
    preds, gts, point_ious, num_pseudo = [[], [], [], []], [[], []], [], 0
    point_labels = []
    for img_id in img_ids:
        p_rles, p_labels, p_scores, p_anns = _image_instances(
            pseudo_coco, img_id, cat2label, 'pseudo json: ')
        g_rles, g_labels, _, g_anns = _image_instances(
            gt_coco, img_id, cat2label, 'ground-truth json: ')
        for lst, value in zip(preds, (p_rles, p_labels, p_scores, p_anns)):
            lst.append(value)
        gts[0].append(g_rles)
        gts[1].append(g_labels)
        num_pseudo += len(p_anns)
        point_ious.append(
            _point_ious(g_anns, p_anns, rle_mask_iou(p_rles, g_rles),
                        point_tol))
        point_labels.append(g_labels)
    voc = eval_instance_ap(preds[0], preds[1], preds[2], gts[0], gts[1],
                           len(cats), list(iou_thrs), tie_orders)
    dets = [
        dict(ann, segmentation=rle) for anns, rles in zip(preds[3], preds[0])
        for ann, rle in zip(anns, rles)
    ]
    results = _coco_segm_ap(gt_coco, dets, img_ids)
    for thr, value in zip(iou_thrs, voc['map']):
        results[f'voc/mAP{round(100 * thr)}'] = float(value)
    point_ious = np.concatenate(point_ious) if point_ious else np.zeros(0)
    point_labels = np.concatenate(point_labels) if point_labels else \
        np.zeros(0, np.int64)
    results['point/mIoU'] = (
        float(point_ious.mean()) if len(point_ious) else float('nan'))
    for label, cat in enumerate(cats):
        for thr, value in zip(iou_thrs, voc['ap'][:, label]):
            results[f'voc/AP{round(100 * thr)}/{cat["name"]}'] = float(value)
        of_class = point_ious[point_labels == label]
        results[f'point/mIoU/{cat["name"]}'] = (
            float(of_class.mean()) if len(of_class) else float('nan'))
    results['num_images'] = len(img_ids)
    results['num_gt_instances'] = int(len(point_ious))
    results['num_pseudo_annotations'] = num_pseudo
    return results


def _coco_segm_ap(gt_coco: COCO, anns: List[dict],
                  img_ids: List[int]) -> Dict[str, float]:
    """COCO segm AP / AP50 / AP75 of ``anns`` (RLE) on ``img_ids``."""
    for ann in gt_coco.dataset['annotations']:
        if 'area' not in ann:  # COCOeval's area ranges need it
            img = gt_coco.imgs[ann['image_id']]
            ann['area'] = float(
                mask_util.area(
                    ann_to_rle(ann, img['height'], img['width'],
                               'ground-truth json: ')))
    if not anns:
        return {'coco/segm_AP': 0.0, 'coco/segm_AP50': 0.0,
                'coco/segm_AP75': 0.0}
    anns = copy.deepcopy(anns)
    for ann in anns:
        ann.setdefault('score', 1.0)
        ann.pop('id', None)
        ann.pop('bbox', None)  # loadRes recomputes it from the mask
    with contextlib.redirect_stdout(io.StringIO()):
        dt_coco = gt_coco.loadRes(anns)
        coco_eval = COCOeval(gt_coco, dt_coco, 'segm')
        coco_eval.params.imgIds = img_ids
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    stats = [max(float(s), 0.0) for s in coco_eval.stats[:3]]
    return dict(zip(('coco/segm_AP', 'coco/segm_AP50', 'coco/segm_AP75'),
                    stats))


def format_quality_table(results: Dict[str, float]) -> str:
    """Two-column text table of :func:`evaluate_pseudo_masks` results."""
    width = max(len(k) for k in results)
    lines = [f'{"metric".ljust(width)}  value', '-' * (width + 10)]
    for key, value in results.items():
        text = f'{value:.4f}' if isinstance(value, float) else str(value)
        lines.append(f'{key.ljust(width)}  {text}')
    return '\n'.join(lines)
