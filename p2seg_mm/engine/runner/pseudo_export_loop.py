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
        if isinstance(dataloader, dict):
            dataloader = self._pending(dataloader, dumper['out_file'],
                                       dumper.get('resume', True))
        self.call_hooks = call_hooks
        super().__init__(runner, dataloader, evaluator, fp16)
        if self.num_done:
            runner.logger.info(
                f'{dumper["out_file"]}: resuming, {self.num_done} images '
                f'done, {len(self.dataloader.dataset)} left.')

    def _pending(self, dataloader: dict, out_file: str,
                 resume: bool) -> Union[dict, DataLoader]:
        """The dataloader config with its dataset built and subset (an
        empty plain DataLoader when every image is done: samplers cannot
        shard an empty dataset)."""
        dataloader = copy.copy(dataloader)
        dataset = dataloader['dataset']
        if isinstance(dataset, dict):
            dataset = DATASETS.build(dataset)
        if hasattr(dataset, 'full_init'):
            dataset.full_init()
        done = [load_done_image_ids(out_file)
                if resume and get_rank() == 0 else set()]
        broadcast_object_list(done)
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
            return super().run()
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
        return self.evaluator.evaluate(len(self.dataloader.dataset))

