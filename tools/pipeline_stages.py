# Copyright (c) p2seg_mm contributors. All rights reserved.
"""The stages of ``run_pipeline.py``: stage A (MDM) → B (pseudo-masks) →
C (stock segmentor) → evaluation, each skipped when its output exists.

Not a command: ``run_pipeline.py`` (same folder) imports it. Every stage
runs the project's own command line tools in this folder in a subprocess
(``train.py``, ``export_pseudo_masks.py``, ``test.py``), exactly as a user
would, so a stage can be re-run by hand from the log. A stage's output is
only taken as done when its marker file exists; the markers are written
(atomically) after the stage succeeded, so a killed run resumes at the
stage it was in. The results table and overlays: ``pipeline_report.py``.
"""
import hashlib
import json
import os
import os.path as osp
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence

from mmengine.config import Config
from mmengine.logging import print_log

from p2seg_mm.utils.atomic_io import write_bytes_atomic

TOOLS = osp.dirname(osp.abspath(__file__))
REPO = osp.dirname(TOOLS)


def _tool(name: str) -> str:
    return osp.join(TOOLS, name)


def run_command(cmd: List[str], log_file: str, echo: bool = True) -> None:
    """Run one stage command, teeing its output into ``log_file``.

    With ``echo=False`` (stages running side by side) the output only goes
    to ``log_file``.
    """
    os.makedirs(osp.dirname(log_file), exist_ok=True)
    print_log('$ ' + ' '.join(cmd), logger='current')
    start = time.time()
    with open(log_file, 'w') as log:
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=REPO)
        for line in proc.stdout:
            log.write(line)
            log.flush()
            if echo:
                sys.stdout.write(line)
        proc.wait()
    if proc.returncode != 0:
        raise RuntimeError(f'stage command failed with exit code '
                           f'{proc.returncode}; see {log_file}: '
                           + ' '.join(cmd))
    print_log(f'done in {time.time() - start:.0f} s', logger='current')


def _cfg_options(opts: Optional[Sequence[str]]) -> List[str]:
    return ['--cfg-options', *opts] if opts else []


def last_checkpoint(work_dir: str) -> str:
    """Path of the checkpoint mmengine recorded last in ``work_dir``."""
    marker = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(marker):
        raise FileNotFoundError(f'{marker} not found: training in '
                                f'{work_dir} did not save a checkpoint')
    with open(marker) as f:
        return f.read().strip()


def train_stage(config: str,
                work_dir: str,
                cfg_options: Optional[Sequence[str]] = None,
                echo: bool = True) -> str:
    """Train ``config`` into ``work_dir`` unless done; return checkpoint.

    Raises:
        SystemExit: ``work_dir`` holds a training of another config (or
            other options), or one made before configs were recorded:
            skipping or resuming it would silently reuse the wrong model.
    """
    done = osp.join(work_dir, 'DONE')
    check_stage_config(config, cfg_options, work_dir)
    if osp.isfile(done):
        print_log(f'skip training {config}: {done} exists', logger='current')
        return last_checkpoint(work_dir)
    cmd = [sys.executable, _tool('train.py'), config, '--work-dir', work_dir]
    if osp.isfile(osp.join(work_dir, 'last_checkpoint')):
        cmd.append('--resume')
    run_command(
        cmd + _cfg_options(cfg_options),
        osp.join(work_dir, 'stage.log'),
        echo=echo)
    ckpt = last_checkpoint(work_dir)
    write_bytes_atomic((ckpt + '\n').encode(), done)
    return ckpt


def config_fingerprint(config: str,
                       cfg_options: Optional[Sequence[str]] = None) -> str:
    """sha256 of the resolved config with its options (what a stage ran)."""
    cfg = _merged_config(config, cfg_options).to_dict()
    text = json.dumps(cfg, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


def check_stage_config(config: str, cfg_options: Optional[Sequence[str]],
                       work_dir: str) -> None:
    """Refuse a training folder made with another config; record it in a
    new one (``CONFIG_SHA``, written before the training starts)."""
    want = config_fingerprint(config, cfg_options)
    marker = osp.join(work_dir, 'CONFIG_SHA')
    fix = (f'Fix: delete {work_dir} (or the whole pipeline work dir) to '
           'train again, or give run_pipeline.py another --work-dir.')
    if osp.isfile(marker):
        with open(marker) as f:
            if f.read().strip() != want:
                raise SystemExit(
                    f'{work_dir} holds a training of another config than '
                    f'{config} with these options (the config or its '
                    f'_base_ files changed since). {fix}')
        return
    if osp.isfile(osp.join(work_dir, 'DONE')) or osp.isfile(
            osp.join(work_dir, 'last_checkpoint')):
        raise SystemExit(
            f'{work_dir} holds a training made without a config record (an '
            f'earlier p2seg_mm): it may not be one of {config}. {fix}')
    write_bytes_atomic((want + '\n').encode(), marker)


def export_stage(config: str,
                 checkpoint: str,
                 out_file: str,
                 cfg_options: Optional[Sequence[str]] = None,
                 work_dir: Optional[str] = None) -> str:
    """Export the MDM's pseudo-masks of the training split.

    ``work_dir`` (the tool's logs) defaults to the folder of ``out_file``,
    never the repository's ``work_dirs/``.
    """
    if osp.isfile(out_file):
        print_log(f'skip export: {out_file} exists', logger='current')
        return out_file
    work_dir = work_dir or osp.join(
        osp.dirname(osp.abspath(out_file)),
        osp.splitext(osp.basename(out_file))[0] + '_work')
    cmd = [
        sys.executable,
        _tool('export_pseudo_masks.py'), config, checkpoint, '--out',
        out_file, '--split', 'train', '--work-dir', work_dir
    ]
    run_command(cmd + _cfg_options(cfg_options),
                osp.splitext(out_file)[0] + '.log')
    return out_file


def test_stage(config: str, checkpoint: str, work_dir: str,
               cfg_options: Optional[Sequence[str]] = None) -> Dict:
    """Evaluate a trained model; return its metrics (cached as json)."""
    metrics_file = osp.join(work_dir, 'metrics.json')
    if osp.isfile(metrics_file):
        with open(metrics_file) as f:
            return json.load(f)
    cmd = [
        sys.executable,
        _tool('test.py'), config, checkpoint, '--work-dir', work_dir,
        '--out',
        osp.join(work_dir, 'predictions.pkl'), '--metrics-out', metrics_file
    ]
    run_command(cmd + _cfg_options(cfg_options),
                osp.join(work_dir, 'stage.log'))
    with open(metrics_file) as f:
        return json.load(f)


def options_dict(opts: Optional[Sequence[str]]) -> Dict:
    """``['a.b=1', ...]`` (``--cfg-options`` syntax) as a dict."""
    from mmengine.config import DictAction
    out = {}
    for item in opts or []:
        if '=' not in item:
            raise ValueError(f'config option {item!r} is not KEY=VALUE')
        key, val = item.split('=', 1)
        out[key] = DictAction._parse_iterable(val)
    return out


def _merged_config(config: str,
                   cfg_options: Optional[Sequence[str]] = None) -> Config:
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(options_dict(cfg_options))
    return cfg


def has_test_split(config: str,
                   cfg_options: Optional[Sequence[str]] = None) -> bool:
    """Whether ``config`` has a test dataloader and evaluator (what
    ``tools/test.py`` needs to score the model)."""
    cfg = _merged_config(config, cfg_options)
    return bool(cfg.get('test_dataloader')) and bool(
        cfg.get('test_evaluator'))


def test_decoding(config: str,
                  cfg_options: Optional[Sequence[str]] = None) -> str:
    """How an MDM config decodes new images, for the results table:
    ``'test-time I2S on'`` / ``'off'`` (``model.test_cfg.use_i2s``, the
    decoding's default when unset), plus ``', PAMR'`` when
    ``model.test_cfg.pamr`` is set and ``', geodesic split'`` with
    ``model.test_cfg.grouping='geodesic'``."""
    from p2seg_mm.models.seg_heads import DEFAULT_TEST_CFG
    test_cfg = _merged_config(config, cfg_options).model.get('test_cfg') or {}
    use_i2s = bool(test_cfg.get('use_i2s', DEFAULT_TEST_CFG['use_i2s']))
    pamr = test_cfg.get('pamr', DEFAULT_TEST_CFG['pamr']) is not None
    geodesic = test_cfg.get('grouping',
                            DEFAULT_TEST_CFG['grouping']) == 'geodesic'
    return 'test-time I2S ' + ('on' if use_i2s else 'off') + (
        ', PAMR' if pamr else '') + (', geodesic split' if geodesic else '')


def data_paths(config: str,
               cfg_options: Optional[Sequence[str]] = None) -> Dict:
    """Absolute paths of the train/val annotation files and folders.

    Returns:
        dict: ``<split>_ann``, ``<split>_img``, ``<split>_seg`` (if the
        dataset has a ``'seg'`` prefix), ``<split>_seg_suffix`` (the
        dataset's ``seg_map_suffix``, default '.png') and
        ``<split>_classes`` (``metainfo['classes']``, else the dataset
        class's, else None) for the splits 'train' and 'val' (the test
        dataloader's when there is no val one).
    """
    from p2seg_mm.datasets.config_checks import (dataset_classes,
                                                 split_datasets)
    cfg = _merged_config(config, cfg_options)
    out = {}
    for split in ('train', 'val'):
        found = list(split_datasets(cfg, [split])) or list(
            split_datasets(cfg, ['test']))
        if not found:
            continue
        ds = found[0][1]  # unwrapped (RepeatDataset & co.)
        out[f'{split}_seg_suffix'] = ds.get('seg_map_suffix', '.png')
        out[f'{split}_classes'] = dataset_classes(ds)
        root = ds.get('data_root', '') or ''
        out[f'{split}_ann'] = osp.abspath(osp.join(REPO, root,
                                                   ds['ann_file']))
        prefix = ds.get('data_prefix', {})
        out[f'{split}_img'] = osp.abspath(
            osp.join(REPO, root, prefix.get('img', '')))
        if 'seg' in prefix:
            out[f'{split}_seg'] = osp.abspath(
                osp.join(REPO, root, prefix['seg']))
    return out
