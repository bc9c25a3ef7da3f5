# Copyright (c) p2seg_mm contributors. All rights reserved.
"""NonFiniteLossHook: never train on NaN silently (issue #10)."""
import pytest
import torch
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset

from p2seg_mm.engine import NonFiniteLossError, NonFiniteLossHook

BAD_ID = 12


class ToyData(Dataset):
    """Images 10..15; image ``BAD_ID`` makes the loss NaN."""

    def __len__(self):
        return 6

    def __getitem__(self, idx):
        return dict(inputs=torch.ones(2), data_samples=dict(img_id=10 + idx))


class ToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(2, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = self.fc(torch.stack(inputs)).sum()
        if BAD_ID in list(data_samples['img_id']):
            out = out * float('nan')
        return dict(loss_toy=out)


def _train(tmp_path, hooks, max_iters=3):
    runner = Runner(
        model=ToyModel(),
        work_dir=str(tmp_path),
        train_dataloader=dict(
            dataset=ToyData(),
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=2,
            num_workers=0),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        custom_hooks=hooks,
        default_hooks=dict(checkpoint=None),
        experiment_name=f'nonfinite_{id(hooks)}',
        log_level='WARNING')
    return runner


def test_stop_names_iteration_and_images_before_the_step(tmp_path):
    runner = _train(tmp_path, [NonFiniteLossHook()])
    with pytest.raises(NonFiniteLossError) as err:
        runner.train()
    msg = str(err.value)
    # batches [10, 11], [12, 13]: the second iteration is bad
    assert 'iteration 2' in msg and '[12, 13]' in msg
    assert 'loss_toy=nan' in msg and 'Fix' in msg
    for param in runner.model.parameters():  # no step was taken on NaN
        assert torch.isfinite(param).all()


class WeightRecorder(Hook):
    priority = 'LOWEST'

    def __init__(self):
        self.weights = []

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.weights.append(runner.model.fc.weight.detach().clone())


def test_skip_leaves_the_weights_untouched(tmp_path, caplog):
    recorder = WeightRecorder()
    runner = _train(tmp_path, [NonFiniteLossHook(action='skip'), recorder])
    runner.train()
    first, skipped, third = recorder.weights
    assert torch.isfinite(third).all()
    torch.testing.assert_close(skipped, first)  # iteration 2 skipped
    assert not torch.equal(third, skipped)  # training goes on


def test_bad_action():
    with pytest.raises(ValueError, match='stop'):
        NonFiniteLossHook(action='ignore')


def test_train_tool_adds_the_hook_once():
    from mmengine.config import Config

    from tests.tool_loader import load_tool
    tool = load_tool('tools/train.py')
    cfg = Config(dict(custom_hooks=[dict(type='EMAHook')]))
    tool.add_non_finite_loss_hook(cfg)
    assert [h['type'] for h in cfg.custom_hooks] == ['EMAHook',
                                                     'NonFiniteLossHook']
    cfg = Config(dict(custom_hooks=[dict(type='NonFiniteLossHook',
                                         action='skip')]))
    tool.add_non_finite_loss_hook(cfg)
    assert len(cfg.custom_hooks) == 1
