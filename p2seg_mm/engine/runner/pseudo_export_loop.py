# Copyright (c) p2seg_mm contributors. All rights reserved.
"""The one resumable pseudo-mask export (P2Seg stage B).

``PseudoMaskExportLoop`` is mmengine's ``TestLoop`` over the images that the
sidecars of an interrupted export (``PseudoMaskDumper``) do not hold yet:
rank 0 reads the sidecars, every rank gets the same list (broadcast) and
shards what is left. When nothing is left it predicts nothing and the
dumper only merges. Used by ``tools/export_pseudo_masks.py`` (as
``test_cfg``) and by ``PseudoMaskExportHook`` (after training).
"""
import copy
import json
import os
import os.path as osp
from typing import Dict, List, Optional, Union

import torch
from mmengine.dataset import pseudo_collate
from mmengine.dist import broadcast_object_list, get_rank, is_main_process
from mmengine.evaluator import Evaluator
from mmengine.runner import TestLoop
from mmengine.utils import ProgressBar
from torch.utils.data import DataLoader

from mmdet.registry import DATASETS, LOOPS
from ...evaluation.metrics.pseudo_mask_dumper import load_done_image_ids
from ...utils.atomic_io import dump_json_atomic


def _dumper_cfg(evaluator: Union[Evaluator, Dict, List]) -> Optional[dict]:
    """The ``PseudoMaskDumper`` entry of an evaluator config, if any."""
    if isinstance(evaluator, Evaluator):
        metrics = [vars(m) for m in evaluator.metrics
                   if type(m).__name__ == 'PseudoMaskDumper']
        return metrics[0] if metrics else None
    for entry in evaluator if isinstance(evaluator, list) else [evaluator]:
        if str(entry.get('type', '')).split('.')[-1] == 'PseudoMaskDumper':
            return entry
    return None


def settings_path(out_file: str) -> str:
    """Where an unfinished export keeps the settings it was made with."""
    return f'{out_file}.partial.settings.json'


def export_settings(runner, dumper: dict) -> dict:
    """What must not change between an interrupted export and its resume:
    the checkpoint (path, size, mtime) or training iteration, the model's
    ``test_cfg`` and the dumper's score threshold."""
    cfg = getattr(runner, 'cfg', None) or {}
    ckpt = cfg.get('load_from')
    stamp = None
    if ckpt and osp.isfile(ckpt):
        info = os.stat(ckpt)
        stamp = [osp.abspath(ckpt), info.st_size, int(info.st_mtime)]
    test_cfg = (cfg.get('model') or {}).get('test_cfg') or {}
    if hasattr(test_cfg, 'to_dict'):
        test_cfg = test_cfg.to_dict()
    return json.loads(json.dumps(dict(
        checkpoint=stamp or ckpt,
        iteration=getattr(runner, 'iter', None) if not ckpt else None,
        test_cfg=test_cfg,
        score_thr=dumper.get('score_thr', 0.0)), default=str))


def check_settings(path: str, settings: dict, resuming: bool) -> None:
    """Refuse to resume an export made with other settings; record them.

    Raises:
        ValueError: ``resuming`` and the recorded settings differ.
    """
    if resuming and osp.exists(path):
        with open(path, encoding='utf-8') as f:
            before = json.load(f)
        changed = sorted(k for k in set(before) | set(settings)
                         if before.get(k) != settings.get(k))
        if changed:
            raise ValueError(
                f'{path}: the interrupted export was made with other '
                f'{", ".join(changed)} ({ {k: before.get(k) for k in changed} }'
                f' now { {k: settings.get(k) for k in changed} }); resuming '
                'would mix both in one json. Fix: rerun with the earlier '
                'settings, or start over (--no-resume / resume=False, or '
                'delete the .partial files).')
    dump_json_atomic(settings, path)


def pending_indices(dataset, done_image_ids: set) -> List[int]:
    """Indices of ``dataset`` whose ``img_id`` is not in ``done_image_ids``.

    Args:
        dataset: A fully initialised mmengine dataset.
        done_image_ids (set): Image ids already exported.

    Returns:
        list[int]: Positions to keep (``dataset.get_subset_``).
    """
    return [
        i for i in range(len(dataset))
        if dataset.get_data_info(i)['img_id'] not in done_image_ids
    ]


@LOOPS.register_module()
class PseudoMaskExportLoop(TestLoop):
    """``TestLoop`` that resumes an interrupted pseudo-mask export.

    Args:
        runner (Runner): The runner.
        dataloader (dict or DataLoader): Dataloader config (its dataset is
            built here and reduced to the pending images) or a built one
            (exported as it is).
        evaluator (dict, list or Evaluator): Must hold one
            ``PseudoMaskDumper``; its ``out_file`` and ``resume`` decide
            what is pending (nothing is skipped with ``resume=False``).
        fp16 (bool): Autocast the predictions. Defaults to False.
        call_hooks (bool): Call the runner's test hooks, as ``TestLoop``
            does; False (used inside training by the hook) shows a
            progress bar instead and leaves the test hooks alone.
            Defaults to True.

    Raises:
        ValueError: The evaluator has no ``PseudoMaskDumper``.
    """

    def __init__(self,
                 runner,
                 dataloader: Union[DataLoader, Dict],
                 evaluator: Union[Evaluator, Dict, List],
                 fp16: bool = False,
                 call_hooks: bool = True) -> None:
        dumper = _dumper_cfg(evaluator)
        if dumper is None:
            raise ValueError(
                'PseudoMaskExportLoop writes pseudo-masks: its evaluator '
                'must hold a PseudoMaskDumper (test_evaluator=dict(type='
                '"PseudoMaskDumper", out_file=...)).')
        self.num_done = 0
        self.settings_file = settings_path(dumper['out_file'])
        if isinstance(dataloader, dict):
            dataloader = self._pending(dataloader, dumper['out_file'],
                                       dumper.get('resume', True),
                                       export_settings(runner, dumper))
        self.call_hooks = call_hooks
        super().__init__(runner, dataloader, evaluator, fp16)
        if self.num_done:
            runner.logger.info(
                f'{dumper["out_file"]}: resuming, {self.num_done} images '
                f'done, {len(self.dataloader.dataset)} left.')

    def _pending(self, dataloader: dict, out_file: str, resume: bool,
                 settings: dict) -> Union[dict, DataLoader]:
        """The dataloader config with its dataset built and subset (an
        empty plain DataLoader when every image is done: samplers cannot
        shard an empty dataset).

        Raises:
            ValueError: The interrupted export was made with other
                settings (checkpoint, ``model.test_cfg``, score threshold):
                its images would be mixed with this run's.
        """
        dataloader = copy.copy(dataloader)
        dataset = dataloader['dataset']
        if isinstance(dataset, dict):
            dataset = DATASETS.build(dataset)
        if hasattr(dataset, 'full_init'):
            dataset.full_init()
        done = [load_done_image_ids(out_file)
                if resume and get_rank() == 0 else set()]
        broadcast_object_list(done)
        if get_rank() == 0:
            check_settings(self.settings_file, settings, bool(done[0]))
        if done[0]:
            dataset.get_subset_(pending_indices(dataset, done[0]))
            self.num_done = len(done[0])
            if len(dataset) == 0:
                return DataLoader(dataset, collate_fn=pseudo_collate)
        dataloader['dataset'] = dataset
        return dataloader

    def run(self) -> dict:
        """Predict the pending images; the dumper merges and writes."""
        if self.call_hooks:
            return self._finish(super().run())
        model = self.runner.model
        was_training = model.training
        model.eval()
        bar = ProgressBar(len(self.dataloader)) \
            if is_main_process() and len(self.dataloader) else None
        try:
            for data_batch in self.dataloader:
                with torch.no_grad():
                    outputs = model.test_step(data_batch)
                self.evaluator.process(
                    data_samples=outputs, data_batch=data_batch)
                if bar is not None:
                    bar.update()
        finally:
            model.train(was_training)
        return self._finish(
            self.evaluator.evaluate(len(self.dataloader.dataset)))

    def _finish(self, metrics: dict) -> dict:
        """The json is written: the settings of the partial run go too."""
        if is_main_process() and osp.exists(self.settings_file):
            os.remove(self.settings_file)
        return metrics

