# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Command lines of tools/train.py, tools/test.py and tools/dist_*.sh."""
import os
import os.path as osp
import stat
import subprocess

import pytest

from tests.tool_loader import REPO as REPO_ROOT
from tests.tool_loader import load_tool

TOOLS = osp.join(REPO_ROOT, 'tools')

train_tool = load_tool('tools/train.py')
test_tool = load_tool('tools/test.py')

TOY_CONFIG = """
model = dict(type='Toy', test_cfg=dict(a=1))
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1))
test_dataloader = dict(dataset=dict(type='X', pipeline=[dict(type='A')]))
default_hooks = dict(visualization=dict(type='DetVisualizationHook'))
"""


@pytest.fixture
def toy_config(tmp_path):
    path = tmp_path / 'toy_cfg.py'
    path.write_text(TOY_CONFIG +
                    'auto_scale_lr = dict(enable=False, base_batch_size=4)\n')
    return str(path)


# ----------------------------------------------------------------- train.py
def test_train_defaults_leave_the_config(toy_config, monkeypatch):
    """Without options the runner gets the config as written (plus the
    non-finite loss hook), one process, LOCAL_RANK 0."""
    args = train_tool.parse_args([toy_config])
    assert args.config == toy_config
    assert args.work_dir is None
    assert args.amp is False and args.auto_scale_lr is False
    assert args.resume is None
    assert args.cfg_options is None
    assert args.launcher == 'none'
    assert args.local_rank == 0
    cfg = train_tool.build_train_config(args)
    assert cfg.launcher == 'none'
    assert cfg.optim_wrapper.to_dict() == dict(
        type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1))
    assert cfg.auto_scale_lr.enable is False
    assert 'resume' not in cfg and 'load_from' not in cfg
    assert cfg.model.to_dict() == dict(type='Toy', test_cfg=dict(a=1))
    assert [h['type'] for h in cfg.custom_hooks] == ['NonFiniteLossHook']
    monkeypatch.delenv('LOCAL_RANK', raising=False)
    train_tool.set_local_rank_env(args)
    assert os.environ['LOCAL_RANK'] == '0'


def test_train_every_flag_reaches_the_config(toy_config, monkeypatch):
    args = train_tool.parse_args([
        toy_config, '--work-dir', 'wd', '--amp', '--auto-scale-lr',
        '--resume', 'ckpt.pth', '--cfg-options', 'train_cfg.max_iters=7',
        'model.backbone.out_indices=(0,1)', '--launcher', 'pytorch',
        '--local-rank', '3'
    ])
    assert args.work_dir == 'wd'
    assert args.amp and args.auto_scale_lr
    assert args.resume == 'ckpt.pth'
    assert args.cfg_options == {
        'train_cfg.max_iters': 7,
        'model.backbone.out_indices': (0, 1)
    }
    assert args.launcher == 'pytorch'
    assert args.local_rank == 3
    cfg = train_tool.build_train_config(args)
    assert cfg.work_dir == 'wd'
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.auto_scale_lr.enable is True
    assert cfg.resume is True and cfg.load_from == 'ckpt.pth'
    assert cfg.train_cfg.max_iters == 7
    assert cfg.model.backbone.out_indices == (0, 1)
    assert cfg.model.test_cfg.a == 1  # merged, not replaced
    assert cfg.launcher == 'pytorch'
    monkeypatch.delenv('LOCAL_RANK', raising=False)
    train_tool.set_local_rank_env(args)
    assert os.environ['LOCAL_RANK'] == '3'
    monkeypatch.delenv('LOCAL_RANK')
    train_tool.set_local_rank_env(
        train_tool.parse_args(['c.py', '--local_rank', '2']))
    assert os.environ['LOCAL_RANK'] == '2'


def test_train_resume_without_path_is_auto(toy_config):
    """``--resume`` alone resumes from the work dir's latest checkpoint
    (mmengine: resume=True, load_from=None), also before the config."""
    for argv in ([toy_config, '--resume'], ['--resume', '--', toy_config]):
        args = train_tool.parse_args(argv)
        assert args.resume == 'auto'
        cfg = train_tool.build_train_config(args)
        assert cfg.resume is True and cfg.load_from is None


@pytest.mark.parametrize('argv, message', [
    ([], 'the following arguments are required: config'),
    (['c.py', '--launcher', 'torchrun'], "invalid choice: 'torchrun'"),
])
def test_train_bad_command_lines(argv, message, capsys):
    """A bad command line stops with a usage error before anything runs."""
    with pytest.raises(SystemExit) as err:
        train_tool.main(argv)
    assert err.value.code == 2
    assert message in capsys.readouterr().err


def test_train_config_work_dir_priority(toy_config, tmp_path):
    args = train_tool.parse_args([toy_config])
    cfg = train_tool.build_train_config(args)
    assert cfg.work_dir == osp.join('./work_dirs', 'toy_cfg')
    assert cfg.launcher == 'none'
    args = train_tool.parse_args(
        [toy_config, '--cfg-options', 'work_dir=from_cfg'])
    assert train_tool.build_train_config(args).work_dir == 'from_cfg'
    args = train_tool.parse_args([
        toy_config, '--cfg-options', 'work_dir=from_cfg', '--work-dir',
        str(tmp_path)
    ])
    assert train_tool.build_train_config(args).work_dir == str(tmp_path)


def test_train_config_amp_scale_resume(toy_config):
    args = train_tool.parse_args(
        [toy_config, '--amp', '--auto-scale-lr', '--resume', 'a/b.pth'])
    cfg = train_tool.build_train_config(args)
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.loss_scale == 'dynamic'
    assert cfg.auto_scale_lr.enable is True
    assert cfg.resume is True and cfg.load_from == 'a/b.pth'

    cfg = train_tool.build_train_config(
        train_tool.parse_args([toy_config, '--resume']))
    assert cfg.resume is True and cfg.load_from is None
    assert cfg.optim_wrapper.type == 'OptimWrapper'
    assert cfg.auto_scale_lr.enable is False
    cfg = train_tool.build_train_config(train_tool.parse_args([toy_config]))
    assert not cfg.get('resume', False)


def test_train_config_errors(tmp_path):
    path = tmp_path / 'no_scale.py'
    path.write_text(TOY_CONFIG)
    args = train_tool.parse_args([str(path), '--auto-scale-lr'])
    with pytest.raises(ValueError, match='no_scale.py.*auto_scale_lr'):
        train_tool.build_train_config(args)
    path = tmp_path / 'other_wrapper.py'
    path.write_text(
        TOY_CONFIG + "optim_wrapper = dict(type='Mine')\n")
    with pytest.raises(ValueError, match="other_wrapper.py.*'Mine'"):
        train_tool.build_train_config(
            train_tool.parse_args([str(path), '--amp']))


def test_set_local_rank_env(monkeypatch):
    monkeypatch.delenv('LOCAL_RANK', raising=False)
    train_tool.set_local_rank_env(
        train_tool.parse_args(['c.py', '--local-rank', '5']))
    assert os.environ['LOCAL_RANK'] == '5'
    monkeypatch.setenv('LOCAL_RANK', '1')  # torchrun's value wins
    train_tool.set_local_rank_env(train_tool.parse_args(['c.py']))
    assert os.environ['LOCAL_RANK'] == '1'


# ------------------------------------------------------------------ test.py
def test_test_defaults_leave_the_config(toy_config):
    """Without options: the checkpoint is loaded, nothing else changes (no
    drawing, no TTA wrapper, one process)."""
    args = test_tool.parse_args([toy_config, 'model.pth'])
    assert (args.config, args.checkpoint) == (toy_config, 'model.pth')
    assert args.work_dir is None and args.out is None
    assert args.show is False and args.show_dir is None
    assert args.wait_time == 2
    assert args.cfg_options is None
    assert args.launcher == 'none'
    assert args.tta is False
    assert args.local_rank == 0
    cfg = test_tool.build_test_config(args)
    assert cfg.load_from == 'model.pth' and cfg.launcher == 'none'
    assert cfg.model.to_dict() == dict(type='Toy', test_cfg=dict(a=1))
    assert cfg.default_hooks.visualization.to_dict() == dict(
        type='DetVisualizationHook')
    assert cfg.test_dataloader.dataset.pipeline == [dict(type='A')]


def test_test_every_flag_reaches_the_config(tmp_path):
    path = tmp_path / 'with_tta.py'
    path.write_text(TOY_CONFIG + "tta_model = dict(type='DetTTAModel')\n"
                    "tta_pipeline = [dict(type='TestTimeAug')]\n")
    args = test_tool.parse_args([
        str(path), 'model.pth', '--work-dir', 'wd', '--out', 'res.pkl',
        '--show', '--show-dir', 'vis', '--wait-time', '0.5', '--cfg-options',
        'test_dataloader.batch_size=2', '--launcher', 'slurm', '--tta',
        '--local_rank', '1'
    ])
    assert args.work_dir == 'wd' and args.out == 'res.pkl'
    assert args.show and args.show_dir == 'vis'
    assert args.wait_time == 0.5
    assert args.cfg_options == {'test_dataloader.batch_size': 2}
    assert args.launcher == 'slurm'
    assert args.tta and args.local_rank == 1
    cfg = test_tool.build_test_config(args)
    assert cfg.work_dir == 'wd' and cfg.load_from == 'model.pth'
    assert cfg.test_dataloader.batch_size == 2
    assert cfg.launcher == 'slurm'
    hook = cfg.default_hooks.visualization
    assert hook.draw is True and hook.show is True
    assert hook.wait_time == 0.5 and hook.test_out_dir == 'vis'
    assert cfg.model.type == 'DetTTAModel' and cfg.model.module.type == 'Toy'


@pytest.mark.parametrize('argv, message', [
    (['cfg.py'], 'the following arguments are required: checkpoint'),
    (['c.py', 'm.pth', '--out', 'res.json'],
     "--out must name a .pkl or .pickle file, got 'res.json'"),
    (['c.py', 'm.pth', '--launcher', 'x'], "invalid choice: 'x'"),
])
def test_test_bad_command_lines(argv, message, capsys):
    """A bad command line stops with a usage error before anything runs."""
    with pytest.raises(SystemExit) as err:
        test_tool.main(argv)
    assert err.value.code == 2
    assert message in capsys.readouterr().err


def test_test_config_checkpoint_and_visualization(toy_config):
    cfg = test_tool.build_test_config(
        test_tool.parse_args([toy_config, 'm.pth']))
    assert cfg.load_from == 'm.pth'
    assert cfg.work_dir == osp.join('./work_dirs', 'toy_cfg')
    assert 'draw' not in cfg.default_hooks.visualization
    cfg = test_tool.build_test_config(
        test_tool.parse_args([
            toy_config, 'm.pth', '--show', '--wait-time', '3', '--show-dir',
            'vis', '--work-dir', 'wd'
        ]))
    hook = cfg.default_hooks.visualization
    assert hook.draw is True and hook.show is True
    assert hook.wait_time == 3 and hook.test_out_dir == 'vis'
    assert cfg.work_dir == 'wd'


def test_test_config_adds_missing_visualization_hook(tmp_path):
    path = tmp_path / 'no_vis.py'
    path.write_text("model = dict(type='Toy')\n")
    cfg = test_tool.build_test_config(
        test_tool.parse_args([str(path), 'm.pth', '--show-dir', 'out']))
    hook = cfg.default_hooks.visualization
    assert hook.type == 'DetVisualizationHook'
    assert hook.draw is True and hook.test_out_dir == 'out'
    assert 'show' not in hook


def test_test_config_tta(toy_config, tmp_path):
    with pytest.raises(ValueError, match='toy_cfg.py.*tta_model'):
        test_tool.build_test_config(
            test_tool.parse_args([toy_config, 'm.pth', '--tta']))
    path = tmp_path / 'with_tta.py'
    path.write_text(TOY_CONFIG + "tta_model = dict(type='DetTTAModel')\n"
                    "tta_pipeline = [dict(type='TestTimeAug')]\n")
    cfg = test_tool.build_test_config(
        test_tool.parse_args([str(path), 'm.pth', '--tta']))
    assert cfg.model.type == 'DetTTAModel'
    assert cfg.model.module.type == 'Toy'
    assert cfg.test_dataloader.dataset.pipeline == [
        dict(type='TestTimeAug')
    ]


def test_format_metrics():
    text = test_tool.format_metrics({'coco/segm_mAP': 0.12345, 'n': 3})
    lines = text.splitlines()
    assert lines[0].startswith('metric')
    assert 'coco/segm_mAP | 0.1235' in lines[2]
    assert lines[3].startswith('n ') and lines[3].endswith('| 3')
    assert 'no metrics' in test_tool.format_metrics({})


# ------------------------------------------------------------ dist_*.sh
@pytest.fixture
def fake_torchrun(tmp_path):
    """An executable that prints its arguments one per line."""
    path = tmp_path / 'fake_torchrun'
    path.write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$@"\n')
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def run_script(name, args, env):
    full_env = dict(os.environ, **env)
    for key in ('NNODES', 'NODE_RANK', 'PORT', 'MASTER_ADDR'):
        if key not in env:
            full_env.pop(key, None)
    return subprocess.run(['bash', osp.join(TOOLS, name)] + args,
                          capture_output=True,
                          text=True,
                          env=full_env,
                          timeout=30)


def test_dist_train_sh(fake_torchrun):
    res = run_script('dist_train.sh', ['a b.py', '4', '--amp', '--resume'],
                     dict(TORCHRUN=fake_torchrun))
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [
        '--nnodes=1', '--node_rank=0', '--master_addr=127.0.0.1',
        '--master_port=29500', '--nproc_per_node=4',
        osp.join(TOOLS, 'train.py'), 'a b.py', '--launcher', 'pytorch',
        '--amp', '--resume'
    ]
    res = run_script(
        'dist_train.sh', ['c.py', '2'],
        dict(
            TORCHRUN=fake_torchrun,
            NNODES='2',
            NODE_RANK='1',
            PORT='1234',
            MASTER_ADDR='10.0.0.1'))
    assert res.stdout.splitlines()[:5] == [
        '--nnodes=2', '--node_rank=1', '--master_addr=10.0.0.1',
        '--master_port=1234', '--nproc_per_node=2'
    ]


def test_dist_test_sh(fake_torchrun):
    res = run_script('dist_test.sh', ['c.py', 'm.pth', '8', '--out', 'r.pkl'],
                     dict(TORCHRUN=fake_torchrun))
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[4:] == [
        '--nproc_per_node=8',
        osp.join(TOOLS, 'test.py'), 'c.py', 'm.pth', '--launcher', 'pytorch',
        '--out', 'r.pkl'
    ]


def test_dist_scripts_usage_errors(fake_torchrun):
    res = run_script('dist_train.sh', ['c.py'], dict(TORCHRUN=fake_torchrun))
    assert res.returncode == 2 and 'usage' in res.stderr
    res = run_script('dist_test.sh', ['c.py', 'm.pth'],
                     dict(TORCHRUN=fake_torchrun))
    assert res.returncode == 2 and 'usage' in res.stderr
