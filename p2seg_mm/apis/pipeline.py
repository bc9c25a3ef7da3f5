# Copyright (c) p2seg_mm contributors. All rights reserved.
"""End-to-end P2Seg pipeline: stage A (MDM) → B (pseudo-masks) → C (stock
segmentor) → evaluation, each stage skipped when its output exists.

Every stage runs the project's own command line tools in a subprocess
(``tools/train.py``, ``tools/export_pseudo_masks.py``, ``tools/test.py``),
exactly as a user would, so a stage can be re-run by hand from the log.
A stage's output is only taken as done when its marker file exists; the
markers are written after the stage succeeded, so a killed run resumes at
the stage it was in.
"""
import json
import os
import os.path as osp
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence

import numpy as np

from mmengine.config import Config
from mmengine.logging import print_log

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _tool(name: str) -> str:
    return osp.join(REPO, 'tools', name)


def run_command(cmd: List[str], log_file: str, echo: bool = True) -> None:
    """Run one stage command, teeing its output into ``log_file``.

    With ``echo=False`` (stages running side by side) the output only goes
    to ``log_file``.
    """
    os.makedirs(osp.dirname(log_file), exist_ok=True)
    print_log('$ ' + ' '.join(cmd), logger='current')
    start = time.time()
    with open(log_file, 'w') as log:
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=REPO)
        for line in proc.stdout:
            log.write(line)
            log.flush()
            if echo:
                sys.stdout.write(line)
        proc.wait()
    if proc.returncode != 0:
        raise RuntimeError(f'stage command failed with exit code '
                           f'{proc.returncode}; see {log_file}: '
                           + ' '.join(cmd))
    print_log(f'done in {time.time() - start:.0f} s', logger='current')


def _cfg_options(opts: Optional[Sequence[str]]) -> List[str]:
    return ['--cfg-options', *opts] if opts else []


def last_checkpoint(work_dir: str) -> str:
    """Path of the checkpoint mmengine recorded last in ``work_dir``."""
    marker = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(marker):
        raise FileNotFoundError(f'{marker} not found: training in '
                                f'{work_dir} did not save a checkpoint')
    with open(marker) as f:
        return f.read().strip()


def train_stage(config: str,
                work_dir: str,
                cfg_options: Optional[Sequence[str]] = None,
                echo: bool = True) -> str:
    """Train ``config`` into ``work_dir`` unless done; return checkpoint."""
    done = osp.join(work_dir, 'DONE')
    if osp.isfile(done):
        print_log(f'skip training {config}: {done} exists', logger='current')
        return last_checkpoint(work_dir)
    cmd = [sys.executable, _tool('train.py'), config, '--work-dir', work_dir]
    if osp.isfile(osp.join(work_dir, 'last_checkpoint')):
        cmd.append('--resume')
    run_command(
        cmd + _cfg_options(cfg_options),
        osp.join(work_dir, 'stage.log'),
        echo=echo)
    ckpt = last_checkpoint(work_dir)
    with open(done, 'w') as f:
        f.write(ckpt + '\n')
    return ckpt


def export_stage(config: str,
                 checkpoint: str,
                 out_file: str,
                 cfg_options: Optional[Sequence[str]] = None,
                 work_dir: Optional[str] = None) -> str:
    """Export the MDM's pseudo-masks of the training split.

    ``work_dir`` (the tool's logs) defaults to the folder of ``out_file``,
    never the repository's ``work_dirs/``.
    """
    if osp.isfile(out_file):
        print_log(f'skip export: {out_file} exists', logger='current')
        return out_file
    work_dir = work_dir or osp.join(
        osp.dirname(osp.abspath(out_file)),
        osp.splitext(osp.basename(out_file))[0] + '_work')
    cmd = [
        sys.executable,
        _tool('export_pseudo_masks.py'), config, checkpoint, '--out',
        out_file, '--split', 'train', '--work-dir', work_dir
    ]
    run_command(cmd + _cfg_options(cfg_options),
                osp.splitext(out_file)[0] + '.log')
    return out_file


def test_stage(config: str, checkpoint: str, work_dir: str,
               cfg_options: Optional[Sequence[str]] = None) -> Dict:
    """Evaluate a trained model; return its metrics (cached as json)."""
    metrics_file = osp.join(work_dir, 'metrics.json')
    if osp.isfile(metrics_file):
        with open(metrics_file) as f:
            return json.load(f)
    cmd = [
        sys.executable,
        _tool('test.py'), config, checkpoint, '--work-dir', work_dir,
        '--out',
        osp.join(work_dir, 'predictions.pkl'), '--metrics-out', metrics_file
    ]
    run_command(cmd + _cfg_options(cfg_options),
                osp.join(work_dir, 'stage.log'))
    with open(metrics_file) as f:
        return json.load(f)


def options_dict(opts: Optional[Sequence[str]]) -> Dict:
    """``['a.b=1', ...]`` (``--cfg-options`` syntax) as a dict."""
    from mmengine.config import DictAction
    out = {}
    for item in opts or []:
        if '=' not in item:
            raise ValueError(f'config option {item!r} is not KEY=VALUE')
        key, val = item.split('=', 1)
        out[key] = DictAction._parse_iterable(val)
    return out


def data_paths(config: str,
               cfg_options: Optional[Sequence[str]] = None) -> Dict:
    """Absolute paths of the train/val annotation files and folders.

    Returns:
        dict: ``<split>_ann``, ``<split>_img``, ``<split>_seg`` (if the
        dataset has a ``'seg'`` prefix), ``<split>_seg_suffix`` (the
        dataset's ``seg_map_suffix``, default '.png') and
        ``<split>_classes`` (``metainfo['classes']`` or None) for the
        splits 'train' and 'val'.
    """
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(options_dict(cfg_options))
    out = {}
    for split in ('train', 'val'):
        loader = cfg.get(f'{split}_dataloader') or cfg.get('test_dataloader')
        if not loader:
            continue
        ds = loader['dataset']
        while 'dataset' in ds:  # unwrap RepeatDataset & co.
            ds = ds['dataset']
        out[f'{split}_seg_suffix'] = ds.get('seg_map_suffix', '.png')
        classes = (ds.get('metainfo') or {}).get('classes')
        out[f'{split}_classes'] = list(classes) if classes else None
        root = ds.get('data_root', '') or ''
        out[f'{split}_ann'] = osp.abspath(osp.join(REPO, root,
                                                   ds['ann_file']))
        prefix = ds.get('data_prefix', {})
        out[f'{split}_img'] = osp.abspath(
            osp.join(REPO, root, prefix.get('img', '')))
        if 'seg' in prefix:
            out[f'{split}_seg'] = osp.abspath(
                osp.join(REPO, root, prefix['seg']))
    return out


def _quality(pseudo_file: str, train_gt: Optional[str]) -> Dict:
    from ..evaluation.pseudo_quality import evaluate_pseudo_masks
    if not train_gt or osp.abspath(pseudo_file) == osp.abspath(train_gt):
        return {}
    return evaluate_pseudo_masks(pseudo_file, train_gt)


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
    from pycocotools import mask as mask_util
    from pycocotools.coco import COCO

    from ..datasets.categories import category_to_label
    from ..datasets.image_io import read_image_file
    from ..visualization import overlay_instances, save_png
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
        masks = np.stack([
            mask_util.decode(coco.annToRLE(a)).astype(bool) for a in anns
        ])
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
    """PNG overlays of the pseudo-masks and of the final predictions."""
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

    from ..datasets.image_io import read_image_file
    from ..visualization import overlay_instances, save_png
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
