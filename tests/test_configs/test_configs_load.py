# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Every config under configs/ loads; the stage-A configs are consistent."""
import re
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
                'p2seg_r18_demo-cells.py', 'p2seg_r18_stride8-300it_demo-cells.py'
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
    # the decay ends where training does: the runner sets it from train_cfg
    assert 'end' not in cfg.param_scheduler[1]
    # the heads are sized by the dataset base's class count
    assert num_classes == cfg.num_classes
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


def test_class_names_and_counts_are_written_once():
    """One class tuple per dataset, one literal class count (COCO's 80, whose
    names come from CocoDataset); everything else reads them."""
    texts = {_rel(p): p.read_text() for p in CONFIGS}
    assert [n for n, t in texts.items() if "'tvmonitor'" in t] == [
        'configs/_base_/datasets/voc_classes.py'
    ]
    assert [n for n, t in texts.items() if "'hela_nucleus'" in t] == [
        'configs/_base_/datasets/demo_cells_classes.py'
    ]
    literal = re.compile(r'num_classes\s*=\s*\d')
    assert [n for n, t in texts.items() if literal.search(t)] == [
        'configs/_base_/datasets/coco_instance_point.py'
    ]


@pytest.mark.parametrize('name, max_iters, warmup', [
    ('p2seg_50k.py', 50000, 2000),
    ('p2seg_200k.py', 200000, 2000),
    ('p2seg_demo_300.py', 300, 50),
    ('p2seg_demo_1000.py', 1000, 50),
])
def test_schedule_bases_decay_over_their_length(tmp_path, name, max_iters,
                                                warmup):
    """The runner ends the poly decay at train_cfg.max_iters, also when it
    is changed after loading (as --cfg-options does)."""
    cfg = Config.fromfile(str(REPO / 'configs/_base_/schedules' / name))
    assert cfg.train_cfg.max_iters == max_iters
    for iters in (max_iters, 7):
        cfg.train_cfg.max_iters = iters
        schedulers = _runner_schedulers(cfg, tmp_path / str(iters))
        assert [type(s).__name__ for s in schedulers] == [
            'LinearLR', 'PolyLR'
        ]
        assert (schedulers[0].begin, schedulers[0].end) == (0, warmup)
        assert (schedulers[1].begin, schedulers[1].end) == (0, iters)


def _runner_schedulers(cfg, work_dir):
    """The parameter schedulers a runner builds from ``cfg``'s schedule."""
    import torch
    from mmengine.model import BaseModel
    from mmengine.runner import Runner

    class Toy(BaseModel):

        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(1, 1)

        def forward(self, inputs, data_samples=None, mode='tensor'):
            return dict(loss=self.linear(torch.stack(inputs)).sum())

    runner = Runner(
        model=Toy(),
        work_dir=str(work_dir),
        train_dataloader=dict(
            dataset=[torch.zeros(1)] * 2,
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=1,
            collate_fn=dict(type='pseudo_collate')),
        train_cfg=cfg.train_cfg,
        optim_wrapper=cfg.optim_wrapper,
        param_scheduler=cfg.param_scheduler,
        # 'mmdet' as every config: a Runner makes its scope the process's
        # default, and 'mmengine' would hide the plugin's transforms from
        # the later tests of this worker
        default_scope='mmdet')
    runner.train_loop  # builds the loop, whose max_iters the schedulers read
    runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    return runner.build_param_scheduler(cfg.param_scheduler)


def test_demo_and_ladder_configs_differ_in_the_walk():
    """The demo walks at stride 4 with the Gaussian affinity, its I2S terms
    on a 128^2 window, and decodes new images with the walk; the quality
    benchmark's ladder config keeps the stride-8 sigmoid walk over the whole
    crop for 300 iterations (the results it made stay reproducible; its
    rows set use_i2s themselves)."""
    stage_a = REPO / 'configs' / 'p2seg'
    demo = Config.fromfile(str(stage_a / 'p2seg_r18_demo-cells.py'))
    ladder = Config.fromfile(
        str(stage_a / 'p2seg_r18_stride8-300it_demo-cells.py'))

    def walk(cfg):
        return (cfg.model.affinity_head.pool,
                cfg.model.affinity_head.affinity,
                cfg.model.train_cfg.aff_membership,
                cfg.model.train_cfg.i2s_window, cfg.train_cfg.max_iters,
                cfg.default_hooks.checkpoint.interval,
                cfg.model.test_cfg.use_i2s)

    assert walk(demo) == (1, 'gaussian', 'majority', (128, 128), 1000, 1000,
                          True)
    assert walk(ladder) == (2, 'sigmoid', 'max', None, 300, 300, True)
