# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Export predicted masks as a COCO json (P2Seg stage B, docs/method.md §6.4).

While images are processed, each image's annotations are appended as one
JSON line to a sidecar ``<out_file>.partial.jsonl`` (rank ``r > 0`` of a
distributed run writes ``<out_file>.partial.rank<r>.jsonl``), flushed and
fsynced, so an interrupted export can resume: :func:`load_done_image_ids`
gives the images already done, and the final merge deduplicates by image id.
"""
import glob
import json
import logging
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.dist import get_rank
from mmengine.evaluator import BaseMetric
from mmengine.fileio import get_local_path
from mmengine.logging import print_log

from mmdet.registry import METRICS
from ...datasets.categories import category_to_label, label_to_category_id
from ...datasets.data_checks import (DataCheckError, check_coco_structure,
                                     errors_of)
from ...structures.mask_codec import mask_to_annotation
from ...utils.atomic_io import dump_json_atomic


def sidecar_path(out_file: str, rank: int = 0) -> str:
    """Path of the resume sidecar that rank ``rank`` appends to."""
    if rank == 0:
        return f'{out_file}.partial.jsonl'
    return f'{out_file}.partial.rank{rank}.jsonl'


def sidecar_paths(out_file: str) -> List[str]:
    """All existing sidecars of ``out_file`` (every rank), sorted."""
    pattern = glob.escape(out_file) + '.partial*.jsonl'
    return sorted(glob.glob(pattern))


def read_sidecars(out_file: str) -> Dict[int, dict]:
    """Read the per-image records of all sidecars of ``out_file``.

    A truncated last line (a crash in the middle of a write) is skipped;
    any other bad line raises ``ValueError``. The first record of an image
    wins.

    Returns:
        dict[int, dict]: ``image_id -> dict(image_id, annotations,
        num_empty, num_below_thr)``.
    """
    records = {}
    for path in sidecar_paths(out_file):
        with open(path, encoding='utf-8') as f:
            lines = f.read().split('\n')
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                image_id = record['image_id']
            except (json.JSONDecodeError, KeyError, TypeError) as err:
                if i == len(lines) - 1:  # unterminated last line: crash
                    break
                raise ValueError(
                    f'{path}: line {i + 1} is not a valid record ({err}). '
                    'Fix: delete the sidecar (or pass --no-resume) and '
                    'export again.') from err
            records.setdefault(image_id, record)
    return records


def _drop_unterminated_line(path: str) -> None:
    """Cut a crash-truncated last line so new records start a line."""
    with open(path, 'rb+') as f:
        data = f.read()
        if data and not data.endswith(b'\n'):
            f.truncate(data.rfind(b'\n') + 1)


def load_done_image_ids(out_file: str) -> set:
    """Image ids already exported into the sidecars of ``out_file``."""
    return set(read_sidecars(out_file))


def _to_numpy(value) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


@METRICS.register_module()
class PseudoMaskDumper(BaseMetric):
    """Write the predicted masks as a COCO instances json of pseudo-labels,
    modelled on mmdet's ``DumpDetResults`` / ``CocoMetric(format_only)``
    (`P2Seg <https://arxiv.org/abs/2401.09709>`_ stage B).

    The json has the ``images`` and ``categories`` of ``ann_file`` and one
    annotation per non-empty predicted mask with score ``>= score_thr``:
    RLE ``segmentation``, tight ``bbox`` of the mask (not the predicted
    box), ``area``, ``score``, ``iscrowd`` 0, the json ``category_id`` of
    the label (labels follow ``dataset_meta['classes']``, matched to the
    json categories by name) and ``point`` when the predictions carry
    ``points``. Empty masks are dropped and counted.

    Args:
        out_file (str): Output json path.
        ann_file (str): Source json whose images and categories are copied.
        score_thr (float): Drop predictions scoring below it.
            Defaults to 0.0.
        resume (bool): Merge the records of an earlier, interrupted export
            from the sidecars. If False, this rank's stale sidecar is deleted
            before the first image and only this run's images are written.
            Defaults to True.
        allow_empty (bool): Write a json without any annotation. If False,
            an export that keeps no mask raises ``ValueError`` (with the
            counts of empty and low-score masks and the fix) and writes
            nothing: the second stage cannot train on it. Defaults to False.
        collect_device (str): 'cpu' or 'gpu'. Defaults to 'cpu'.
        prefix (str, optional): Metric prefix. Defaults to 'pseudo'.
        backend_args (dict, optional): File backend arguments of
            ``ann_file``. Defaults to None.
    """

    default_prefix: Optional[str] = 'pseudo'

    def __init__(self,
                 out_file: str,
                 ann_file: str,
                 score_thr: float = 0.0,
                 resume: bool = True,
                 allow_empty: bool = False,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 backend_args: Optional[dict] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if not out_file.endswith('.json'):
            raise ValueError(
                f'PseudoMaskDumper: out_file must end with ".json", got '
                f'{out_file!r}.')
        self.out_file = out_file
        self.ann_file = ann_file
        self.score_thr = float(score_thr)
        self.resume = resume
        self.allow_empty = allow_empty
        self.backend_args = backend_args
        self._source: Optional[dict] = None
        self._sidecar_ready = False

    def _load_source(self) -> dict:
        """Load (once) the source json's images and categories."""
        if self._source is None:
            with get_local_path(
                    self.ann_file,
                    backend_args=self.backend_args) as local_path:
                with open(local_path, encoding='utf-8') as f:
                    data = json.load(f)
            problems = errors_of(check_coco_structure(data, self.ann_file))
            if problems:
                raise DataCheckError(problems, self.ann_file)
            images = data.get('images') or []
            categories = data.get('categories') or []
            classes = (self.dataset_meta or {}).get('classes')
            cat2label = category_to_label(categories, classes,
                                          self.ann_file)
            self._source = dict(
                images=images,
                categories=categories,
                sizes={img['id']: (img['height'], img['width'])
                       for img in images},
                label2cat=label_to_category_id(cat2label))
        return self._source

    def _image_record(self, data_sample: dict) -> dict:
        """Annotations (no ids) and drop counts of one predicted image."""
        source = self._load_source()
        image_id = data_sample['img_id']
        if image_id not in source['sizes']:
            raise ValueError(
                f'{self.ann_file}: predicted image id {image_id} is not in '
                'the source json. Fix: export the dataset of that json.')
        pred = data_sample['pred_instances']
        if 'masks' not in pred:
            raise ValueError(
                f'image id {image_id}: pred_instances has no masks. Fix: '
                'export with a model that predicts instance masks.')
        masks = _to_numpy(pred['masks']).astype(bool)
        labels = _to_numpy(pred['labels']).astype(np.int64).reshape(-1)
        scores = _to_numpy(pred['scores']).astype(np.float64).reshape(-1)
        points = _to_numpy(pred['points']) if 'points' in pred else None
        if len(masks) and masks.shape[1:] != tuple(source['sizes'][image_id]):
            raise ValueError(
                f'image id {image_id}: predicted masks have size '
                f'{masks.shape[1:]} but the json says (height, width) = '
                f'{source["sizes"][image_id]}. Fix: predict masks at the '
                'original image size.')
        annotations, num_empty, num_below = [], 0, 0
        for k in range(len(masks)):
            if scores[k] < self.score_thr:
                num_below += 1
                continue
            if not 0 <= labels[k] < len(source['label2cat']):
                raise ValueError(
                    f'image id {image_id}: predicted label {labels[k]} is '
                    f'outside [0, {len(source["label2cat"])}).')
            ann = mask_to_annotation(masks[k], image_id,
                                     source['label2cat'][labels[k]],
                                     scores[k])
            if ann is None:
                num_empty += 1
                continue
            if points is not None:
                ann['point'] = [float(v) for v in points[k]]
            annotations.append(ann)
        return dict(
            image_id=image_id,
            annotations=annotations,
            num_empty=num_empty,
            num_below_thr=num_below)

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """Encode each image's masks and append them to the sidecar."""
        path = sidecar_path(self.out_file, get_rank())
        if not self._sidecar_ready:
            if not self.resume and osp.exists(path):
                os.remove(path)
            elif osp.exists(path):
                _drop_unterminated_line(path)
            os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
            self._sidecar_ready = True
        records = [self._image_record(sample) for sample in data_samples]
        with open(path, 'a', encoding='utf-8') as f:
            for record in records:
                f.write(json.dumps(record) + '\n')
            f.flush()
            os.fsync(f.fileno())
        self.results.extend(records)

    def compute_metrics(self, results: list) -> Dict[str, int]:
        """Merge sidecars and results into the json, written atomically."""
        source = self._load_source()
        merged = read_sidecars(self.out_file) if self.resume else {}
        merged.update({record['image_id']: record for record in results})
        unknown = sorted(set(merged) - set(source['sizes']))
        if unknown:
            raise ValueError(
                f'{self.out_file}: exported image ids {unknown[:10]} are not '
                f'in {self.ann_file}. Fix: delete the stale sidecars '
                f'{sidecar_paths(self.out_file)} and export again.')
        annotations = []
        for img in source['images']:
            record = merged.get(img['id'])
            if record is not None:
                annotations.extend(record['annotations'])
        for ann_id, ann in enumerate(annotations, start=1):
            ann['id'] = ann_id
        num_empty = sum(r['num_empty'] for r in merged.values())
        num_below = sum(r.get('num_below_thr', 0) for r in merged.values())
        if not annotations and not self.allow_empty:
            for path in sidecar_paths(self.out_file):
                os.remove(path)
            raise ValueError(
                f'PseudoMaskDumper: no mask to write to {self.out_file}: '
                f'{len(merged)} images exported, {num_empty} predicted '
                f'masks were empty and {num_below} scored below '
                f'score_thr={self.score_thr}. A second stage cannot train '
                'on an empty json. Fix: lower --score-thr, check that the '
                'checkpoint is the trained one (not an early or random '
                'model) and that the points and classes of the json match '
                'the config.')
        out = dict(
            images=source['images'],
            categories=source['categories'],
            annotations=annotations)
        dump_json_atomic(out, self.out_file)
        for path in sidecar_paths(self.out_file):
            os.remove(path)
        print_log(
            f'PseudoMaskDumper: wrote {self.out_file}: {len(merged)} of '
            f'{len(source["images"])} images exported, {len(annotations)} '
            f'annotations, {num_empty} empty masks dropped, {num_below} '
            f'predictions below score_thr={self.score_thr} dropped.',
            logger='current',
            level=logging.INFO)
        return dict(num_annotations=len(annotations),
                    num_empty_dropped=num_empty)
