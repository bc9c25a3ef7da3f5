# Copyright (c) p2seg_mm contributors. All rights reserved.
"""BatchSizeCheckHook: warn once when world size x batch size differs from
the schedule's base batch (auto_scale_lr.base_batch_size)."""
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import List, Optional

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import DataLoader, Dataset

from p2seg_mm.engine.hooks import BatchSizeCheckHook

REPO = Path(__file__).resolve().parents[3]


class _Records(logging.Handler):
    """Collect the records of one logger."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: List[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def warnings(self) -> List[str]:
        return [
            r.getMessage() for r in self.records
            if r.levelno == logging.WARNING
        ]


@pytest.fixture
def logger():
    logger = MMLogger.get_instance('test_batch_size_check_hook')
    handler = _Records()
    logger.addHandler(handler)
    yield logger, handler
    logger.removeHandler(handler)


def _fake_runner(logger,
                 batch_size: int,
                 world_size: int = 1,
                 auto_scale_lr: Optional[dict] = None):
    return SimpleNamespace(
        logger=logger,
        world_size=world_size,
        auto_scale_lr=auto_scale_lr,
        cfg=Config(dict(), filename='configs/p2seg/p2seg_r50_voc.py'),
        train_dataloader=DataLoader(list(range(16)), batch_size=batch_size))


def test_warns_on_mismatch_with_both_numbers_and_fix(logger):
    logger, records = logger
    runner = _fake_runner(
        logger, 1, auto_scale_lr=dict(enable=False, base_batch_size=8))
    BatchSizeCheckHook().before_train(runner)
    [message] = records.warnings()
    assert 'Total batch size 1' in message
    assert 'base batch size 8' in message
    assert ('python tools/train.py configs/p2seg/p2seg_r50_voc.py '
            '--cfg-options train_dataloader.batch_size=8') in message
    assert '--auto-scale-lr' in message


def test_per_process_fix_with_several_processes(logger):
    logger, records = logger
    runner = _fake_runner(
        logger,
        1,
        world_size=4,
        auto_scale_lr=dict(enable=False, base_batch_size=8))
    BatchSizeCheckHook().before_train(runner)
    [message] = records.warnings()
    assert 'Total batch size 4 (4 process(es) x 1 per process)' in message
    assert 'train_dataloader.batch_size=2' in message


@pytest.mark.parametrize('batch_size, world_size', [(1, 8), (8, 1), (2, 4)])
def test_silent_on_match(logger, batch_size, world_size):
    logger, records = logger
    runner = _fake_runner(
        logger,
        batch_size,
        world_size=world_size,
        auto_scale_lr=dict(enable=False, base_batch_size=8))
    BatchSizeCheckHook().before_train(runner)
    assert records.warnings() == []


@pytest.mark.parametrize('auto_scale_lr',
                         [None, dict(enable=True, base_batch_size=8)])
def test_silent_without_base_or_when_lr_is_scaled(logger, auto_scale_lr):
    logger, records = logger
    runner = _fake_runner(logger, 1, auto_scale_lr=auto_scale_lr)
    BatchSizeCheckHook().before_train(runner)
    assert records.warnings() == []


def test_explicit_base_batch_size(logger):
    logger, records = logger
    runner = _fake_runner(logger, 4)
    BatchSizeCheckHook(base_batch_size=4).before_train(runner)
    assert records.warnings() == []
    BatchSizeCheckHook(base_batch_size=16).before_train(runner)
    assert len(records.warnings()) == 1


class _ToyDataset(Dataset):

    def __len__(self) -> int:
        return 8

    def __getitem__(self, index: int) -> dict:
        return dict(inputs=torch.full((2, ), float(index)))


class _ToyModel(BaseModel):

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(2, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.linear(
            torch.stack(inputs) if isinstance(inputs, list) else inputs)
        if mode == 'loss':
            return dict(loss=out.pow(2).mean())
        return out


@pytest.mark.parametrize('batch_size, expected', [(1, 1), (8, 0)])
def test_warns_once_in_a_real_training_run(tmp_path, batch_size, expected):
    runner = Runner(
        model=_ToyModel(),
        work_dir=str(tmp_path),
        train_dataloader=dict(
            dataset=_ToyDataset(),
            sampler=dict(type='InfiniteSampler', shuffle=False),
            collate_fn=dict(type='default_collate'),
            batch_size=batch_size,
            num_workers=0),
        train_cfg=dict(by_epoch=False, max_iters=3),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        auto_scale_lr=dict(enable=False, base_batch_size=8),
        custom_hooks=[BatchSizeCheckHook()],
        default_hooks=dict(checkpoint=None),
        experiment_name=f'batch_size_check_{batch_size}_{tmp_path.name}')
    handler = _Records()
    runner.logger.addHandler(handler)
    try:
        runner.train()
    finally:
        runner.logger.removeHandler(handler)
    warnings = [w for w in handler.warnings() if 'base batch size' in w]
    assert len(warnings) == expected


def test_runtime_and_stage_a_configs_add_the_hook():
    runtime = Config.fromfile(
        str(REPO / 'configs' / '_base_' / 'default_runtime.py'))
    assert dict(type='BatchSizeCheckHook') in runtime.custom_hooks
    for name in ('p2seg_r50_voc.py', 'p2seg_r101_voc.py',
                 'p2seg_hrnet48_voc.py', 'p2seg_hrnet48_coco.py'):
        cfg = Config.fromfile(str(REPO / 'configs' / 'p2seg' / name))
        assert [h.type for h in cfg.custom_hooks
                ].count('BatchSizeCheckHook') == 1, name
        # the paper configs run 1 image per process for 8 processes
        assert cfg.train_dataloader.batch_size == 1
        assert cfg.auto_scale_lr.base_batch_size == 8
