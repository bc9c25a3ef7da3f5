# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Export pseudo-masks of the training images from inside training."""
import copy
import os.path as osp
import shutil
from typing import Optional, Sequence

import torch
from mmengine.dist import broadcast_object_list, is_main_process
from mmengine.evaluator import Evaluator
from mmengine.hooks import Hook
from mmengine.utils import ProgressBar

from mmdet.registry import DATASETS, HOOKS
from ...evaluation.metrics.pseudo_mask_dumper import (PseudoMaskDumper,
                                                       load_done_image_ids)
from ..pseudo_export import (export_dataloader_cfg, export_dataset_cfg,
                             pending_indices)


@HOOKS.register_module()
class PseudoMaskExportHook(Hook):
    """Run the model over a dataset and write its masks as a COCO json of
    pseudo-labels (`P2Seg <https://arxiv.org/abs/2401.09709>`_ stage B).

    The export runs after training (``after_train``) and, if ``interval`` is
    given, every ``interval`` training iterations (to
    ``<stem>_iter<N>.json``, never resumed since the model changed). The
    model runs in eval mode under ``torch.no_grad`` and is put back in
    training mode afterwards. Each rank predicts its shard (default
    sampler); ``PseudoMaskDumper.evaluate`` gathers the results and the main
    process writes the json. With ``resume``, the final export skips the
    images already in the sidecar of an interrupted export.

    Args:
        out_file (str): Output json; relative paths are under the runner's
            ``work_dir``. Defaults to 'pseudo_masks.json'.
        dataloader (dict, optional): Dataloader config to export. None uses
            the train dataloader's dataset with ``pipeline``, batch size 1,
            no shuffling. Defaults to None.
        pipeline (Sequence[dict], optional): Pipeline for the default
            dataloader; it must keep the points. None uses
            ``cfg.export_pipeline``, ``cfg.test_pipeline`` or
            ``LoadP2SegImageFromFile, LoadP2SegAnnotations(with_seg=False),
            PackP2SegInputs``. Defaults to None.
        interval (int, optional): Also export every ``interval`` training
            iterations. Defaults to None.
        score_thr (float): Drop predictions scoring below it.
            Defaults to 0.0.
        resume (bool): Resume an interrupted final export. Defaults to True.
    """

    priority = 'LOW'

    def __init__(self,
                 out_file: str = 'pseudo_masks.json',
                 dataloader: Optional[dict] = None,
                 pipeline: Optional[Sequence[dict]] = None,
                 interval: Optional[int] = None,
                 score_thr: float = 0.0,
                 resume: bool = True) -> None:
        if interval is not None and interval <= 0:
            raise ValueError(
                f'PseudoMaskExportHook: interval must be > 0 or None, got '
                f'{interval}.')
        self.out_file = out_file
        self.dataloader = dataloader
        self.pipeline = pipeline
        self.interval = interval
        self.score_thr = score_thr
        self.resume = resume
        self._last_export = None

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        """Export every ``interval`` iterations if ``interval`` is set."""
        if self.interval and self.every_n_train_iters(runner, self.interval):
            stem, ext = osp.splitext(self._resolve(runner))
            out_file = f'{stem}_iter{runner.iter + 1}{ext}'
            metrics = self.export(runner, out_file, False)
            self._last_export = (runner.iter + 1, out_file, metrics)

    def after_train(self, runner) -> None:
        """Export with the final model."""
        if self._last_export is not None and \
                self._last_export[0] == runner.iter:
            # The final model was just exported: copy it to the final name.
            metrics = self._last_export[2] or {}
            if not metrics.get('pseudo/num_annotations', 1):
                raise ValueError(
                    f'PseudoMaskExportHook: the final export '
                    f'{self._last_export[1]} holds no mask, so '
                    f'{self._resolve(runner)} would be empty and a second '
                    'stage cannot train on it. Fix: train longer, lower '
                    'score_thr, or check the points and classes.')
            if is_main_process():
                shutil.copyfile(self._last_export[1], self._resolve(runner))
            return
        self.export(runner, self._resolve(runner), self.resume)

    def _resolve(self, runner) -> str:
        if osp.isabs(self.out_file):
            return self.out_file
        return osp.join(runner.work_dir, self.out_file)

    def _build_dataset(self, runner):
        """The dataset and dataloader config to export."""
        if self.dataloader is not None:
            dataloader_cfg = copy.deepcopy(self.dataloader)
        else:
            train_cfg = runner.cfg.get('train_dataloader') or {}
            dataloader_cfg = export_dataloader_cfg(
                export_dataset_cfg(runner.cfg, 'train', self.pipeline),
                train_cfg.get('num_workers', 0))
        dataset = dataloader_cfg['dataset']
        if isinstance(dataset, dict):
            dataset = DATASETS.build(dataset)
        if hasattr(dataset, 'full_init'):
            dataset.full_init()
        dataloader_cfg['dataset'] = dataset
        return dataset, dataloader_cfg

    def export(self, runner, out_file: str, resume: bool) -> dict:
        """Predict every pending image and write ``out_file``.

        Returns:
            dict: The dumper's metrics (``pseudo/num_annotations``,
            ``pseudo/num_empty_dropped``).
        """
        dataset, dataloader_cfg = self._build_dataset(runner)
        if not hasattr(dataset, 'ann_file'):
            raise ValueError(
                'PseudoMaskExportHook: the export dataset has no ann_file. '
                'Fix: export a COCO-style point dataset (no wrapper).')
        done = [load_done_image_ids(out_file) if resume else set()]
        broadcast_object_list(done)
        if done[0]:
            dataset.get_subset_(pending_indices(dataset, done[0]))
            runner.logger.info(
                f'PseudoMaskExportHook: resuming {out_file}: '
                f'{len(done[0])} images done, {len(dataset)} left.')
        dataloader = runner.build_dataloader(dataloader_cfg)
        evaluator = Evaluator(
            PseudoMaskDumper(
                out_file=out_file,
                ann_file=dataset.ann_file,
                score_thr=self.score_thr,
                resume=resume,
                # An early model may predict nothing: only the final
                # export must hold masks.
                allow_empty=out_file != self._resolve(runner)))
        evaluator.dataset_meta = dataset.metainfo
        model = runner.model
        was_training = model.training
        model.eval()
        bar = ProgressBar(len(dataloader)) if is_main_process() else None
        try:
            for data_batch in dataloader:
                with torch.no_grad():
                    outputs = model.test_step(data_batch)
                evaluator.process(data_samples=outputs, data_batch=data_batch)
                if bar is not None:
                    bar.update()
        finally:
            model.train(was_training)
        metrics = evaluator.evaluate(len(dataset))
        runner.logger.info(f'PseudoMaskExportHook: {out_file}: {metrics}')
        return metrics
