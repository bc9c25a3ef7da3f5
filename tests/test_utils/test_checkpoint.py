# Copyright (c) p2seg_mm contributors. All rights reserved.
"""torch >= 2.6 (weights_only=True) must load and resume our checkpoints."""
import io
import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.config import ConfigDict
from mmengine.dataset import BaseDataset
from mmengine.evaluator import BaseMetric
from mmengine.logging import HistoryBuffer
from mmengine.model import BaseModel
from mmengine.runner import Runner

import p2seg_mm  # noqa: F401  (registers the safe globals)
from p2seg_mm.utils import (get_checkpoint_safe_globals,
                            history_buffer_getattr,
                            register_checkpoint_safe_globals)

class ToyModel(BaseModel):
    """Linear regression with a BN layer (buffers in the state dict)."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 1)
        self.bn = nn.BatchNorm1d(1)

    def forward(self, inputs, labels, mode='tensor', **kwargs):
        out = self.bn(self.lin(inputs)).squeeze(-1)
        if mode == 'loss':
            return dict(loss=((out - labels)**2).mean())
        if mode == 'predict':
            return [dict(pred=o, gt=t) for o, t in zip(out, labels)]
        return out


class ToyDataset(BaseDataset):
    METAINFO = dict(classes=('toy', ))

    def load_data_list(self):
        return [
            dict(
                inputs=torch.tensor([float(i), 1.0]),
                labels=torch.tensor(float(i % 2))) for i in range(8)
        ]


class ToyMetric(BaseMetric):
    """Returns numpy scalars, which end up in the message hub."""

    def process(self, data_batch, data_samples):
        for sample in data_samples:
            self.results.append(float((sample['pred'] - sample['gt']).abs()))

    def compute_metrics(self, results):
        return dict(err=np.float64(np.mean(results)), n=np.int64(8))


def make_runner(work_dir, max_iters, **kwargs):
    # A nested dict in metainfo becomes a ConfigDict in the checkpoint.
    metainfo = ConfigDict(classes=('a', 'b'), extra=dict(k=1))
    loader = dict(
        dataset=ToyDataset(
            metainfo=metainfo, serialize_data=False, lazy_init=False),
        sampler=dict(type='DefaultSampler', shuffle=True),
        batch_size=2,
        collate_fn=dict(type='default_collate'))
    return Runner(
        model=ToyModel(),
        work_dir=str(work_dir),
        train_dataloader=loader,
        val_dataloader=loader,
        val_evaluator=[ToyMetric()],
        val_cfg=dict(),
        optim_wrapper=dict(
            optimizer=dict(type='SGD', lr=0.01, momentum=0.9)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters, val_interval=2),
        param_scheduler=[
            dict(type='LinearLR', by_epoch=False, begin=0, end=2)
        ],
        default_hooks=dict(
            checkpoint=dict(
                type='CheckpointHook',
                interval=2,
                by_epoch=False,
                save_best='err',
                rule='less')),
        default_scope='mmengine',
        randomness=dict(seed=0),
        experiment_name=f'toy_{os.path.basename(work_dir)}_{max_iters}',
        **kwargs)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('ckpt_train')
    runner = make_runner(work_dir, max_iters=2)
    runner.train()
    ckpt = work_dir / 'iter_2.pth'
    assert ckpt.is_file()
    return work_dir, ckpt


def test_plain_torch_load_fails_without_registration(trained):
    """A fresh interpreter without p2seg_mm refuses the checkpoint."""
    _, ckpt = trained
    code = ('import json, pickle, sys, torch\n'
            f'path = {str(ckpt)!r}\n'
            'unsafe = torch.serialization.get_unsafe_globals_in_checkpoint('
            'path)\n'
            'try:\n'
            '    torch.load(path)\n'
            'except pickle.UnpicklingError:\n'
            '    status = "REFUSED"\n'
            'else:\n'
            '    status = "LOADED"\n'
            'print(json.dumps([status, "p2seg_mm" in sys.modules, unsafe]))\n')
    out = subprocess.run([sys.executable, '-c', code],
                         capture_output=True,
                         text=True,
                         timeout=120,
                         check=True).stdout
    status, imported, unsafe = json.loads(out.splitlines()[-1])
    assert status == 'REFUSED' and imported is False
    # Exactly what the fix is about; if mmengine stops saving these, the
    # allow-list can shrink.
    assert 'mmengine.logging.history_buffer.HistoryBuffer' in unsafe
    assert 'mmengine.config.config.ConfigDict' in unsafe
    assert 'numpy._core.multiarray.scalar' in unsafe
    assert 'builtins.getattr' in unsafe
    allowed = {
        g[1] if isinstance(g, tuple) else f'{g.__module__}.{g.__qualname__}'
        for g in get_checkpoint_safe_globals()
    }
    assert set(unsafe) <= allowed


def test_torch_load_after_import(trained):
    _, ckpt = trained
    checkpoint = torch.load(str(ckpt), map_location='cpu')  # weights_only
    hub = checkpoint['message_hub']
    buffer = hub['log_scalars']['train/loss']
    assert isinstance(buffer, HistoryBuffer)
    assert len(buffer.data[0]) == 2
    assert np.isfinite(buffer.statistics('mean'))
    assert isinstance(hub['runtime_info']['best_score'], np.floating)
    extra = checkpoint['meta']['dataset_meta']['extra']
    assert isinstance(extra, ConfigDict) and extra.k == 1
    assert 'lin.weight' in checkpoint['state_dict']


def test_runner_resume(trained):
    """``--resume`` path: the runner continues from iteration 2."""
    src_dir, ckpt = trained
    work_dir = src_dir.parent / (src_dir.name + '_resumed')
    runner = make_runner(
        work_dir, max_iters=4, resume=True, load_from=str(ckpt))
    runner.train()
    assert runner.iter == 4
    loss_history = runner.message_hub.get_scalar('train/loss').data[0]
    assert len(loss_history) == 4  # 2 resumed + 2 new
    assert (work_dir / 'iter_4.pth').is_file()


def test_runner_auto_resume(trained):
    """``--resume`` without a path: latest checkpoint of the work dir."""
    src_dir, _ = trained
    runner = make_runner(src_dir, max_iters=3, resume=True)
    runner.train()
    assert runner.iter == 3


def test_restricted_getattr():
    assert history_buffer_getattr(HistoryBuffer, 'mean') is HistoryBuffer.mean
    with pytest.raises(pickle.UnpicklingError, match='__init__'):
        history_buffer_getattr(HistoryBuffer, '__init__')
    with pytest.raises(pickle.UnpicklingError, match='only allows'):
        history_buffer_getattr(os, 'system')


def test_arbitrary_objects_still_refused():
    """Object arrays and other classes stay blocked under weights_only."""
    buf = io.BytesIO()
    torch.save(dict(a=np.array([{}, 1], dtype=object)), buf)
    buf.seek(0)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(buf)

    buf = io.BytesIO()
    torch.save(dict(model=ToyModel()), buf)
    buf.seek(0)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(buf)


def test_numpy_values_round_trip():
    values = dict(
        f32=np.float32(1.5),
        i64=np.int64(-3),
        b=np.bool_(True),
        arr=np.arange(6, dtype=np.uint16).reshape(2, 3),
        strs=np.array(['x', 'yz']))
    buf = io.BytesIO()
    torch.save(values, buf)
    buf.seek(0)
    loaded = torch.load(buf)
    for key, value in values.items():
        assert loaded[key].dtype == value.dtype
        np.testing.assert_array_equal(loaded[key], value)


def test_registration_idempotent_and_listed():
    assert register_checkpoint_safe_globals() is True
    assert register_checkpoint_safe_globals() is True
    names = {
        g[1] if isinstance(g, tuple) else f'{g.__module__}.{g.__qualname__}'
        for g in get_checkpoint_safe_globals()
    }
    for name in ('numpy.ndarray', 'numpy._core.multiarray._reconstruct',
                 'numpy.core.multiarray.scalar', 'builtins.getattr',
                 'mmengine.config.config.ConfigDict',
                 'mmengine.logging.history_buffer.HistoryBuffer'):
        assert name in names
    assert 'numpy.dtypes.ObjectDType' not in names
