# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Where the demo's pseudo-maps are wrong, and what each error costs.

See docs/method.md §4.6 (session 6). For every class of the demo cells and
both splits, prints:

- the pseudo-map's foreground against the ground truth (ignore pixels,
  255, count as background): IoU, precision, recall, and its
  false-positive pixels by distance to the nearest ground-truth pixel
  (1, 2, 3, >= 4 px; share of the ground-truth area);
- the nearest-point baseline's VOC mask AP (%) at IoU .5 / .7 / .75 on the map,
  on the map with its false positives removed (map AND ground truth), with
  its false negatives added (map OR ground truth), and on the ground-truth
  map (the ``oracle`` row of ``bench_quality.py``), and on the
  ground-truth map averaged over stride-2 / 4 / 8 cells and bilinearly
  upsampled: the best a semantic head at that stride can do.

``--data`` is a folder laid out as ``data/demo_cells`` (made by
``tools/dataset_converters/prepare_demo_data.py``): ``annotations/
{train,val}_points.json`` and ``{train,val}_gt.json``, ``images/`` and
``pseudo_sem/<image stem>.png``. About 3 minutes on 2 cores; each split's
tables print when it is done.

No learning and no randomness: the numbers are exact for the data. A
method that learns from the map inherits its boundaries; the rows with
errors removed bound what fixing each kind of error can give.

Example::

    python benchmarks/probe_map_errors.py [--data data/demo_cells]
"""
import argparse
import os.path as osp
import sys
from typing import Dict, List

import numpy as np
from PIL import Image
from scipy import ndimage

from p2seg_mm.evaluation.nearest_point_baseline import nearest_point_masks
from p2seg_mm.evaluation.pseudo_quality import (evaluate_pseudo_masks,
                                                load_coco)

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from _machine import cpu_model  # noqa: E402
from bench_quality import masks_to_anns  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

VARIANTS = ('map', 'map AND gt', 'map OR gt', 'gt (oracle)',
            'gt via stride 2', 'gt via stride 4', 'gt via stride 8')


def through_stride(sem: np.ndarray, num_classes: int,
                   stride: int) -> np.ndarray:
    """``sem`` as a network at ``stride`` would give it at best: class
    shares averaged over stride x stride cells, bilinearly upsampled
    (align_corners=False, as decoding), argmax."""
    import torch
    import torch.nn.functional as F
    one_hot = F.one_hot(torch.from_numpy(sem.astype(np.int64)),
                        num_classes + 1).permute(2, 0, 1)[None].float()
    height, width = sem.shape
    pad = (0, -width % stride, 0, -height % stride)
    cells = F.avg_pool2d(F.pad(one_hot, pad), stride)
    up = F.interpolate(cells, scale_factor=stride, mode='bilinear',
                       align_corners=False)[0, :, :height, :width]
    return up.argmax(0).numpy().astype(np.uint8)


def variant_maps(seg: np.ndarray, gt_sem: np.ndarray,
                 num_classes: int) -> Dict[str, np.ndarray]:
    """The pseudo-map (255 -> background), its corrected versions and the
    ground-truth map after a trip through a stride-2 / 4 / 8 grid."""
    seg = np.where(seg == 255, 0, seg)
    fg, gt_fg = seg > 0, gt_sem > 0
    return {
        'map': seg,
        'map AND gt': np.where(fg & gt_fg, seg, 0),
        'map OR gt': np.where(gt_fg, gt_sem, seg),
        'gt (oracle)': gt_sem,
        'gt via stride 2': through_stride(gt_sem, num_classes, 2),
        'gt via stride 4': through_stride(gt_sem, num_classes, 4),
        'gt via stride 8': through_stride(gt_sem, num_classes, 8),
    }


def run_split(data: str, split: str) -> None:
    points = load_coco(osp.join(data, 'annotations', f'{split}_points.json'))
    gt_file = osp.join(data, 'annotations', f'{split}_gt.json')
    gt = load_coco(gt_file)
    cats = points.dataset['categories']
    cat_ids = [c['id'] for c in cats]
    pixels = {c['name']: np.zeros(4) for c in cats}  # tp, fp, fn, gt
    fp_by_dist = {c['name']: np.zeros(5) for c in cats}
    anns: Dict[str, List[dict]] = {v: [] for v in VARIANTS}
    for img_id in points.getImgIds():
        info = points.imgs[img_id]
        stem = osp.splitext(info['file_name'])[0]
        seg = np.array(Image.open(osp.join(data, 'pseudo_sem',
                                           stem + '.png')))
        gt_sem = np.zeros(seg.shape, np.uint8)
        for ann in gt.imgToAnns[img_id]:
            gt_sem[gt.annToMask(ann) > 0] = cat_ids.index(
                ann['category_id']) + 1
        pts = points.imgToAnns[img_id]
        xy = np.array([a['point'] for a in pts], np.float32).reshape(-1, 2)
        labels = np.array([cat_ids.index(a['category_id']) for a in pts])
        for k, cat in enumerate(cats):
            fg = seg == k + 1
            gt_fg = gt_sem == k + 1
            if not gt_fg.any():
                continue
            pixels[cat['name']] += [(fg & gt_fg).sum(), (fg & ~gt_fg).sum(),
                                    (~fg & gt_fg).sum(), gt_fg.sum()]
            dist = ndimage.distance_transform_edt(~gt_fg)[fg & ~gt_fg]
            fp_by_dist[cat['name']] += np.bincount(
                np.minimum(np.ceil(dist).astype(int), 4), minlength=5)
        for name, sem in variant_maps(seg, gt_sem, len(cats)).items():
            res = nearest_point_masks(sem.astype(np.uint8), xy, labels,
                                      len(cats))
            anns[name] += masks_to_anns(res['masks'], res['scores'],
                                        labels, xy, img_id, cat_ids,
                                        len(anns[name]))
    print(f'\n## {split}\n')
    print('| class | map fg IoU | precision | recall | FP at 1 / 2 / 3 / '
          '>=4 px (% of gt area) |')
    print('|---|---|---|---|---|')
    for name, (tp, fp, fn, area) in pixels.items():
        dist = ' / '.join(f'{100 * v / area:.1f}'
                          for v in fp_by_dist[name][1:])
        print(f'| {name} | {100 * tp / (tp + fp + fn):.1f} | '
              f'{100 * tp / (tp + fp):.1f} | {100 * tp / (tp + fn):.1f} | '
              f'{dist} |')
    print('\n| nearest point on | ' + ' | '.join(
        c['name'] + ' AP50 / AP70 / AP75' for c in cats) + ' |')
    print('|---|' + '---|' * len(cats))
    for name in VARIANTS:
        scores = evaluate_pseudo_masks(
            dict(points.dataset, annotations=anns[name]), gt_file)
        cells = [
            ' / '.join(f'{100 * scores[f"voc/AP{t}/" + c["name"]]:.1f}'
                       for t in (50, 70, 75)) for c in cats
        ]
        print(f'| {name} | ' + ' | '.join(cells) + ' |')


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--data', default=osp.join(ROOT, 'data', 'demo_cells'),
                        help='the data folder (default: the demo cells of '
                        'this checkout)')
    args = parser.parse_args()
    missing = [
        name for split in ('train', 'val')
        for name in (f'annotations/{split}_points.json',
                     f'annotations/{split}_gt.json')
        if not osp.isfile(osp.join(args.data, name))
    ] + [d for d in ('images', 'pseudo_sem')
         if not osp.isdir(osp.join(args.data, d))]
    if missing:
        parser.exit(2, f'{args.data}: missing {", ".join(missing)}. Fix: '
                    'give --data a folder laid out as data/demo_cells (python '
                    'tools/dataset_converters/prepare_demo_data.py makes '
                    'it).\n')
    print(f'# Pseudo-map errors of {args.data} ({cpu_model()}; exact, no '
          'seeds)')
    for split in ('train', 'val'):
        run_split(args.data, split)


if __name__ == '__main__':
    main()
