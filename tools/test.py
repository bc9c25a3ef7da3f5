# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Test (and evaluate) a trained detector from a config and a checkpoint.

Same command line as MMDetection 3.x's ``tools/test.py``::

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out RES.pkl]
        [--show] [--show-dir DIR] [--wait-time S] [--tta]
        [--cfg-options KEY=VALUE ...] [--launcher {none,pytorch,slurm,mpi}]

The metrics of ``test_evaluator`` are logged by the metrics themselves and
printed again as one table at the end.
"""
import argparse
import os
import os.path as osp
from typing import Dict, List, Optional

from mmengine.config import Config, ConfigDict, DictAction


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line of ``tools/test.py``.

    Args:
        argv (list[str], optional): Arguments without the program name.
            Defaults to None (``sys.argv[1:]``).

    Returns:
        argparse.Namespace: ``config, checkpoint, work_dir, out, show,
        show_dir, wait_time, cfg_options, launcher, tta, local_rank``.
    """
    parser = argparse.ArgumentParser(
        description='Test (and evaluate) a p2seg_mm / MMDetection model')
    parser.add_argument('config', help='path of the test config file')
    parser.add_argument('checkpoint', help='checkpoint file to test')
    parser.add_argument(
        '--work-dir',
        help='folder for the log and the metrics json (default: the '
        'config\'s work_dir, else ./work_dirs/<config name>)')
    parser.add_argument(
        '--out',
        type=str,
        help='also dump the raw predictions to this .pkl file')
    parser.add_argument(
        '--metrics-out',
        help='also write the metrics to this .json file (atomically)')
    parser.add_argument(
        '--show',
        action='store_true',
        help='show the predictions in a window')
    parser.add_argument(
        '--show-dir',
        help='save painted predictions here (relative to '
        '<work_dir>/<timestamp>/)')
    parser.add_argument(
        '--wait-time',
        type=float,
        default=2,
        help='seconds each image is shown with --show')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config entries, e.g. test_dataloader.batch_size=2 '
        '(list values as key="[a,b]" or key=a,b; no spaces)')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher (tools/dist_test.sh uses pytorch)')
    parser.add_argument(
        '--tta',
        action='store_true',
        help='test-time augmentation with the config\'s tta_model and '
        'tta_pipeline')
    # torchrun sets LOCAL_RANK; old launchers pass --local_rank/--local-rank.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if args.out is not None and not args.out.endswith(('.pkl', '.pickle')):
        parser.error(f'--out must name a .pkl or .pickle file, got '
                     f'{args.out!r}')
    return args


def enable_visualization(cfg: Config, args: argparse.Namespace) -> None:
    """Switch on drawing in ``default_hooks.visualization`` for --show(-dir).

    Adds mmdet's ``DetVisualizationHook`` when the config has none.
    """
    default_hooks = cfg.setdefault('default_hooks', ConfigDict())
    hook = default_hooks.get('visualization', None)
    if hook is None:
        hook = ConfigDict(type='DetVisualizationHook')
        default_hooks['visualization'] = hook
    hook['draw'] = True
    if args.show:
        hook['show'] = True
        hook['wait_time'] = args.wait_time
    if args.show_dir:
        hook['test_out_dir'] = args.show_dir


def enable_tta(cfg: Config, config_path: str) -> None:
    """Wrap the model in ``cfg.tta_model`` and test with ``tta_pipeline``.

    Raises:
        ValueError: The config defines no ``tta_model`` or ``tta_pipeline``.
    """
    missing = [k for k in ('tta_model', 'tta_pipeline') if k not in cfg]
    if missing:
        raise ValueError(
            f'{config_path}: --tta needs {" and ".join(missing)} in the '
            'config, e.g. tta_model = dict(type=\'DetTTAModel\', tta_cfg='
            'dict(nms=dict(type=\'nms\', iou_threshold=0.5), '
            'max_per_img=100)) and tta_pipeline = [... dict(type='
            '\'TestTimeAug\', transforms=[...])].')
    cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline


def build_test_config(args: argparse.Namespace) -> Config:
    """Load the config and apply the command-line options to it.

    Args:
        args (argparse.Namespace): Result of :func:`parse_args`.

    Returns:
        Config: The config the runner is built from.
    """
    from p2seg_mm.utils.config_file import load_config_or_exit
    cfg = load_config_or_exit(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = args.checkpoint
    if args.show or args.show_dir:
        enable_visualization(cfg, args)
    if args.tta:
        enable_tta(cfg, args.config)
    return cfg


def format_metrics(metrics: Dict[str, float]) -> str:
    """Format ``{name: value}`` as a two-column text table."""
    if not metrics:
        return 'no metrics (test_evaluator returned nothing)'
    width = max(len(k) for k in metrics)
    lines = [f'{"metric":<{width}} | value', f'{"-" * width}-+------']
    for key, value in metrics.items():
        text = f'{value:.4f}' if isinstance(value, float) else str(value)
        lines.append(f'{key:<{width}} | {text}')
    return '\n'.join(lines)


def main(argv: Optional[List[str]] = None) -> Dict[str, float]:
    """Entry point of ``tools/test.py``; returns the metrics."""
    args = parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    import p2seg_mm  # noqa: F401  (registries, checkpoint loading fix)
    from mmengine.runner import Runner

    from mmdet.evaluation import DumpDetResults
    from mmdet.registry import RUNNERS
    from mmdet.utils import setup_cache_size_limit_of_dynamo
    from p2seg_mm.utils.dist import setup_distributed

    setup_cache_size_limit_of_dynamo()
    cfg = build_test_config(args)
    # Bad metric / stock-dataset jsons fail here, before any inference
    # (CocoPointDataset checks its own data when it is built).
    from p2seg_mm.datasets.config_checks import preflight_check
    preflight_check(cfg, ['test'])
    setup_distributed(cfg)  # also on CPU-only machines (gloo)
    if 'runner_type' in cfg:
        runner = RUNNERS.build(cfg)
    else:
        runner = Runner.from_cfg(cfg)
    if args.out is not None:
        runner.test_evaluator.metrics.append(
            DumpDetResults(out_file_path=args.out))
    metrics = runner.test()
    print(format_metrics(metrics))
    if args.metrics_out and runner.rank == 0:
        write_metrics(metrics, args.metrics_out)
    return metrics


def write_metrics(metrics: Dict[str, float], path: str) -> None:
    """Write ``metrics`` as json, atomically."""
    import numbers

    from p2seg_mm.utils.atomic_io import dump_json_atomic
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    dump_json_atomic(
        {
            k: float(v) if isinstance(v, numbers.Real) else str(v)
            for k, v in metrics.items()
        },
        path,
        indent=1)


if __name__ == '__main__':
    main()
