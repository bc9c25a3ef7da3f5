# Copyright (c) p2seg_mm contributors. All rights reserved.
"""The report of ``run_pipeline.py``: results table and PNG overlays.

Not a command: ``run_pipeline.py`` (same folder) imports it. The table puts
the pseudo-mask quality on the training images next to the second stage's
metrics on the held-out images; the overlays show a few images of each
pseudo-mask set and of each second stage's predictions, chosen so that
every class gets a picture (:func:`pick_images`).
"""
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np


def _quality(pseudo_file: str, train_gt: Optional[str]) -> Dict:
    from p2seg_mm.evaluation.pseudo_quality import evaluate_pseudo_masks
    if not train_gt or osp.abspath(pseudo_file) == osp.abspath(train_gt):
        return {}
    # the baseline's masks all have score 1: VOC AP over random orders of
    # the ties, not the file's (tools/analysis_tools/eval_pseudo_masks.py)
    return evaluate_pseudo_masks(pseudo_file, train_gt, tie_orders=20)


def _fmt(value) -> str:
    if value is None or value != value:  # None or nan
        return '-'
    return f'{100 * value:.1f}'


def results_table(pseudo: Dict[str, str], train_gt: Optional[str],
                  final: Dict[str, Dict]) -> str:
    """Markdown table: pseudo-mask quality (train) and final mAP (val).

    Quality columns are in % on the training images (``point mIoU``: mean
    IoU of each ground-truth instance with the pseudo-mask of its point);
    final columns are the second-stage model on the held-out images.
    """
    names = {
        'p2seg': 'P2Seg pseudo-masks (ours)',
        'nearest': 'nearest-point baseline',
        'gt': 'ground-truth masks (upper bound)'
    }
    head = ('| second stage trained on | pseudo mIoU | pseudo mAP50 | '
            'pseudo AP | final AP | final AP50 | final mAP25 | '
            'final mAP50 | final mAP70 | final mAP75 |')
    lines = [head, '|' + '---|' * 10]
    for key, ann in pseudo.items():
        if key not in final and key == 'gt':
            continue
        q = _quality(ann, train_gt)
        m = final.get(key, {})
        lines.append('| ' + ' | '.join([
            names.get(key, key),
            _fmt(q.get('point/mIoU')),
            _fmt(q.get('voc/mAP50')),
            _fmt(q.get('coco/segm_AP')),
            _fmt(m.get('coco/segm_mAP')),
            _fmt(m.get('coco/segm_mAP_50')),
            _fmt(m.get('voc/mAP25')),
            _fmt(m.get('voc/mAP50')),
            _fmt(m.get('voc/mAP70')),
            _fmt(m.get('voc/mAP75')),
        ]) + ' |')
    return '\n'.join(lines)


def mdm_table(metrics: Dict, decoding: str) -> str:
    """Markdown table of the MDM's own test-split scores (in %): the
    held-out images decoded from their points (``tools/test.py`` with the
    MDM config); ``decoding`` names how (``pipeline_stages.test_decoding``,
    e.g. 'test-time I2S on, PAMR')."""
    head = ('| MDM on the held-out images, from their points | AP | AP50 | '
            'mAP25 | mAP50 | mAP70 | mAP75 |')
    cells = [
        _fmt(metrics.get(k)) for k in ('coco/segm_mAP', 'coco/segm_mAP_50',
                                       'voc/mAP25', 'voc/mAP50',
                                       'voc/mAP70', 'voc/mAP75')
    ]
    return '\n'.join([head, '|' + '---|' * 7,
                      '| ' + ' | '.join([decoding] + cells) + ' |'])


def pick_images(labels_per_image: Sequence[Sequence[int]],
                num: int) -> List[int]:
    """Indices of up to ``num`` images to draw, covering every class.

    Images are grouped by their most frequent label, each group sorted by
    instance count (crowded images first), and the groups are taken in
    turn, so a rare class (the demo's E. coli) gets a picture too.

    Args:
        labels_per_image (Sequence[Sequence[int]]): Labels of each image's
            instances (images without any are never picked).
        num (int): How many to pick.

    Returns:
        list[int]: Positions into ``labels_per_image``.
    """
    groups: Dict[int, List[int]] = {}
    for idx, labels in enumerate(labels_per_image):
        if len(labels):
            values, counts = np.unique(np.asarray(labels), return_counts=True)
            groups.setdefault(int(values[counts.argmax()]), []).append(idx)
    queues = [
        sorted(g, key=lambda i: -len(labels_per_image[i]))
        for _, g in sorted(groups.items())
    ]
    picked: List[int] = []
    while len(picked) < num and any(queues):
        for queue in queues:
            if queue and len(picked) < num:
                picked.append(queue.pop(0))
    return picked


def _draw_json_masks(ann_file: str,
                     img_dir: str,
                     out_dir: str,
                     num: int,
                     tag: str,
                     classes: Optional[Sequence[str]] = None) -> None:
    from pycocotools.coco import COCO

    from p2seg_mm.datasets.categories import category_to_label
    from p2seg_mm.datasets.image_io import read_image_file
    from p2seg_mm.structures.mask_codec import ann_to_mask
    from p2seg_mm.visualization import overlay_instances, save_png
    coco = COCO(ann_file)
    cat2label = category_to_label(coco.dataset.get('categories', []),
                                  classes, ann_file)
    id2name = {c['id']: c['name'] for c in coco.dataset['categories']}
    names = [id2name[cat_id] for cat_id in cat2label]
    img_ids = coco.getImgIds()
    labels = [[
        a['category_id'] for a in coco.loadAnns(coco.getAnnIds(imgIds=i))
        if a['category_id'] in cat2label
    ] for i in img_ids]
    for img_id in [img_ids[k] for k in pick_images(labels, num)]:
        info = coco.loadImgs(img_id)[0]
        anns = [
            a for a in coco.loadAnns(coco.getAnnIds(imgIds=img_id))
            if a['category_id'] in cat2label
        ]
        img = read_image_file(osp.join(img_dir, info['file_name']), 'rgb')
        masks = np.stack(
            [ann_to_mask(a, info['height'], info['width']) for a in anns])
        points = np.array([a.get('point', [np.nan, np.nan]) for a in anns])
        vis = overlay_instances(
            img,
            masks, [cat2label[a['category_id']] for a in anns],
            class_names=names,
            points=points if np.isfinite(points).all() else None)
        stem = osp.splitext(osp.basename(info['file_name']))[0]
        save_png(osp.join(out_dir, f'{tag}_{stem}.png'), vis)


def render_overlays(work: str, pseudo: Dict[str, str], paths: Dict[str, str],
                    final: Dict[str, Dict], num: int) -> None:
    """PNG overlays of the pseudo-masks, of the MDM's predictions on the
    held-out images (``mdm_<image>.png``, when ``mdm_eval/`` has them) and
    of the final predictions."""
    if num <= 0:
        return
    out_dir = osp.join(work, 'overlays')
    for key in ('p2seg', 'nearest'):
        if key in pseudo:
            _draw_json_masks(pseudo[key], paths['train_img'], out_dir, num,
                             f'pseudo_{key}', paths.get('train_classes'))
    names = paths.get('val_classes') or paths.get('train_classes')
    if names is None:
        from pycocotools.coco import COCO
        val = COCO(paths.get('val_ann', paths['train_ann']))
        names = [c['name'] for c in val.dataset['categories']]
    mdm_pred = osp.join(work, 'mdm_eval', 'predictions.pkl')
    if osp.isfile(mdm_pred):
        _draw_predictions(mdm_pred, names, out_dir, num, 'mdm')
    for key in final:
        pred_file = osp.join(work, f'second_{key}', 'eval',
                             'predictions.pkl')
        if osp.isfile(pred_file):
            _draw_predictions(pred_file, names, out_dir, num, f'final_{key}')


def _draw_predictions(pred_file: str, class_names: Sequence[str],
                      out_dir: str, num: int, tag: str,
                      score_thr: float = 0.3) -> None:
    """Overlays from a ``tools/test.py --out`` pickle (RLE masks)."""
    from mmengine.fileio import load
    from pycocotools import mask as mask_util

    from p2seg_mm.datasets.image_io import read_image_file
    from p2seg_mm.visualization import overlay_instances, save_png
    results = load(pred_file)
    labels = [
        np.asarray(r['pred_instances']['labels'])[
            np.asarray(r['pred_instances']['scores']) > score_thr]
        for r in results
    ]
    for res in [results[k] for k in pick_images(labels, num)]:
        inst = res['pred_instances']
        keep = np.flatnonzero(np.asarray(inst['scores']) > score_thr)
        img = read_image_file(res['img_path'], 'rgb')
        if len(keep):
            masks = np.stack([
                mask_util.decode(inst['masks'][i]).astype(bool)
                for i in keep
            ])
        else:
            masks = np.zeros((0, ) + img.shape[:2], bool)
        vis = overlay_instances(
            img,
            masks,
            np.asarray(inst['labels'])[keep],
            class_names=class_names,
            scores=np.asarray(inst['scores'])[keep])
        stem = osp.splitext(osp.basename(res['img_path']))[0]
        save_png(osp.join(out_dir, f'{tag}_{stem}.png'), vis)
