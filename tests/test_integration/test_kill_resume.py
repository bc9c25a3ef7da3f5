# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Kill and resume (issue #10, "Also"): a run killed with SIGKILL mid-way
and started again finishes as an uninterrupted one.

- ``tools/train.py`` on the demo config with the fabricated data (6
  iterations, a checkpoint every 2) is killed during iteration 4; ``--resume``
  continues from ``iter_2.pth`` and writes the final ``iter_6.pth``.
- ``tools/export_pseudo_masks.py`` (random-weight demo model, 4 images) is
  killed after its second image; the rerun predicts only the two others and
  writes the same json as an uninterrupted export.

Each run is a subprocess of the real tool. A hook (written into the test's
folder and imported by the config) stops the run at a known point and waits
there, so the SIGKILL always lands mid-run; without ``P2SEG_TEST_PAUSE=1``
the hook does nothing.
"""
import json
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest
import torch

from test_short_training import REPO, build_short_run_cfg

HOOK_SOURCE = '''
import os
import time

from mmengine.hooks import Hook
from mmdet.registry import HOOKS


@HOOKS.register_module()
class PauseForKillHook(Hook):
    """With P2SEG_TEST_PAUSE=1: after train iteration / test batch
    ``after``, write ``flag_file`` (the iterations seen) and wait."""

    priority = 'LOWEST'  # after the CheckpointHook of the same iteration

    def __init__(self, after, flag_file):
        self.after = after
        self.flag_file = flag_file
        self.seen = []

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.seen.append(runner.iter + 1)
        self._maybe_pause(runner.iter + 1)

    def after_test_iter(self, runner, batch_idx, data_batch=None,
                        outputs=None):
        self.seen.append(batch_idx + 1)
        self._maybe_pause(batch_idx + 1)

    def _maybe_pause(self, done):
        if done != self.after or os.environ.get('P2SEG_TEST_PAUSE') != '1':
            return
        with open(self.flag_file + '.tmp', 'w') as f:
            f.write(' '.join(map(str, self.seen)))
        os.replace(self.flag_file + '.tmp', self.flag_file)
        while True:  # until SIGKILL
            time.sleep(0.2)
'''
TIMEOUT = 240


def _env(hook_dir, pause):
    env = dict(
        os.environ,
        OMP_NUM_THREADS='1',
        MKL_NUM_THREADS='1',
        PYTHONPATH=os.pathsep.join(
            [str(hook_dir), REPO,
             os.environ.get('PYTHONPATH', '')]).rstrip(os.pathsep))
    env.pop('P2SEG_TEST_PAUSE', None)
    if pause:
        env['P2SEG_TEST_PAUSE'] = '1'
    return env


def _tool(name):
    return osp.join(REPO, 'tools', name)


def _run(cmd, hook_dir, log):
    """Run a tool to its end; return its output."""
    with open(log, 'w') as f:
        proc = subprocess.run(cmd, cwd=REPO, env=_env(hook_dir, False),
                              stdout=f, stderr=subprocess.STDOUT,
                              timeout=TIMEOUT)
    with open(log) as f:
        output = f.read()
    assert proc.returncode == 0, output[-6000:]
    return output


def _run_and_kill(cmd, hook_dir, flag_file, log):
    """Start a tool, wait for the hook's flag, SIGKILL it; return the
    iterations the hook saw."""
    with open(log, 'w') as f:
        proc = subprocess.Popen(cmd, cwd=REPO, env=_env(hook_dir, True),
                                stdout=f, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        deadline = time.time() + TIMEOUT
        while not osp.exists(flag_file):
            if proc.poll() is not None:
                with open(log) as f:
                    pytest.fail('the run ended before it was killed (exit '
                                f'{proc.returncode}):\n' + f.read()[-6000:])
            if time.time() > deadline:
                pytest.fail('the run never reached the pause point')
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGKILL)  # its own session: only it
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    with open(flag_file) as f:
        return [int(v) for v in f.read().split()]


def _write_hook(tmp_path):
    hook_dir = tmp_path / 'hooks'
    hook_dir.mkdir()
    (hook_dir / 'pause_for_kill_hook.py').write_text(HOOK_SOURCE)
    return hook_dir


def _config(cfg, after, flag_file):
    cfg.custom_imports = dict(
        imports=['p2seg_mm', 'pause_for_kill_hook'],
        allow_failed_imports=False)
    cfg.custom_hooks = [
        dict(type='PauseForKillHook', after=after, flag_file=flag_file)
    ]
    return cfg


@pytest.mark.slow
def test_training_killed_and_resumed_finishes(point_dataset, tmp_path):
    hook_dir = _write_hook(tmp_path)
    flag = str(tmp_path / 'paused')
    work = tmp_path / 'work'
    cfg = build_short_run_cfg(point_dataset['root'], work, max_iters=6)
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', by_epoch=False, interval=2)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    config = str(tmp_path / 'cfg.py')
    _config(cfg, after=3, flag_file=flag).dump(config)
    cmd = [sys.executable, _tool('train.py'), config, '--work-dir', str(work)]

    seen = _run_and_kill(cmd, hook_dir, flag, str(tmp_path / 'killed.log'))
    assert seen == [1, 2, 3]
    assert osp.isfile(work / 'iter_2.pth')
    assert not osp.exists(work / 'iter_4.pth')

    output = _run(cmd + ['--resume'], hook_dir, str(tmp_path / 'resumed.log'))
    assert 'resumed epoch: 0, iter: 2' in output
    for name in ('iter_4.pth', 'iter_6.pth'):
        assert osp.isfile(work / name), name
    with open(work / 'last_checkpoint') as f:
        assert f.read().strip().endswith('iter_6.pth')
    ckpt = torch.load(work / 'iter_6.pth', map_location='cpu',
                      weights_only=False)
    assert ckpt['meta']['iter'] == 6
    assert all(torch.isfinite(v).all() for v in ckpt['state_dict'].values()
               if v.is_floating_point())


@pytest.mark.slow
def test_export_killed_and_rerun_gives_the_same_json(point_dataset,
                                                     tmp_path):
    import p2seg_mm  # noqa: F401
    from mmengine.registry import DefaultScope

    from mmdet.registry import MODELS
    hook_dir = _write_hook(tmp_path)
    flag = str(tmp_path / 'paused')
    cfg = build_short_run_cfg(point_dataset['root'], tmp_path / 'w')
    with DefaultScope.overwrite_default_scope('mmdet'):
        torch.manual_seed(0)
        model = MODELS.build(cfg.model)
    ckpt = str(tmp_path / 'model.pth')
    torch.save(dict(state_dict=model.state_dict()), ckpt)
    config = str(tmp_path / 'cfg.py')
    _config(cfg, after=2, flag_file=flag).dump(config)

    def export(out, log, kill=False):
        cmd = [
            sys.executable,
            _tool('export_pseudo_masks.py'), config, ckpt, '--out', out,
            '--work-dir', str(tmp_path / 'work')
        ]
        if kill:
            return _run_and_kill(cmd, hook_dir, flag, log)
        return _run(cmd, hook_dir, log)

    whole = str(tmp_path / 'whole' / 'pseudo.json')
    assert 'Iter(test) [4/4]' in export(whole, str(tmp_path / 'whole.log'))
    resumed = str(tmp_path / 'resumed' / 'pseudo.json')
    assert export(resumed, str(tmp_path / 'killed.log'), kill=True) == [1, 2]
    assert not osp.exists(resumed)
    partial = resumed + '.partial.jsonl'
    with open(partial) as f:
        assert len(f.read().splitlines()) == 2  # images done before the kill
    # the rerun predicts only the two images left
    assert 'Iter(test) [2/2]' in export(resumed, str(tmp_path / 'rerun.log'))
    with open(whole, 'rb') as f:
        want = f.read()
    with open(resumed, 'rb') as f:
        got = f.read()
    assert got == want  # byte for byte
    got = json.loads(got)
    with open(point_dataset['points_json']) as f:
        points = json.load(f)
    assert len(got['images']) == len(points['images']) == 4
    assert len(got['annotations']) == len(points['annotations'])
    assert not osp.exists(partial)
