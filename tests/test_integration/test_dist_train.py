# Copyright (c) p2seg_mm contributors. All rights reserved.
"""tools/dist_train.sh on a CPU-only machine: 2 processes, gloo, CPU DDP.

mmengine's own set-up needs CUDA (``torch.cuda.set_device``, DDP
``device_ids``); ``p2seg_mm.utils.dist.setup_distributed`` replaces it on
CPU. The demo network trains 4 iterations on the fabricated data in two
processes and writes its checkpoint.
"""
import os
import os.path as osp
import shutil
import subprocess
import sys

import pytest
import torch

from test_short_training import REPO, build_short_run_cfg


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason='the CPU path')
def test_dist_train_two_cpu_processes(point_dataset, tmp_path):
    cfg = build_short_run_cfg(point_dataset['root'], tmp_path / 'work',
                              max_iters=4)
    cfg.launcher = 'pytorch'
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', by_epoch=False, interval=4)
    cfg.env_cfg.dist_cfg = dict(backend='nccl')  # replaced by gloo on CPU
    config = str(tmp_path / 'dist_cfg.py')
    cfg.dump(config)
    bin_dir = osp.dirname(sys.executable)
    env = dict(
        os.environ,
        OMP_NUM_THREADS='1',
        PORT='29637',
        TORCHRUN=shutil.which('torchrun', path=bin_dir) or 'torchrun',
        PATH=bin_dir + os.pathsep + os.environ.get('PATH', ''))
    proc = subprocess.run(
        ['bash', osp.join(REPO, 'tools', 'dist_train.sh'), config, '2'],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    assert 'Distributed training: True' in output
    assert 'GPU number: 2' in output  # mmengine's name for the world size
    assert osp.isfile(tmp_path / 'work' / 'iter_4.pth')
