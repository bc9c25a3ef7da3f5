# Copyright (c) p2seg_mm contributors. All rights reserved.
import pytest
from mmengine.config import Config

from p2seg_mm.engine.runner import pending_indices
from p2seg_mm.engine.pseudo_export import (DEFAULT_EXPORT_PIPELINE,
                                           build_export_cfg,
                                           export_dataset_cfg,
                                           export_pipeline,
                                           resolve_ann_file)

TRAIN_PIPELINE = [dict(type='LoadImageFromFile'), dict(type='PointRandomFlip')]


def make_cfg(**extra):
    inner = dict(
        type='CocoPointDataset',
        data_root='data/voc',
        ann_file='annotations/train.json',
        filter_cfg=dict(filter_empty_gt=True),
        indices=5,
        pipeline=TRAIN_PIPELINE)
    return Config(
        dict(
            train_dataloader=dict(
                num_workers=3,
                dataset=dict(type='RepeatDataset', times=2, dataset=inner)),
            **extra))


def test_pipeline_choice():
    assert export_pipeline(make_cfg()) == DEFAULT_EXPORT_PIPELINE
    # the default export reads images by the loading rule (image_io)
    assert DEFAULT_EXPORT_PIPELINE[0]['type'] == 'LoadP2SegImageFromFile'
    test_pipeline = [dict(type='LoadImageFromFile')]
    assert export_pipeline(make_cfg(test_pipeline=test_pipeline)) == \
        test_pipeline
    export = [dict(type='PackP2SegInputs')]
    cfg = make_cfg(test_pipeline=test_pipeline, export_pipeline=export)
    assert export_pipeline(cfg) == export


def test_export_dataset_cfg_unwraps_and_sets_test_mode():
    cfg = make_cfg()
    dataset = export_dataset_cfg(cfg, 'train')
    assert dataset['type'] == 'CocoPointDataset'
    assert dataset['test_mode'] is True and 'indices' not in dataset
    assert dataset['pipeline'] == DEFAULT_EXPORT_PIPELINE
    # the config itself is untouched
    assert cfg.train_dataloader.dataset.dataset.pipeline == TRAIN_PIPELINE
    assert resolve_ann_file(dataset) == 'data/voc/annotations/train.json'
    assert resolve_ann_file(dict(ann_file='/abs/a.json',
                                 data_root='x')) == '/abs/a.json'
    with pytest.raises(ValueError, match='val_dataloader'):
        export_dataset_cfg(cfg, 'val')


def test_build_export_cfg():
    cfg = build_export_cfg(
        make_cfg(), 'ckpt.pth', 'out/pseudo.json', indices=[0, 2])
    assert cfg.load_from == 'ckpt.pth' and cfg.resume is False
    loader = cfg.test_dataloader
    assert loader.batch_size == 1 and loader.num_workers == 3
    assert loader.sampler == dict(type='DefaultSampler', shuffle=False)
    assert loader.dataset.indices == [0, 2]
    assert cfg.test_evaluator == dict(
        type='PseudoMaskDumper',
        out_file='out/pseudo.json',
        ann_file='data/voc/annotations/train.json',
        score_thr=0.0,
        resume=True)
    assert cfg.test_cfg == dict(type='PseudoMaskExportLoop')
    assert 'train_dataloader' not in cfg


def test_pending_indices():

    class Fake:

        def __len__(self):
            return 4

        def get_data_info(self, i):
            return dict(img_id=[10, 11, 12, 13][i])

    assert pending_indices(Fake(), {11, 13}) == [0, 2]
    assert pending_indices(Fake(), set()) == [0, 1, 2, 3]


def test_pseudo_map_decoding_loads_the_map_for_export():
    """test_cfg.semantic_source='pseudo_map' groups each image's pseudo-map:
    the export pipeline must load it (the default does not)."""
    loads = lambda ds: [s.get('with_seg') for s in ds['pipeline']
                        if s['type'] == 'LoadP2SegAnnotations']
    assert loads(export_dataset_cfg(make_cfg(), 'train')) == [False]
    cfg = make_cfg(model=dict(test_cfg=dict(semantic_source='pseudo_map')))
    assert loads(export_dataset_cfg(cfg, 'train')) == [True]
    assert DEFAULT_EXPORT_PIPELINE[1]['with_seg'] is False  # not mutated
