# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Distributed set-up that also works on CPU-only machines.

mmengine's ``init_dist('pytorch')`` always calls ``torch.cuda.set_device``
and ``Runner.wrap_model`` passes ``device_ids=[LOCAL_RANK]`` to DDP; both
fail without CUDA. On such machines :func:`setup_distributed` starts the
process group with gloo itself (mmengine then skips its own ``init_dist``)
and asks for a CPU DDP wrapper (``device_ids=None``) without SyncBN. With
CUDA it defers to mmengine unchanged.
"""
import logging
import os

import torch
import torch.distributed as torch_dist
from mmengine.config import Config
from mmengine.dist import init_dist, is_distributed
from mmengine.logging import print_log


def setup_distributed(cfg: Config) -> None:
    """Start the process group of ``cfg.launcher`` (no-op for 'none').

    Args:
        cfg (Config): Config with ``launcher`` and optional
            ``env_cfg.dist_cfg``; on a CPU-only machine with the pytorch
            launcher ``model_wrapper_cfg`` is set for CPU DDP if absent.
    """
    launcher = cfg.get('launcher', 'none')
    if launcher == 'none':
        return
    cpu_only = not torch.cuda.is_available()
    if cpu_only and launcher == 'pytorch':
        if not is_distributed():
            for key in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
                if key not in os.environ:
                    raise RuntimeError(
                        f'--launcher pytorch needs {key} in the environment;'
                        ' start the tool with torchrun (tools/dist_train.sh'
                        ', tools/dist_test.sh).')
            torch_dist.init_process_group(
                backend='gloo',
                rank=int(os.environ['RANK']),
                world_size=int(os.environ['WORLD_SIZE']))
        if cfg.get('sync_bn'):
            print_log(
                f'sync_bn={cfg.sync_bn!r} ignored: SyncBatchNorm needs CUDA; '
                'each CPU process keeps its own BatchNorm statistics.',
                logger='current',
                level=logging.WARNING)
            cfg.sync_bn = None
        if cfg.get('model_wrapper_cfg') is None:
            cfg.model_wrapper_cfg = dict(
                type='MMDistributedDataParallel',
                device_ids=None,
                broadcast_buffers=False,
                find_unused_parameters=cfg.get('find_unused_parameters',
                                               False))
        return
    if not is_distributed():
        init_dist(launcher, **cfg.get('env_cfg', {}).get('dist_cfg', {}))
