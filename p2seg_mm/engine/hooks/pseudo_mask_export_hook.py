# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Export pseudo-masks of the training images from inside training."""
import copy
import os.path as osp
import shutil
from typing import Optional, Sequence

from mmengine.dist import is_main_process
from mmengine.hooks import Hook

from mmdet.registry import HOOKS
from ..pseudo_export import (export_dataloader_cfg, export_dataset_cfg,
                             resolve_ann_file)
from ..runner.pseudo_export_loop import PseudoMaskExportLoop


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

    def _dataloader_cfg(self, runner) -> dict:
        """The dataloader config to export (its dataset a config)."""
        if self.dataloader is not None:
            return copy.deepcopy(self.dataloader)
        train_cfg = runner.cfg.get('train_dataloader') or {}
        return export_dataloader_cfg(
            export_dataset_cfg(runner.cfg, 'train', self.pipeline),
            train_cfg.get('num_workers', 0))

    def export(self, runner, out_file: str, resume: bool) -> dict:
        """Predict every pending image and write ``out_file``
        (:class:`PseudoMaskExportLoop`, without the runner's test hooks).

        Returns:
            dict: The dumper's metrics (``pseudo/num_annotations``,
            ``pseudo/num_empty_dropped``).
        """
        dataloader = self._dataloader_cfg(runner)
        dataset = dataloader['dataset']
        if not isinstance(dataset, dict) or 'ann_file' not in dataset:
            raise ValueError(
                'PseudoMaskExportHook: the export dataset has no ann_file. '
                'Fix: export a COCO-style point dataset (no wrapper).')
        loop = PseudoMaskExportLoop(
            runner,
            dataloader,
            dict(
                type='PseudoMaskDumper',
                out_file=out_file,
                ann_file=resolve_ann_file(dataset),
                score_thr=self.score_thr,
                resume=resume,
                # An early model may predict nothing: only the final
                # export must hold masks.
                allow_empty=out_file != self._resolve(runner)),
            call_hooks=False)
        metrics = loop.run()
        runner.logger.info(f'PseudoMaskExportHook: {out_file}: {metrics}')
        return metrics
