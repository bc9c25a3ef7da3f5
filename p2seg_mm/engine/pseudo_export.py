# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Config helpers shared by ``PseudoMaskExportHook`` and
``tools/export_pseudo_masks.py`` (P2Seg stage B: pseudo-masks of the
training images, one per annotated point)."""
import copy
import os.path as osp
from typing import List, Optional, Sequence

from mmengine.config import Config, ConfigDict

#: Pipeline that keeps the points (needed by point-mode prediction) and
#: does not read the semantic pseudo-map.
DEFAULT_EXPORT_PIPELINE = [
    dict(type='LoadP2SegImageFromFile', backend_args=None),
    dict(type='LoadP2SegAnnotations', with_seg=False),
    dict(type='PackP2SegInputs'),
]


def _plain(cfg) -> dict:
    """Deep copy of a (Config)dict as plain dicts/lists."""
    if isinstance(cfg, ConfigDict):
        cfg = cfg.to_dict()
    return copy.deepcopy(cfg)


def export_pipeline(cfg: Config) -> List[dict]:
    """The pipeline of the export: ``cfg.export_pipeline`` if defined, else
    ``cfg.test_pipeline``, else :data:`DEFAULT_EXPORT_PIPELINE`."""
    for key in ('export_pipeline', 'test_pipeline'):
        if cfg.get(key) is not None:
            return _plain(list(cfg.get(key)))
    return copy.deepcopy(DEFAULT_EXPORT_PIPELINE)


def export_dataset_cfg(cfg: Config,
                       split: str = 'train',
                       pipeline: Optional[Sequence[dict]] = None) -> dict:
    """Dataset config of ``cfg.<split>_dataloader`` set up for export.

    Dataset wrappers (``RepeatDataset``, ``ClassBalancedDataset`` ...) are
    unwrapped to the inner dataset. The pipeline is replaced and
    ``test_mode=True`` keeps every image.

    Args:
        cfg (Config): Full config.
        split (str): 'train', 'val' or 'test'. Defaults to 'train'.
        pipeline (Sequence[dict], optional): Pipeline; None uses
            :func:`export_pipeline`. Defaults to None.

    Returns:
        dict: Dataset config.
    """
    key = f'{split}_dataloader'
    if cfg.get(key) is None or cfg.get(key).get('dataset') is None:
        raise ValueError(
            f'the config has no {key}.dataset to export. Fix: choose a split '
            'whose dataloader is defined.')
    dataset = _plain(cfg.get(key)['dataset'])
    while 'ann_file' not in dataset and isinstance(
            dataset.get('dataset'), dict):
        dataset = dataset['dataset']
    if 'ann_file' not in dataset:
        raise ValueError(
            f'{key}.dataset (type {dataset.get("type")}) has no ann_file. '
            'Fix: export a COCO-style point dataset.')
    dataset['pipeline'] = (
        _plain(list(pipeline)) if pipeline is not None else
        export_pipeline(cfg))
    test_cfg = (cfg.get('model') or {}).get('test_cfg') or {}
    if test_cfg.get('semantic_source') == 'pseudo_map':
        # the decoding groups each image's pseudo-map: load it
        for step in dataset['pipeline']:
            if step.get('type') in ('LoadP2SegAnnotations',
                                    'mmdet.LoadP2SegAnnotations'):
                step['with_seg'] = True
    dataset['test_mode'] = True
    dataset.pop('indices', None)
    return dataset


def resolve_ann_file(dataset_cfg: dict) -> str:
    """``ann_file`` joined with ``data_root`` as mmengine's datasets do."""
    ann_file = dataset_cfg['ann_file']
    data_root = dataset_cfg.get('data_root') or ''
    if data_root and not osp.isabs(ann_file) and '://' not in ann_file:
        return osp.join(data_root, ann_file)
    return ann_file


def export_dataloader_cfg(dataset, num_workers: int = 0) -> dict:
    """Batch-1, unshuffled dataloader config over ``dataset`` (a config or a
    built dataset)."""
    return dict(
        batch_size=1,
        num_workers=num_workers,
        persistent_workers=False,
        drop_last=False,
        sampler=dict(type='DefaultSampler', shuffle=False),
        dataset=dataset)


def build_export_cfg(cfg: Config,
                     checkpoint: str,
                     out_file: str,
                     split: str = 'train',
                     resume: bool = True,
                     score_thr: float = 0.0,
                     indices: Optional[Sequence[int]] = None) -> Config:
    """Turn a training config into a ``runner.test()`` export config.

    ``test_dataloader`` runs over the split's dataset (see
    :func:`export_dataset_cfg`), restricted to ``indices`` if given;
    ``test_evaluator`` is a ``PseudoMaskDumper`` writing ``out_file``;
    ``test_cfg`` is the ``PseudoMaskExportLoop``, which skips the images
    of an interrupted export (``resume``). The training and validation
    settings are removed (the runner only tests).

    Returns:
        Config: A modified copy of ``cfg``.
    """
    cfg = copy.deepcopy(cfg)
    dataset = export_dataset_cfg(cfg, split)
    if indices is not None:
        dataset['indices'] = list(indices)
    num_workers = cfg.get(f'{split}_dataloader').get('num_workers', 0)
    for key in ('train_dataloader', 'train_cfg', 'optim_wrapper',
                'param_scheduler', 'val_dataloader', 'val_cfg',
                'val_evaluator'):
        cfg.pop(key, None)
    cfg.test_dataloader = export_dataloader_cfg(dataset, num_workers)
    cfg.test_evaluator = dict(
        type='PseudoMaskDumper',
        out_file=out_file,
        ann_file=resolve_ann_file(dataset),
        score_thr=score_thr,
        resume=resume)
    cfg.test_cfg = dict(type='PseudoMaskExportLoop')
    cfg.load_from = checkpoint
    cfg.resume = False
    return cfg
