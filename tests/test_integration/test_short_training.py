# Copyright (c) p2seg_mm contributors. All rights reserved.
"""A short training run of the demo config lowers every P2Seg loss.

Done-criterion of the "MDM network" issue: the mmengine ``Runner`` is built
from ``configs/p2seg/p2seg_r18_demo-cells.py`` (model, optimiser, runtime),
with the data swapped for a fabricated 4-image point dataset, a deterministic
pipeline (no random crop / flip / photometric noise, so the curves are not
noisy), a constant learning rate of 1e-3 (the demo's peak rate), the centre
loss switched on (weight 1; the demo has 0) and no validation. A hook records
every loss of every iteration; each must stay finite and its mean over the last
10 iterations must be below that over the first 10.
"""
import math
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO_CONFIG = osp.join(REPO, 'configs', 'p2seg', 'p2seg_r18_demo-cells.py')
MAX_ITERS = 50
WINDOW = 10
# The last-10 mean must be at most this share of the first-10 mean (all
# losses reach <= 0.83 with the seeds here; 0.95 leaves room for numerics).
MAX_RATIO = 0.95
# Loss weight of the centre heatmap in this test; the demo config has 0
# (VOC setting, no centre loss), which would make loss_center constant 0.
CENTER_WEIGHT = 1.0
EXPECTED_LOSSES = ('loss_sem_seg', 'loss_center', 'loss_offset_static',
                   'loss_offset_online', 'loss_affinity_sem',
                   'loss_affinity_inst')


class LossRecorder(Hook):
    """Keep every ``loss*`` value the train step returns, per iteration."""

    priority = 'LOWEST'

    def __init__(self):
        self.history = []

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None):
        self.history.append({
            key: float(torch.as_tensor(value).detach())
            for key, value in (outputs or {}).items() if key.startswith('loss')
        })


def _deterministic_pipeline(num_classes):
    """Load, S2I targets, pack: every iteration sees the same tensors."""
    return [
        dict(type='LoadImageFromFile'),
        dict(
            type='LoadP2SegAnnotations',
            with_seg=True,
            num_classes=num_classes),
        # 64 x 80 -> 64 x 96: exercises the point-aware padding (ignore 255).
        dict(
            type='PointPad',
            size=(64, 96),
            pad_val=dict(img=(104, 116, 124), seg=255)),
        dict(
            type='GenerateS2ITargets',
            num_classes=num_classes,
            sigma=6,
            min_area=50,
            dis_group=True),
        dict(type='PackP2SegInputs'),
    ]


def build_short_run_cfg(data_root,
                        work_dir,
                        max_iters=MAX_ITERS,
                        augment=False):
    """The demo config with the fabricated data and a short schedule.

    Args:
        data_root (str): Folder made by ``make_point_dataset``.
        work_dir (str): Runner work dir.
        max_iters (int): Training iterations. Defaults to ``MAX_ITERS``.
        augment (bool): Keep the demo config's random training pipeline
            (resize, 256 x 256 crop, flip, photometric) instead of the
            deterministic one. Defaults to False.
    """
    cfg = Config.fromfile(DEMO_CONFIG)
    num_classes = cfg.model.semantic_head.num_classes
    cfg.work_dir = str(work_dir)
    cfg.model.center_offset_head.loss_center_weight = CENTER_WEIGHT
    dataset = cfg.train_dataloader.dataset
    dataset.data_root = str(data_root)
    if not augment:
        dataset.pipeline = _deterministic_pipeline(num_classes)
    cfg.train_dataloader.update(
        batch_size=2,
        num_workers=0,
        persistent_workers=False,
        # No epochs: mmengine sleeps 2 s at every epoch end of an
        # iteration-based loop, i.e. every 2 iterations with 4 images.
        sampler=dict(type='InfiniteSampler', shuffle=False))
    for key in ('val_dataloader', 'val_cfg', 'val_evaluator',
                'test_dataloader', 'test_cfg', 'test_evaluator'):
        cfg[key] = None
    cfg.train_cfg = dict(
        type='IterBasedTrainLoop',
        max_iters=max_iters,
        val_interval=max_iters + 1)
    # Constant learning rate: the demo warm-up (50 iterations from 0.1 %)
    # would spend the whole run at a near-zero rate.
    cfg.param_scheduler = None
    # The demo's peak rate: every loss falls to <= 0.83 of its start within
    # 50 iterations (3e-3 made the GroupNorm demo net's affinity bounce).
    cfg.optim_wrapper.optimizer.lr = 1e-3
    cfg.default_hooks.checkpoint = None
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=10)
    cfg.default_hooks.pop('visualization', None)
    cfg.randomness = dict(seed=0)
    cfg.env_cfg = dict(
        cudnn_benchmark=False,
        mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
        dist_cfg=dict(backend='gloo'))
    cfg.launcher = 'none'
    return cfg


def train_and_record(cfg):
    """Build the Runner from ``cfg``, train, return the per-iter losses."""
    threads = torch.get_num_threads()
    # One thread: on a small, shared CPU more threads only contend.
    torch.set_num_threads(1)
    try:
        runner = Runner.from_cfg(cfg)
        recorder = LossRecorder()
        runner.register_hook(recorder)
        runner.train()
    finally:
        torch.set_num_threads(threads)
    return recorder.history


@pytest.fixture(scope='module')
def loss_history(point_dataset, tmp_path_factory):
    """Train the demo network for ``MAX_ITERS`` iterations on the CPU."""
    work_dir = tmp_path_factory.mktemp('short_training')
    return train_and_record(
        build_short_run_cfg(point_dataset['root'], work_dir))


def test_demo_augmentation_pipeline_trains(point_dataset, tmp_path):
    """The demo config's own random pipeline (crop 256 of the upscaled
    64 x 80 images, padding, flip) feeds the model: all losses finite."""
    cfg = build_short_run_cfg(
        point_dataset['root'], tmp_path, max_iters=3, augment=True)
    types = [step['type'] for step in cfg.train_dataloader.dataset.pipeline]
    assert 'PointRandomCrop' in types and 'PointRandomFlip' in types
    history = train_and_record(cfg)
    assert len(history) == 3
    for step in history:
        assert set(EXPECTED_LOSSES) <= set(step), sorted(step)
        assert all(math.isfinite(v) for v in step.values()), step


def test_every_iteration_is_recorded(loss_history):
    assert len(loss_history) == MAX_ITERS


@pytest.mark.parametrize('name', EXPECTED_LOSSES)
def test_loss_is_present_and_finite(loss_history, name):
    values = [step.get(name) for step in loss_history]
    missing = [i for i, v in enumerate(values) if v is None]
    assert not missing, f'{name} missing at iterations {missing[:10]}'
    bad = [(i, v) for i, v in enumerate(values) if not math.isfinite(v)]
    assert not bad, f'{name} not finite at (iteration, value) {bad[:10]}'


@pytest.mark.parametrize('name', EXPECTED_LOSSES)
def test_loss_decreases(loss_history, name):
    values = np.array([step[name] for step in loss_history])
    first, last = values[:WINDOW].mean(), values[-WINDOW:].mean()
    assert first > 0, f'{name} is {first} at the start: nothing to learn'
    assert last < MAX_RATIO * first, (
        f'{name}: mean of the last {WINDOW} iterations {last:.6g} is not '
        f'below {MAX_RATIO} x that of the first {WINDOW} {first:.6g}; curve: '
        f'{np.round(values, 6).tolist()}')


def test_total_loss_decreases(loss_history):
    values = np.array([step['loss'] for step in loss_history])
    assert np.isfinite(values).all()
    assert values[-WINDOW:].mean() < 0.8 * values[:WINDOW].mean(), (
        f'total loss barely moved: {np.round(values, 4).tolist()}')
