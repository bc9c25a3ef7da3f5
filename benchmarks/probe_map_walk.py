# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Probe: can the test-time walk improve an image's given pseudo-map?

See docs/method.md §4.6 (session 6). Decodes one split of the demo cells
with a cached ``bench_quality.py`` checkpoint, grouping the given map by the
learned offsets (``semantic_source='pseudo_map'``) after one of these
changes of the map, and prints the VOC mask AP per class:

- ``none``: the given map (row ``<training>_map`` of the benchmark);
- ``walk_map``: the given map averaged over the walk's cells, walked with
  the learned affinity (K walks), upsampled, and multiplied with the map
  smoothed by ``--eps`` (a pixel changes class only where the walk is
  ``(1 - eps) / eps`` times surer of another class);
- ``walk_net``: the same with the network's walked map instead of the
  walk of the given map (the paper's test-time I2S, fused with the map);
- ``fill``: the given map, plus, for each point on given background, the
  connected component of the network's walked map under it (objects the
  map missed).

With ``--flips`` it also counts the pixels whose foreground / background
label the change flips, right or wrong against the ground truth.

The model is built from the config saved next to the checkpoint (the
training's own settings). Not package code: the variant replaces
``P2SegPointGroupingHead.predict`` in this process only.

Example::

    python benchmarks/probe_map_walk.py p2seg_aux_gm --iters-dir \\
        work_dirs/bench_quality_1000 --variant walk_map --split train
"""
import argparse
import json
import os
import os.path as osp
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
import bench_quality as bq  # noqa: E402

from p2seg_mm.models.post_processing.image_decoding import \
    decode_single  # noqa: E402
from p2seg_mm.models.seg_heads import point_grouping_head  # noqa: E402
from p2seg_mm.models.utils.batching import (image_labels,  # noqa: E402
                                            points_of, refine_channels,
                                            resize_bilinear)

FLIPS = dict(kept_right=0, fg_to_bg_right=0, fg_to_bg_wrong=0,
             bg_to_fg_right=0, bg_to_fg_wrong=0)


def changed_map(variant: str, eps: float, given: torch.Tensor,
                sem_logits: torch.Tensor, embed: torch.Tensor, samples,
                affinity_head, num_walks: int) -> torch.Tensor:
    """(B, C+1, H, W) log-probabilities of the changed given map."""
    prob = given.exp()
    size = given.shape[-2:]
    channels = [refine_channels(image_labels(s)) for s in samples]
    if variant == 'none':
        return given
    source = sem_logits if variant in ('walk_net', 'fill') else torch.log(
        F.avg_pool2d(prob, size[0] // sem_logits.shape[-2]) + 1e-6)
    walked = source
    for _ in range(num_walks):
        walked = affinity_head.refine(walked, embed, channels)
    walked = resize_bilinear(walked.exp(), size)
    if variant != 'fill':
        smooth = (1 - eps) * prob + eps / prob.shape[1]
        return (smooth.log() + torch.log(walked + 1e-6)).log_softmax(1)
    out = []
    for i, sample in enumerate(samples):
        labels = prob[i].argmax(0).numpy().copy()
        net = walked[i].argmax(0).numpy()
        points, classes = points_of(sample)
        for (x, y), c in zip(points.numpy(), classes.numpy()):
            row, col = int(y), int(x)
            if labels[row, col] == 0 and net[row, col] == c + 1:
                comp, _ = ndimage.label((net == c + 1) & (labels == 0))
                labels[comp == comp[row, col]] = c + 1
        one_hot = F.one_hot(torch.from_numpy(labels).long(), prob.shape[1])
        out.append(one_hot.permute(2, 0, 1).float().clamp(min=1e-6).log())
    return torch.stack(out)


def patch_head(variant: str, eps: float, gt_maps: dict) -> None:
    """Replace the grouping head's predict in this process."""

    def predict(self, sem_logits, center, offset, embed, samples,
                affinity_head=None, num_walks=1, center_trained=True,
                input_size=None, rescale=True, inputs=None):
        size = tuple(input_size)
        given = point_grouping_head.pseudo_map_log_probs(
            samples, sem_logits.shape[1], size)
        log_probs = changed_map(variant, eps, given, sem_logits, embed,
                                samples, affinity_head, num_walks)
        for i, sample in enumerate(samples):
            truth = gt_maps.get(osp.basename(sample.img_path))
            if truth is None:
                continue
            height, width = truth.shape
            before = given[i].argmax(0)[:height, :width].numpy() > 0
            after = log_probs[i].argmax(0)[:height, :width].numpy() > 0
            FLIPS['kept_right'] += int(((before == after) &
                                        (before == truth)).sum())
            FLIPS['fg_to_bg_right'] += int((before & ~after & ~truth).sum())
            FLIPS['fg_to_bg_wrong'] += int((before & ~after & truth).sum())
            FLIPS['bg_to_fg_right'] += int((~before & after & truth).sum())
            FLIPS['bg_to_fg_wrong'] += int((~before & after & ~truth).sum())
        offset = resize_bilinear(offset, size)
        return [
            decode_single(log_probs[i], None, offset[i], s, self.test_cfg,
                          rescale, size) for i, s in enumerate(samples)
        ]

    point_grouping_head.P2SegPointGroupingHead.predict = predict


def gt_foreground(data: str, split: str) -> dict:
    """file name -> (H, W) bool ground-truth foreground."""
    from p2seg_mm.evaluation.pseudo_quality import load_coco
    gt = load_coco(osp.join(data, 'annotations', f'{split}_gt.json'))
    maps = {}
    for img_id in gt.getImgIds():
        info = gt.imgs[img_id]
        fg = np.zeros((info['height'], info['width']), bool)
        for ann in gt.imgToAnns[img_id]:
            fg |= gt.annToMask(ann) > 0
        maps[info['file_name']] = fg
    return maps


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('training', choices=sorted(bq.TRAININGS),
                        metavar='TRAINING',
                        help='a training of bench_quality.py (TRAININGS): '
                        + ', '.join(bq.TRAININGS))
    parser.add_argument('--iters-dir', default='work_dirs/bench_quality',
                        help="that benchmark's --work-dir (default: its "
                        '300-iteration cache %(default)s)')
    parser.add_argument('--seed', type=int, default=0,
                        help='which cached seed (default %(default)s)')
    parser.add_argument('--split', default='train', choices=['train', 'val'],
                        help='training frames (pseudo-masks) or held-out '
                        'frames (default %(default)s)')
    parser.add_argument('--variant', default='walk_map',
                        choices=['none', 'walk_map', 'walk_net', 'fill'],
                        help='the change of the given map (see above; '
                        'default %(default)s)')
    parser.add_argument('--eps', type=float, default=0.1,
                        help='smoothing of the given map in walk_map / '
                        'walk_net (default %(default)s)')
    parser.add_argument('--flips', action='store_true',
                        help='count the foreground/background flips against '
                        'the ground truth')
    parser.add_argument('--data', default=bq.DATA,
                        help='data folder (default %(default)s)')
    parser.add_argument('--out', default=None,
                        help='scores json (default: a file in the temporary '
                        'folder)')
    args = parser.parse_args()
    # relative paths are the user's, i.e. from the current folder
    iters_dir, data = osp.abspath(args.iters_dir), osp.abspath(args.data)
    if not osp.isdir(iters_dir) and not osp.isabs(args.iters_dir):
        iters_dir = osp.join(bq.ROOT, args.iters_dir)  # the repo's cache
    if not osp.isdir(data) and not osp.isabs(args.data):
        data = osp.join(bq.ROOT, args.data)
    out = osp.abspath(args.out) if args.out else osp.join(
        tempfile.gettempdir(), f'probe_map_walk_{args.variant}.json')
    work = osp.join(iters_dir, args.training, f'seed{args.seed}')
    ckpt = bq.checkpoint_of(work)
    if ckpt is None:
        parser.exit(2, f'no checkpoint of {args.training} seed {args.seed} '
                    f'under {iters_dir}. Fix: python benchmarks/'
                    f'bench_quality.py --rows {args.training}_map (or a row '
                    f'of that training) --seeds {args.seed} --work-dir '
                    f'{args.iters_dir} [--iters N].\n')
    saved = sorted(f for f in os.listdir(work) if f.endswith('.py'))
    os.chdir(bq.ROOT)
    patch_head(args.variant, args.eps,
               gt_foreground(data, args.split) if args.flips else {})
    row = f'{args.training}_map'
    bq.ROWS.setdefault(row, (args.training, dict(
        semantic_source='pseudo_map'), ('train', 'val')))
    if saved:  # the training's own config (its --cfg-options included)
        bq.CONFIG = osp.join(work, saved[0])
        options = []
    else:
        options = bq.model_options(args.training, [])
    bq.score_one(row, args.split, ckpt, out, data, options)
    with open(out) as f:
        scores = json.load(f)
    print(args.variant, args.training, f'seed {args.seed}', args.split)
    for key, value in scores.items():
        if key.startswith('voc/AP') and key.count('/') == 2:
            print(f'  {key}: {100 * value:.1f}')
    print(f'  fallback: {100 * scores["fallback"]:.1f} % of points')
    if args.flips:
        print('  pixels (fg/bg vs ground truth):', FLIPS)


if __name__ == '__main__':
    main()
