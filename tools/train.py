# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Train a detector (P2Seg or a second-stage mmdet model) from a config.

Same command line as MMDetection 3.x's ``tools/train.py``::

    python tools/train.py CONFIG [--work-dir DIR] [--amp] [--auto-scale-lr]
        [--resume [CKPT]] [--cfg-options KEY=VALUE ...]
        [--launcher {none,pytorch,slurm,mpi}]

Multi-GPU: ``bash tools/dist_train.sh CONFIG GPUS [ARGS]`` (torchrun).
"""
import argparse
import os
import os.path as osp
from typing import List, Optional

from mmengine.config import Config, DictAction


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line of ``tools/train.py``.

    Args:
        argv (list[str], optional): Arguments without the program name.
            Defaults to None (``sys.argv[1:]``).

    Returns:
        argparse.Namespace: ``config, work_dir, amp, auto_scale_lr, resume,
        cfg_options, launcher, local_rank``.
    """
    parser = argparse.ArgumentParser(
        description='Train a p2seg_mm / MMDetection model')
    parser.add_argument('config', help='path of the training config file')
    parser.add_argument(
        '--work-dir',
        help='folder for logs and checkpoints (default: the config\'s '
        'work_dir, else ./work_dirs/<config name>)')
    parser.add_argument(
        '--amp',
        action='store_true',
        default=False,
        help='train with automatic mixed precision (AmpOptimWrapper)')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the learning rate by (total batch size) / '
        'auto_scale_lr.base_batch_size of the config')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from this checkpoint; without a path, resume from the '
        'latest checkpoint of the work dir')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config entries, e.g. '
        'train_cfg.max_iters=100 "model.backbone.out_indices=(0,1)" '
        '(list values as key="[a,b]" or key=a,b; no spaces)')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher (tools/dist_train.sh uses pytorch)')
    # torchrun sets LOCAL_RANK; old launchers pass --local_rank/--local-rank.
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    return parser.parse_args(argv)


def set_local_rank_env(args: argparse.Namespace) -> None:
    """Export ``LOCAL_RANK`` from ``--local-rank`` unless already set."""
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)


def resolve_work_dir(cfg: Config, args: argparse.Namespace) -> str:
    """Return the work dir: CLI, else the config's, else the config name."""
    if args.work_dir is not None:
        return args.work_dir
    if cfg.get('work_dir', None) is not None:
        return cfg.work_dir
    return osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])


def build_train_config(args: argparse.Namespace) -> Config:
    """Load the config and apply the command-line options to it.

    Args:
        args (argparse.Namespace): Result of :func:`parse_args`.

    Returns:
        Config: The config the runner is built from.

    Raises:
        ValueError: ``--auto-scale-lr`` on a config without
            ``auto_scale_lr.base_batch_size``, or ``--amp`` on a config whose
            ``optim_wrapper`` is not an ``OptimWrapper``/``AmpOptimWrapper``.
    """
    from p2seg_mm.utils.config_file import load_config_or_exit
    cfg = load_config_or_exit(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    cfg.work_dir = resolve_work_dir(cfg, args)

    if args.amp:
        wrapper_type = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if wrapper_type not in ('OptimWrapper', 'AmpOptimWrapper'):
            raise ValueError(
                f'{args.config}: --amp needs optim_wrapper.type OptimWrapper '
                f'or AmpOptimWrapper, got {wrapper_type!r}. Fix: set the AMP '
                'options of that wrapper in the config instead.')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.loss_scale = 'dynamic'

    if args.auto_scale_lr:
        scale_cfg = cfg.get('auto_scale_lr', None)
        if not scale_cfg or 'base_batch_size' not in scale_cfg:
            raise ValueError(
                f'{args.config}: --auto-scale-lr needs '
                '"auto_scale_lr = dict(enable=False, base_batch_size=N)" in '
                'the config (N = total batch size the learning rate is '
                'tuned for).')
        cfg.auto_scale_lr.enable = True

    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    add_non_finite_loss_hook(cfg)
    return cfg


def add_non_finite_loss_hook(cfg: Config) -> None:
    """Add ``NonFiniteLossHook`` (stop on a NaN/inf loss, naming the
    iteration and the images) unless ``custom_hooks`` has one."""
    hooks = list(cfg.get('custom_hooks', None) or [])
    if not any(
            str(h.get('type', '')).split('.')[-1] == 'NonFiniteLossHook'
            for h in hooks if isinstance(h, dict)):
        hooks.append(dict(type='NonFiniteLossHook'))
    cfg.custom_hooks = hooks


def build_runner(cfg: Config):
    """Build the runner: ``RUNNERS`` if ``runner_type`` is set, else default.

    ``p2seg_mm`` is imported first so its modules are registered even when
    the config has no ``custom_imports``.
    """
    import p2seg_mm  # noqa: F401  (registries, checkpoint loading fix)
    from mmengine.runner import Runner

    from mmdet.registry import RUNNERS
    from p2seg_mm.utils.dist import setup_distributed
    setup_distributed(cfg)  # also on CPU-only machines (gloo)
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)


def main(argv: Optional[List[str]] = None) -> None:
    """Entry point of ``tools/train.py``."""
    args = parse_args(argv)
    set_local_rank_env(args)
    from mmdet.utils import setup_cache_size_limit_of_dynamo

    # Fewer torch.compile recompilations (only matters with compile=True).
    setup_cache_size_limit_of_dynamo()
    cfg = build_train_config(args)
    check_data(cfg)
    runner = build_runner(cfg)
    runner.train()


def check_data(cfg: Config) -> None:
    """Fail before training on bad stock-dataset or metric jsons.

    ``CocoPointDataset`` checks its own json and files when it is built
    (before the first iteration); this covers the rest: categories not in
    the config's class order (labels would be scored as another class),
    repeated ids, masks pycocotools cannot decode in the metrics' jsons.

    Raises:
        DataCheckError: Listing every error, with file, id and fix.
    """
    import p2seg_mm  # noqa: F401  (registries)
    from p2seg_mm.datasets.config_checks import preflight_check
    splits = ['train']
    if cfg.get('val_cfg') and cfg.get('val_dataloader'):
        splits.append('val')
    preflight_check(cfg, splits)


if __name__ == '__main__':
    main()
