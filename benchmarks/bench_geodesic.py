# Copyright (c) p2seg_mm contributors. All rights reserved.
"""The geodesic split (docs/method.md §3.5): its cost, and its edge weight.

1. Time of ``geodesic_point_labels`` (SciPy multi-source Dijkstra) on a
   synthetic all-foreground image of ``--size``² pixels with ``--points``
   random points and a random edge map, median and spread of ``--repeats``
   runs, next to the nearest-point (Voronoi) split of the same input.
2. The no-learning geodesic cut of the demo's pseudo-maps
   (``nearest_point_masks(grouping='geodesic')``, the benchmark row
   ``geodesic``) for each ``--edge-weights``, on the demo's training and
   held-out frames: VOC mask AP per class at IoU .5 / .7 (mean over 20
   random orders of the tied scores) and mean IoU per point.

Example::

    python benchmarks/bench_geodesic.py                 # both parts
    python benchmarks/bench_geodesic.py --edge-weights 0 10 30 100 --size 256
"""
import argparse
import json
import os.path as osp
import statistics
import sys
import time
from typing import List

import numpy as np

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from _machine import cpu_model  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def time_split(size: int, points: int, repeats: int, seed: int) -> str:
    """Markdown lines: seconds per call of the geodesic and Voronoi splits."""
    from scipy import ndimage

    from p2seg_mm.models.task_modules.geodesic_grouping import \
        geodesic_point_labels
    rng = np.random.default_rng(seed)
    fg = np.ones((size, size), bool)
    edge = rng.random((size, size)).astype(np.float32)
    xy = rng.uniform(0, size, (points, 2)).astype(np.float32)

    def voronoi():
        seeds = np.zeros((size, size), bool)
        seeds[xy[:, 1].astype(int), xy[:, 0].astype(int)] = True
        ndimage.distance_transform_edt(~seeds, return_indices=True)

    lines = [f'## Cost: {size}² all-foreground image, {points} points, '
             f'{repeats} runs (seed {seed})', '',
             '| split | median s | min s | max s |', '|---|---|---|---|']
    for name, call in (
            ('geodesic (geodesic_point_labels)',
             lambda: geodesic_point_labels(fg, xy, edge)),
            ('Voronoi (distance transform)', voronoi)):
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            call()
            times.append(time.perf_counter() - t0)
        lines.append(f'| {name} | {statistics.median(times):.3f} | '
                     f'{min(times):.3f} | {max(times):.3f} |')
    return '\n'.join(lines)


def edge_weight_table(data: str, weights: List[float]) -> str:
    """Markdown lines: the geodesic cut of the pseudo-maps per weight, made
    by ``tools/export_nearest_point_baseline.py`` (the users' tool)."""
    import importlib.util
    import tempfile

    from p2seg_mm.evaluation.pseudo_quality import evaluate_pseudo_masks
    spec = importlib.util.spec_from_file_location(
        'export_nearest_point_baseline',
        osp.join(ROOT, 'tools', 'export_nearest_point_baseline.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    lines = [f'## Edge weight: the geodesic cut of {data}/pseudo_sem '
             '(no learning)', '',
             '| split | weight | class | AP50 | AP70 | mean IoU per point |',
             '|---|---|---|---|---|---|']
    with tempfile.TemporaryDirectory() as tmp:
        for split in ('train', 'val'):
            points_file = osp.join(data, 'annotations', f'{split}_points.json')
            gt_file = osp.join(data, 'annotations', f'{split}_gt.json')
            with open(points_file) as f:
                cats = json.load(f)['categories']
            for weight in weights:
                out = tool.export_nearest_point_baseline(
                    points_file, osp.join(data, 'pseudo_sem'),
                    osp.join(tmp, f'{split}_{weight:g}.json'),
                    progress=False, grouping='geodesic',
                    img_dir=osp.join(data, 'images'), edge_weight=weight)
                scores = evaluate_pseudo_masks(out, gt_file,
                                               iou_thrs=(0.5, 0.7),
                                               tie_orders=20)
                for cat in cats:
                    name = cat['name']
                    lines.append(
                        f'| {split} | {weight:g} | {name} | '
                        f'{100 * scores[f"voc/AP50/{name}"]:.1f} | '
                        f'{100 * scores[f"voc/AP70/{name}"]:.1f} | '
                        f'{100 * scores[f"point/mIoU/{name}"]:.1f} |')
    return '\n'.join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size', type=int, default=512,
                        help='side of the synthetic image (default: 512)')
    parser.add_argument('--points', type=int, default=200,
                        help='points on it (default: 200)')
    parser.add_argument('--repeats', type=int, default=5,
                        help='timed runs (default: 5)')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the synthetic input (default: 0)')
    parser.add_argument('--data', default=osp.join(ROOT, 'data/demo_cells'),
                        help='demo data folder (default: data/demo_cells; '
                        'make demo-data builds it)')
    parser.add_argument('--edge-weights', type=float, nargs='+',
                        default=[10.0, 30.0],
                        help='edge weights to compare (default: 10 30)')
    parser.add_argument('--skip-timing', action='store_true',
                        help='leave out part 1 (the timing)')
    parser.add_argument('--skip-weights', action='store_true',
                        help='leave out part 2 (the edge weights)')
    args = parser.parse_args(argv)
    if args.skip_timing and args.skip_weights:
        parser.error('--skip-timing and --skip-weights leave nothing to do')
    if args.size < 2 or args.points < 1 or args.repeats < 1:
        parser.error('--size must be >= 2, --points and --repeats >= 1')
    from p2seg_mm.models.task_modules.geodesic_grouping import \
        check_edge_weight
    for weight in args.edge_weights:
        try:
            check_edge_weight(weight)
        except ValueError as err:
            parser.error(f'--edge-weights: {err}')
    if not args.skip_weights:
        missing = [
            f'annotations/{split}_{kind}.json' for split in ('train', 'val')
            for kind in ('points', 'gt') if not osp.isfile(
                osp.join(args.data, 'annotations', f'{split}_{kind}.json'))
        ] + [part for part in ('images', 'pseudo_sem')
             if not osp.isdir(osp.join(args.data, part))]
        if missing:
            parser.error(f'--data {args.data} lacks {", ".join(missing)}: '
                         'run `make demo-data` first, or pass '
                         '--skip-weights.')
    print(f'# Geodesic split (`benchmarks/bench_geodesic.py`)\n\n'
          f'{cpu_model()}, one process; other jobs on the machine slow '
          'the timings.\n')
    if not args.skip_timing:
        print(time_split(args.size, args.points, args.repeats, args.seed))
        print()
    if not args.skip_weights:
        print(edge_weight_table(args.data, args.edge_weights))


if __name__ == '__main__':
    main()
