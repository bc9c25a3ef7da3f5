# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Every config under configs/ loads; the stage-A configs are consistent."""
from pathlib import Path

import pytest
from mmengine.config import Config

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted((REPO / 'configs').rglob('*.py'))
STAGE_A = sorted((REPO / 'configs' / 'p2seg').glob('*.py'))


def _rel(path):
    return str(path.relative_to(REPO))


def test_there_are_configs():
    assert len(CONFIGS) >= 8
    assert {p.name
            for p in STAGE_A} >= {
                'p2seg_r50_voc.py', 'p2seg_r101_voc.py',
                'p2seg_hrnet48_voc.py', 'p2seg_hrnet48_coco.py',
                'p2seg_r18_demo-cells.py'
            }


@pytest.mark.parametrize('path', CONFIGS, ids=_rel)
def test_config_loads(path):
    cfg = Config.fromfile(str(path))
    if '_base_' not in path.parts:
        # leaf configs import the plugin (bases may not all define it:
        # mmengine refuses a key that two bases define)
        assert cfg.custom_imports.imports == ['p2seg_mm'], _rel(path)


@pytest.mark.parametrize('path', STAGE_A, ids=_rel)
def test_stage_a_config_is_consistent(path):
    cfg = Config.fromfile(str(path))
    model = cfg.model
    assert model.type == 'P2Seg'
    assert cfg.default_scope == 'mmdet'
    assert cfg.log_processor.by_epoch is False
    assert cfg.train_cfg.type == 'IterBasedTrainLoop'
    num_classes = model.semantic_head.num_classes
    assert model.center_offset_head.num_classes == num_classes
    metainfo = cfg.train_dataloader.dataset.get('metainfo')
    if metainfo is not None:
        assert len(metainfo['classes']) == num_classes
    assert cfg.optim_wrapper.optimizer.type == 'Adam'
    assert [s.type for s in cfg.param_scheduler] == ['LinearLR', 'PolyLR']
    assert cfg.param_scheduler[1].end == cfg.train_cfg.max_iters
    if 'demo' in path.name:
        # offline demos: random init or a local checkpoint, never a download
        init = model.backbone.init_cfg
        assert init is None or '://' not in init.checkpoint
        assert cfg.train_cfg.max_iters <= 1000
    else:
        # full-size configs keep the ImageNet initialisation
        assert model.backbone.init_cfg.type == 'Pretrained'
        assert model.affinity_head.embed_dims == 256
    if 'coco' in path.name:
        assert num_classes == 80
        assert model.center_offset_head.loss_center_weight == 200
        assert cfg.train_cfg.max_iters == 200000
    elif 'voc' in path.name:
        assert num_classes == 20
        assert model.center_offset_head.loss_center_weight == 0
        assert cfg.train_cfg.max_iters == 50000
