# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Probe the I2S random walk of a trained MDM on one image.

See docs/method.md §4.6.

Prints, for the image's points: the affinity A (the head's kind) between cells
that the unrefined map calls foreground (P > 0.5) and the rest, the share of
cells that the unrefined map and the walk (at several walk powers) call
foreground, and the walked foreground probability at foreground cells. The
N x N affinity is built densely (a full demo frame at stride 8 is ~3k cells).

Example::

    python benchmarks/probe_walk.py configs/p2seg/p2seg_r18_demo-cells.py \\
        work_dirs/bench_quality/p2seg/seed0/iter_300.pth --image hela_t003.png
"""
import argparse
import json
import os.path as osp

import torch
from mmengine.dataset import pseudo_collate

from p2seg_mm.apis.inference import build_pipeline, init_point_segmentor
from p2seg_mm.models.layers.affinity_reference import affinity_matrix


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--data', default='data/demo_cells')
    parser.add_argument('--points', default='annotations/train_points.json')
    parser.add_argument('--image', default='hela_t003.png')
    parser.add_argument('--powers', nargs='+', type=float,
                        default=[1, 8, 32, 128])
    parser.add_argument('--radius', type=float, default=None,
                        help='walk only between cells at most this many '
                        'cells apart (Euclidean; AffinityNet\'s local walk)')
    parser.add_argument('--affinity', choices=['sigmoid', 'gaussian', 'l1'],
                        default=None,
                        help="default: the head's (affinity_head.affinity); "
                        "l1: exp(-|e_i - e_j|_1), for checkpoints of "
                        "benchmarks/probe_l1_affinity.py")
    parser.add_argument('--hard', action='store_true',
                        help='walk the one-hot argmax of P instead of P '
                        '(an affinity-weighted vote)')
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        help='key=value overrides of the config')
    parser.add_argument('--transition', choices=['ours', 'release'],
                        default='ours',
                        help="ours: R = P Â^T (rows of A normalised); "
                        "release: P Â (columns normalised by the source "
                        "cell's degree), then per cell over the classes")
    args = parser.parse_args()
    with open(osp.join(args.data, args.points)) as f:
        points = json.load(f)
    img = next(i for i in points['images'] if i['file_name'] == args.image)
    anns = [a for a in points['annotations'] if a['image_id'] == img['id']]
    cat_ids = [c['id'] for c in points['categories']]
    options = dict(o.split('=', 1) for o in args.cfg_options)
    options = {k: int(v) if v.isdigit() else v for k, v in options.items()}
    model, cfg, _ = init_point_segmentor(args.config, args.checkpoint,
                                         cfg_options=options)
    labels = sorted({cat_ids.index(a['category_id']) for a in anns})
    data = build_pipeline(cfg)(
        dict(img_path=osp.join(args.data, 'images', img['file_name']),
             img_id=img['id'], seg_map_path=None,
             instances=[dict(point=a['point'],
                             bbox_label=cat_ids.index(a['category_id']),
                             ignore_flag=0) for a in anns]))
    batch = model.data_preprocessor(pseudo_collate([data]), False)
    head = model.affinity_head
    with torch.no_grad():
        sem, _, _, embed = model._forward(batch['inputs'])
        channels = [0] + [c + 1 for c in labels]
        prob = head._pooled(sem[:, channels].softmax(1))[0].flatten(1)
        emb = head._pooled(embed)[0].flatten(1)
        kind = args.affinity or head.affinity
        if kind == 'l1':
            aff = torch.exp(-torch.cdist(emb.t()[None], emb.t()[None],
                                         p=1)[0])
        else:
            aff = affinity_matrix(emb, kind)
        fg = prob[1:].sum(0) > 0.5
        soft_fg = prob[1:].sum(0)
        if args.hard:
            prob = torch.nn.functional.one_hot(
                prob.argmax(0), prob.shape[0]).t().to(prob)
        med = lambda x: float(x.median()) if x.numel() else float('nan')
        print(f'{args.image}: {len(anns)} points, classes {labels}, '
              f'{fg.numel()} cells (walk stride {4 * head.pool}), '
              f'unrefined foreground {fg.float().mean():.3f}, its median '
              f'foreground probability {med(soft_fg[fg]):.3f}')
        print(f'affinity median: fg-fg {med(aff[fg][:, fg]):.3f}, fg-bg '
              f'{med(aff[fg][:, ~fg]):.4f}, bg-bg {med(aff[~fg][:, ~fg]):.3f}')
        if args.radius is not None:
            height, width = head._pooled(embed).shape[-2:]
            ys = torch.arange(height).repeat_interleave(width).float()
            xs = torch.arange(width).repeat(height).float()
            near = ((ys[:, None] - ys[None])**2 +
                    (xs[:, None] - xs[None])**2) <= args.radius**2
            print(f'local walk: radius {args.radius:g} cells')
        for power in args.powers:
            weight = aff**power
            if args.radius is not None:
                weight = weight * near
            if args.transition == 'ours':
                walked = (prob @ weight.t()) / weight.sum(1)
            else:
                walked = (prob / weight.sum(1)[None]) @ weight
                walked = walked / walked.sum(0, keepdim=True)
            walked_fg = walked[1:].sum(0)
            print(f'walk power {power:g}: walked foreground share '
                  f'{(walked_fg > 0.5).float().mean():.3f}, walked fg '
                  f'probability at fg cells (median) '
                  f'{med(walked_fg[fg]):.3f}')


if __name__ == '__main__':
    main()
