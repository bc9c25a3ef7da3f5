# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Export P2Seg pseudo-masks of a split as a COCO instances json (stage B).

Example::

    python tools/export_pseudo_masks.py CONFIG CHECKPOINT \\
        --out work_dirs/p2seg/pseudo_train.json --split train

An interrupted export resumes from ``<out>.partial.jsonl`` unless
``--no-resume`` is given.
"""
import argparse
import os
import os.path as osp

from mmengine.config import DictAction
from mmengine.runner import Runner

from p2seg_mm.engine.pseudo_export import build_export_cfg
from p2seg_mm.utils.config_file import load_config_or_exit
from p2seg_mm.utils.dist import setup_distributed


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Export P2Seg pseudo-masks as a COCO json')
    parser.add_argument('config', help='training config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', required=True, help='output .json file')
    parser.add_argument(
        '--split',
        default='train',
        choices=['train', 'val', 'test'],
        help='dataloader whose dataset is exported')
    parser.add_argument(
        '--score-thr', type=float, default=0.0, help='drop lower scores')
    parser.add_argument('--work-dir', help='work dir (logs)')
    parser.add_argument(
        '--no-resume',
        action='store_true',
        help='ignore the sidecar of an interrupted export')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, key=value')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    if not args.out.endswith('.json'):
        parser.error(f'--out must end with .json, got {args.out}')
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    cfg = load_config_or_exit(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    setup_distributed(cfg)  # also on CPU-only machines (gloo)
    # the export loop skips the images of an interrupted export
    # (PseudoMaskExportLoop) and only merges when none is left
    cfg = build_export_cfg(
        cfg,
        args.checkpoint,
        args.out,
        split=args.split,
        resume=not args.no_resume,
        score_thr=args.score_thr)
    runner = Runner.from_cfg(cfg)
    runner.test()


if __name__ == '__main__':
    main()
