# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Warn when the total batch size differs from the schedule's base batch."""
from typing import Optional

from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmdet.registry import HOOKS


@HOOKS.register_module()
class BatchSizeCheckHook(Hook):
    """Warn once, before training, when world size x batch size per process
    differs from the batch size the schedule was set for.

    The paper configs train with 1 image per process on 8 GPUs (the
    release) and set ``auto_scale_lr.base_batch_size = 8``. Started on one
    GPU they would otherwise train 50k iterations at batch 1 without a word.
    The warning names both numbers and the two fixes: the batch size per
    process that restores the base batch
    (``--cfg-options train_dataloader.batch_size=N``), or ``--auto-scale-lr``
    (mmengine then scales the learning rate linearly; the number of
    iterations stays). Nothing is logged when the sizes match, when
    ``auto_scale_lr.enable`` is True (mmengine logs the scaling itself) or
    when there is no base batch size.

    Args:
        base_batch_size (int, optional): The schedule's total batch size.
            None reads ``auto_scale_lr.base_batch_size`` of the runner.
            Defaults to None.
    """

    priority = 'VERY_LOW'

    def __init__(self, base_batch_size: Optional[int] = None) -> None:
        self.base_batch_size = base_batch_size

    def before_train(self, runner: Runner) -> None:
        """Compare the total batch size with the base batch size.

        Args:
            runner (Runner): The runner of the training process.
        """
        auto_scale_lr = runner.auto_scale_lr or {}
        if auto_scale_lr.get('enable', False):
            return
        base = self.base_batch_size
        if base is None:
            base = auto_scale_lr.get('base_batch_size')
        batch_size = self._batch_size_per_process(runner)
        if base is None or batch_size is None:
            return
        world_size = runner.world_size
        total = world_size * batch_size
        if total == base:
            return
        config = getattr(runner.cfg, 'filename', None) or 'CONFIG'
        if base % world_size == 0:
            per_process = base // world_size
            fix = (f'train at the base batch with --cfg-options '
                   f'train_dataloader.batch_size={per_process}')
            if world_size == 1:
                fix += (f' (one GPU: python tools/train.py {config} '
                        f'--cfg-options train_dataloader.batch_size={base})')
        else:
            fix = ('train at the base batch by setting '
                   'train_dataloader.batch_size x the number of processes '
                   f'to {base}')
        runner.logger.warning(
            f'Total batch size {total} ({world_size} process(es) x '
            f'{batch_size} per process) differs from the schedule\'s base '
            f'batch size {base} (auto_scale_lr.base_batch_size): the '
            'learning rate and the number of iterations were set for '
            f'{base}. Either {fix}, or add --auto-scale-lr to scale the '
            f'learning rate by {total}/{base} (the number of iterations '
            'stays).')

    @staticmethod
    def _batch_size_per_process(runner: Runner) -> Optional[int]:
        """Batch size of the built train dataloader (or its batch sampler).

        Args:
            runner (Runner): The runner of the training process.

        Returns:
            int, optional: Images per process and iteration; None if unknown.
        """
        dataloader = runner.train_dataloader
        batch_size = getattr(dataloader, 'batch_size', None)
        if batch_size is None:
            batch_sampler = getattr(dataloader, 'batch_sampler', None)
            batch_size = getattr(batch_sampler, 'batch_size', None)
        return batch_size
