# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Run P2Seg end to end: MDM training → pseudo-masks → second stage → mAP.

Also scores the MDM itself on its config's test split (the held-out images
decoded from their points, as new images are; ``--no-mdm-test`` skips it).

Example (the README's demo)::

    python tools/run_pipeline.py --demo

which is the same as::

    python tools/run_pipeline.py \
        configs/p2seg/p2seg_r18_demo-cells.py \
        configs/p2seg_second_stage/mask-rcnn_r18_fpn_demo-cells-p2seg-pseudo.py \
        --train-gt data/demo_cells/annotations/train_gt.json \
        --variants p2seg

Stages whose outputs exist are skipped, so a killed run resumes. The
stages are in ``pipeline_stages.py``, the results table and overlays in
``pipeline_report.py``, the nearest-point baseline's export in
``export_nearest_point_baseline.py`` (all next to this script).
"""
import argparse
import os
import os.path as osp
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import List, Optional

# p2seg_mm from this source checkout, even when it is not installed
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.logging import MMLogger, print_log  # noqa: E402

from p2seg_mm.utils.atomic_io import write_bytes_atomic  # noqa: E402

# sibling modules (this script's folder is on sys.path)
from export_nearest_point_baseline import (  # noqa: E402
    export_nearest_point_baseline)
from pipeline_report import (mdm_table, render_overlays,  # noqa: E402
                             results_table)
from pipeline_stages import (REPO, data_paths, export_stage,  # noqa: E402
                             has_test_split, run_command, test_stage,
                             test_decoding, train_stage)

DEMO_MDM = 'configs/p2seg/p2seg_r18_demo-cells.py'
DEMO_SECOND = ('configs/p2seg_second_stage/'
               'mask-rcnn_r18_fpn_demo-cells-p2seg-pseudo.py')
DEMO_TRAIN_GT = 'data/demo_cells/annotations/train_gt.json'


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='P2Seg pipeline: stage A (MDM) -> B (pseudo-masks) -> '
        'C (second stage) -> evaluation')
    parser.add_argument('mdm_config', nargs='?', help='stage-A config')
    parser.add_argument('second_config', nargs='?', help='stage-C config')
    parser.add_argument(
        '--demo',
        action='store_true',
        help='use the demo configs and data (prepared if missing)')
    parser.add_argument('--work-dir', help='where every stage writes')
    parser.add_argument(
        '--train-gt',
        help='COCO json with ground-truth masks of the training images: '
        'enables pseudo-mask quality and the ground-truth second stage')
    parser.add_argument(
        '--variants',
        nargs='+',
        choices=['p2seg', 'nearest', 'gt'],
        help='second-stage trainings to run: on P2Seg pseudo-masks, on the '
        'nearest-point baseline, on ground-truth masks (default: all three; '
        '--demo: p2seg only, because at the demo\'s 80 iterations the three '
        'differ by less than their noise, README "Demo results")')
    parser.add_argument(
        '--mdm-options', nargs='+', help='--cfg-options for stage A')
    parser.add_argument(
        '--second-options', nargs='+', help='--cfg-options for stage C')
    parser.add_argument(
        '--jobs',
        type=int,
        default=1,
        help='second-stage trainings run side by side (each logs to its '
        'own stage.log; a single one also prints to the console); --demo '
        'uses at least 3, with one torch thread each')
    parser.add_argument(
        '--no-mdm-test',
        action='store_true',
        help='skip scoring the MDM itself on the test split (its test '
        'dataloader and evaluator: the held-out images decoded from their '
        'points with the config\'s test_cfg, test-time I2S included)')
    parser.add_argument(
        '--overlays', type=int, default=4, help='PNG overlays per stage')
    return parser.parse_args(argv)


def apply_defaults(args: argparse.Namespace) -> argparse.Namespace:
    """Fill what the command line left open: the demo's configs, data and
    second-stage variants (p2seg only), else all three variants."""
    if args.demo:
        args.mdm_config = args.mdm_config or DEMO_MDM
        args.second_config = args.second_config or DEMO_SECOND
        args.train_gt = args.train_gt or DEMO_TRAIN_GT
        args.jobs = max(args.jobs, 3)
        args.variants = args.variants or ['p2seg']
    args.variants = args.variants or ['p2seg', 'nearest', 'gt']
    return args


def main(argv: Optional[List[str]] = None) -> dict:
    args = apply_defaults(parse_args(argv))
    if args.demo:
        # always: it skips a dataset built with the current settings and
        # stops on one built by an earlier version (other images / maps)
        run_command([
            sys.executable,
            osp.join(REPO, 'tools/dataset_converters/'
                     'prepare_demo_data.py'), '--overlays', '4'
        ], osp.join(REPO, 'data/demo_cells/prepare.log'))
    if not (args.mdm_config and args.second_config):
        raise SystemExit('give MDM_CONFIG and SECOND_CONFIG, or --demo')
    stem = osp.splitext(osp.basename(args.mdm_config))[0]
    work = osp.abspath(args.work_dir or osp.join(REPO, 'work_dirs',
                                                 'pipeline_' + stem))
    os.makedirs(work, exist_ok=True)
    MMLogger.get_instance(
        'p2seg_pipeline', log_file=osp.join(work, 'pipeline.log'))
    paths = data_paths(args.mdm_config, args.mdm_options)
    train_gt = osp.abspath(args.train_gt) if args.train_gt else None

    # Stage A: the MDM network.
    # The pipeline scores pseudo-masks and the final model itself, so the
    # trainings skip their own validation.
    no_val = ['val_cfg=None', 'val_dataloader=None', 'val_evaluator=None']
    mdm_ckpt = train_stage(args.mdm_config, osp.join(work, 'mdm'),
                           no_val + list(args.mdm_options or []))
    # The MDM's own inference on the held-out images (decoded from their
    # points as new images are: the network's map, test-time I2S per the
    # config's test_cfg).
    mdm_test = None
    if not args.no_mdm_test and has_test_split(args.mdm_config,
                                               args.mdm_options):
        mdm_test = test_stage(args.mdm_config, mdm_ckpt,
                              osp.join(work, 'mdm_eval'), args.mdm_options)
    # Stage B: pseudo-masks of the training images, plus the baseline.
    pseudo = {
        'p2seg':
        export_stage(args.mdm_config, mdm_ckpt,
                     osp.join(work, 'pseudo', 'train_p2seg.json'),
                     args.mdm_options, osp.join(work, 'export'))
    }
    nearest = osp.join(work, 'pseudo', 'train_nearest.json')
    if not osp.isfile(nearest):
        if 'train_seg' not in paths:
            raise ValueError(
                f'{args.mdm_config}: the train dataset has no '
                'data_prefix["seg"] (pseudo-map folder), which the '
                'nearest-point baseline needs. Fix: set it.')
        export_nearest_point_baseline(
            paths['train_ann'],
            paths['train_seg'],
            nearest,
            seg_suffix=paths['train_seg_suffix'],
            classes=paths['train_classes'])
    pseudo['nearest'] = nearest
    if train_gt:
        pseudo['gt'] = train_gt
    # Stage C + evaluation for each second-stage variant.
    variants = [v for v in args.variants if v in pseudo]
    for variant in set(args.variants) - set(variants):
        print_log(f'skip variant {variant}: no annotation file',
                  logger='current')

    def second_stage(variant: str) -> str:
        ann = osp.abspath(pseudo[variant])
        opts = [f'train_dataloader.dataset.ann_file={ann}'] + no_val + list(
            args.second_options or [])
        return train_stage(
            args.second_config,
            osp.join(work, f'second_{variant}'),
            opts,
            echo=args.jobs <= 1 or len(variants) == 1)

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        ckpts = dict(zip(variants, pool.map(second_stage, variants)))
    final = {}
    for variant in variants:
        final[variant] = test_stage(args.second_config, ckpts[variant],
                                    osp.join(work, f'second_{variant}',
                                             'eval'), args.second_options)
    render_overlays(work, pseudo, paths, final, args.overlays)
    table = results_table(pseudo, train_gt, final)
    if mdm_test is not None:
        table += '\n\n' + mdm_table(
            mdm_test, test_decoding(args.mdm_config, args.mdm_options))
    write_bytes_atomic((table + '\n').encode(), osp.join(work, 'results.md'))
    print_log('\n' + table, logger='current')
    print_log(f'results in {osp.join(work, "results.md")}; overlays in '
              f'{osp.join(work, "overlays")}', logger='current')
    return dict(pseudo=pseudo, final=final, mdm_test=mdm_test, work_dir=work)


if __name__ == '__main__':
    main()
