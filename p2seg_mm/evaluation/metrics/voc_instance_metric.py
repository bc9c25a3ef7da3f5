# Copyright (c) p2seg_mm contributors. All rights reserved.
"""VOC-style instance-mask mAP (chainercv protocol) as an mmdet metric."""
import logging
from collections import defaultdict
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.fileio import get_local_path
from mmengine.logging import print_log
from pycocotools.coco import COCO
from terminaltables import AsciiTable

from mmdet.registry import METRICS
from ...datasets.categories import category_to_label
from ...datasets.data_checks import (DataCheckError, check_coco_structure,
                                     errors_of, validate_segmentation)
from ...structures.mask_codec import encode_masks
from ..functional.voc_instance_ap import eval_instance_ap


def _to_numpy(value) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def build_label_map(categories: List[dict], classes: Optional[Sequence[str]],
                    ann_file: str) -> Dict[int, int]:
    """Map json ``category_id`` to 0-based labels in ``classes`` order.

    The project's one rule (:func:`~p2seg_mm.datasets.categories.
    category_to_label`): by name, the json listing the classes in the same
    order (``CocoMetric`` would otherwise score another class).

    Args:
        categories (list[dict]): The json ``categories`` (``id``, ``name``).
        classes (Sequence[str], optional): Class names, label order. None
            uses the json category order.
        ann_file (str): Json path, for error messages.

    Returns:
        dict[int, int]: ``category_id -> label`` for the classes only.
    """
    return category_to_label(categories, classes, ann_file)


def load_gt_rles(coco: COCO, img_ids: Sequence[int],
                 cat2label: Dict[int, int], ann_file: str) -> tuple:
    """Ground-truth RLE masks and labels of some images of a COCO json.

    ``iscrowd`` and ``ignore`` annotations and annotations of categories
    outside ``cat2label`` are excluded.

    Args:
        coco (COCO): The loaded ground-truth json.
        img_ids (Sequence[int]): Images to load, in order.
        cat2label (dict[int, int]): ``category_id -> label``.
        ann_file (str): Json path, for error messages.

    Returns:
        tuple: ``(masks, labels)``, lists over ``img_ids`` of RLE lists and
        (G,) int64 arrays.
    """
    masks, labels = [], []
    for img_id in img_ids:
        if img_id not in coco.imgs:
            raise ValueError(
                f'{ann_file}: image id {img_id} of the predictions is not in '
                'the ground-truth json. Fix: evaluate against the json the '
                'dataset was built from.')
        rles, labs = [], []
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=[img_id])):
            if ann.get('iscrowd', 0) or ann.get('ignore', 0):
                continue
            if ann['category_id'] not in cat2label:
                continue
            info = coco.imgs[img_id]
            validate_segmentation(ann, info['height'], info['width'],
                                  f'{ann_file}: ')
            rles.append(coco.annToRLE(ann))
            labs.append(cat2label[ann['category_id']])
        masks.append(rles)
        labels.append(np.asarray(labs, dtype=np.int64))
    return masks, labels


@METRICS.register_module()
class VOCInstanceMetric(BaseMetric):
    """VOC instance-mask mAP at several IoU thresholds, as reported by `P2Seg
    <https://arxiv.org/abs/2401.09709>`_ (Table 1: mAP25/50/70/75).

    Uses the chainercv all-point AP of
    :func:`p2seg_mm.evaluation.functional.eval_instance_ap`. Only RLE masks
    are kept between ``process`` and ``compute_metrics``.

    Args:
        ann_file (str): COCO instances json with ground-truth masks.
        iou_thrs (Sequence[float]): IoU thresholds. Metric names are
            ``mAP{round(100 * t)}``. Defaults to (0.25, 0.5, 0.7, 0.75).
        classwise (bool): Log a per-class AP table. Defaults to True.
        collect_device (str): 'cpu' or 'gpu'. Defaults to 'cpu'.
        prefix (str, optional): Metric name prefix. Defaults to 'voc'.
        backend_args (dict, optional): File backend arguments.
            Defaults to None.
    """

    default_prefix: Optional[str] = 'voc'

    def __init__(self,
                 ann_file: str,
                 iou_thrs: Sequence[float] = (0.25, 0.5, 0.7, 0.75),
                 classwise: bool = True,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 backend_args: Optional[dict] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.ann_file = ann_file
        self.iou_thrs = [float(t) for t in iou_thrs]
        if not self.iou_thrs or not all(0 < t <= 1 for t in self.iou_thrs):
            raise ValueError(
                f'VOCInstanceMetric: iou_thrs must be in (0, 1], got '
                f'{list(iou_thrs)}.')
        self.classwise = classwise
        self.backend_args = backend_args

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Keep RLE masks, labels, scores and the image id of each sample."""
        for data_sample in data_samples:
            pred = data_sample['pred_instances']
            if 'masks' not in pred:
                raise ValueError(
                    f'VOCInstanceMetric: image id {data_sample["img_id"]} '
                    'has no pred_instances.masks. Fix: use a model that '
                    'predicts instance masks.')
            masks = pred['masks']
            if not (isinstance(masks, list) and all(
                    isinstance(m, dict) for m in masks)):  # RLE already
                masks = _to_numpy(masks).astype(bool)
                masks = encode_masks(masks.reshape(-1, *masks.shape[-2:]))
            self.results.append(
                dict(
                    img_id=data_sample['img_id'],
                    masks=masks,
                    labels=_to_numpy(pred['labels']).astype(np.int64),
                    scores=_to_numpy(pred['scores']).astype(np.float64)))

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """Compute mAP at every threshold over the processed images."""
        img_ids = [res['img_id'] for res in results]
        counts = defaultdict(int)
        for img_id in img_ids:
            counts[img_id] += 1
        duplicated = sorted(k for k, v in counts.items() if v > 1)
        if duplicated:
            raise ValueError(
                f'VOCInstanceMetric: image ids {duplicated[:10]} were '
                'predicted more than once. Fix: evaluate each image once.')
        with get_local_path(
                self.ann_file, backend_args=self.backend_args) as local_path:
            coco = COCO(local_path)
        problems = errors_of(check_coco_structure(coco.dataset,
                                                  self.ann_file))
        if problems:  # e.g. repeated image ids: pycocotools keeps one
            raise DataCheckError(problems, self.ann_file)
        categories = coco.dataset.get('categories', [])
        classes = (self.dataset_meta or {}).get('classes')
        if classes is None:
            classes = [cat['name'] for cat in categories]
        cat2label = build_label_map(categories, classes, self.ann_file)
        gt_masks, gt_labels = load_gt_rles(coco, img_ids, cat2label,
                                           self.ann_file)
        out = eval_instance_ap([res['masks'] for res in results],
                               [res['labels'] for res in results],
                               [res['scores'] for res in results], gt_masks,
                               gt_labels, len(classes), self.iou_thrs)
        names = [f'mAP{round(100 * t)}' for t in self.iou_thrs]
        if self.classwise:
            self._log_table(classes, names, out['ap'], out['map'],
                            out['num_gts'])
        return {name: float(m) for name, m in zip(names, out['map'])}

    @staticmethod
    def _log_table(classes: Sequence[str], names: List[str], aps: np.ndarray,
                   maps: np.ndarray, num_gts: np.ndarray) -> None:
        """Log per-class AP (T, C) and the mAPs (T,) as an AsciiTable."""
        rows = [['category', 'num_gts'] + [n.replace('mAP', 'AP')
                                           for n in names]]
        for c, name in enumerate(classes):
            rows.append([name, str(int(num_gts[c]))] +
                        [f'{aps[t, c]:.3f}' for t in range(len(names))])
        rows.append(['mAP', str(int(num_gts.sum()))] +
                    [f'{m:.3f}' for m in maps])
        table = AsciiTable(rows)
        table.inner_footing_row_border = True
        print_log('\n' + table.table, logger='current', level=logging.INFO)
