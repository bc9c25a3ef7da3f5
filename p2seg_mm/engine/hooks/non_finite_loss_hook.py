# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Stop (or skip) a training iteration whose loss is NaN or infinite."""
import logging
from typing import List, Optional, Sequence

import torch
from mmengine.dist import get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from mmdet.registry import HOOKS


class NonFiniteLossError(FloatingPointError):
    """A training loss was NaN or infinite (iteration and images named)."""


def _batch_image_ids(data_batch) -> List:
    """``img_id`` (else ``img_path``) of every sample of a batch."""
    samples = (data_batch or {}).get('data_samples') or []
    if isinstance(samples, dict):  # collated dicts: dict of lists
        ids = samples.get('img_id', samples.get('img_path', []))
        return [v.item() if hasattr(v, 'item') else v for v in ids]
    out = []
    for sample in samples:
        meta = sample.metainfo if hasattr(sample, 'metainfo') else sample
        out.append(meta.get('img_id', meta.get('img_path')))
    return out


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Check every training loss **before** the optimizer step.

    The model's ``parse_losses`` is wrapped: when the total loss or any
    ``loss*`` term is NaN or infinite, training stops with
    :class:`NonFiniteLossError` naming the iteration, the non-finite terms
    and the image ids of the batch (``action='stop'``), or the iteration is
    skipped with a warning (``action='skip'``: the loss becomes a zero
    without gradient, so the optimizer does not move; after
    ``max_skips`` skipped iterations in a row training stops anyway).
    Nothing ever trains on NaN: mmdet's ``CheckInvalidLossHook`` only looks
    after the step, every 50 iterations, and names no image.

    ``tools/train.py`` adds ``dict(type='NonFiniteLossHook')`` to
    ``custom_hooks`` unless the config has one; to skip instead, add
    ``custom_hooks = [dict(type='NonFiniteLossHook', action='skip')]``.
    Skipping needs a single process (in distributed training the ranks
    would disagree on the backward pass): there it stops.

    Args:
        action (str): 'stop' or 'skip'. Defaults to 'stop'.
        max_skips (int): Consecutive skipped iterations before stopping
            anyway. Defaults to 10.
    """

    priority = 'VERY_HIGH'

    def __init__(self, action: str = 'stop', max_skips: int = 10) -> None:
        if action not in ('stop', 'skip'):
            raise ValueError(
                f"NonFiniteLossHook: action must be 'stop' or 'skip', got "
                f'{action!r}.')
        self.action = action
        self.max_skips = max_skips
        self._batch_ids: List = []
        self._iter = 0
        self._skips = 0

    def before_train(self, runner) -> None:
        """Wrap the model's ``parse_losses``."""
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        if getattr(model, '_p2seg_nonfinite_checked', False):
            return
        parse_losses = model.parse_losses

        def checked_parse_losses(losses):
            loss, log_vars = parse_losses(losses)
            return self._check(loss, log_vars), log_vars

        model.parse_losses = checked_parse_losses
        model._p2seg_nonfinite_checked = True

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch: Optional[dict] = None) -> None:
        """Remember the iteration and the image ids of the batch."""
        self._iter = runner.iter + 1
        self._batch_ids = _batch_image_ids(data_batch)

    def _check(self, loss: torch.Tensor, log_vars: dict) -> torch.Tensor:
        """Return ``loss`` if finite; else stop or skip (see class)."""
        if torch.isfinite(loss).all():
            self._skips = 0
            return loss
        bad = _non_finite_terms(log_vars)
        what = (f'non-finite loss at iteration {self._iter} ({bad}); '
                f'image ids of the batch: {self._batch_ids}')
        if self.action == 'skip' and get_world_size() == 1 \
                and self._skips < self.max_skips:
            self._skips += 1
            print_log(f'NonFiniteLossHook: {what}: iteration skipped '
                      f'({self._skips} in a row).', logger='current',
                      level=logging.WARNING)
            return torch.zeros((), device=loss.device, requires_grad=True)
        raise NonFiniteLossError(
            f'{what}. Training stopped before the optimizer step, so the '
            'weights are not NaN. Fix: check these images with '
            'tools/analysis_tools/check_dataset.py, lower the learning rate '
            'or use gradient clipping (optim_wrapper.clip_grad); to skip '
            "such iterations instead: custom_hooks = [dict(type="
            "'NonFiniteLossHook', action='skip')].")


def _non_finite_terms(log_vars: dict) -> Sequence[str]:
    """``name=value`` of every non-finite logged value."""
    out = []
    for name, value in log_vars.items():
        value = torch.as_tensor(value)
        if not torch.isfinite(value).all():
            out.append(f'{name}={value.float().mean().item()}')
    return out
