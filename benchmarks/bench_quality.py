# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Pseudo-mask quality ladder on the real demo cells, with seeds.

For every row, the masks decoded from the points of the 30 training frames
(pseudo-masks, stage B) and of the 10 held-out frames are scored against the
ground truth: VOC mask AP per class at IoU .25/.5/.7/.75 and the mean IoU
per point (``p2seg_mm.evaluation.evaluate_pseudo_masks``; the no-learning
rows give all masks one score, so their AP is the mean over ``TIE_ORDERS``
random orders of the ties). Rows:

- ``nearest``: the semantic pseudo-map cut by nearest point (no learning);
- ``nearest_fallback``: the same, and a point that gets no pixel gets the
  square the learned rows' decoding gives it (``test_cfg.
  fallback_half_size`` of the config): what the learned offsets add
  beyond the fallback squares is the difference to the ``*_map`` rows;
- ``geodesic``: the pseudo-map cut by the geodesic split that avoids image
  edges (no learning; the targets of the ``*_geo`` rows, docs/method.md
  §3.5);
- ``oracle``: the ground-truth semantic map cut by nearest point (bound);
- ``mdm_base``: MDM, no dis_group, no I2S (train and test);
- ``dis_group``: + dis_group static targets;
- ``i2s_t1``: + I2S with the semantic affinity target T1 (walk at test);
- ``p2seg``: + T2, the full method with K = 1 (walk at test);
- ``k2``: the full method with K = 2 stages (train and test);
- extra rows (beyond the paper, each one switch on top of ``p2seg``) are
  listed in ``ROWS`` with their reason.

Learned rows train ``--config`` (default: the ladder MDM
``configs/p2seg/p2seg_r18_stride8-300it_demo-cells.py``, the demo's network
at CPU-cheap settings; with ``--iters 1000`` the training
``p2seg_aux2_gmw``, that config plus the row's switches, is the demo's
``p2seg_r18_demo-cells.py``, whose decoding of new images is row
``p2seg_aux2_gmw_pamr_geo``) for ``--iters`` (default: the config's
``train_cfg.max_iters``) with ``randomness.seed = s`` for each seed, one
torch thread per process, ``--jobs`` processes side by side. A row decodes
with the config's test_cfg, except the keys rows vary (``mode``,
``semantic_source``, ``pamr``, ``grouping``, ``group_in_components``):
what a row does
not set there is the method's default (``ROW_TEST_DEFAULTS``), so a
``--config`` that turns one on changes only the rows that name it.
Everything is cached under
``--work-dir`` (checkpoints, decoded jsons, scores): a rerun only does what
is missing, so a killed run resumes. Writes ``results/quality.md``,
``results/quality.png`` and ``results/quality.json`` (records ``row``,
``split``, ``class``, ``iou``, ``mean``, ``std``, ``seeds``, plus
``values``, the AP of each seed, ``miou_mean`` / ``miou_std``, the mean
IoU per point in %, and
``fallback_mean``, the % of points that got the fallback square because
their class lost the argmax around them). The markdown ends with the
steps between learned rows (``steps``: difference, Welch's p over seeds,
beyond the spread or not).

Example::

    python benchmarks/bench_quality.py                 # the ladder, 3 seeds
    python benchmarks/bench_quality.py --rows nearest p2seg --seeds 0
    # the stride-4 Gaussian walk at 1000 iterations, with and without it
    python benchmarks/bench_quality.py --iters 1000 \
        --rows nearest p2seg_aux_gm p2seg_aux_gm_no_test_i2s \
        --work-dir work_dirs/bench_quality_1000
"""
import argparse
import datetime
import json
import os
import os.path as osp
import platform
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, List, Optional

import numpy as np

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from _machine import cpu_model  # noqa: E402

CONFIG = 'configs/p2seg/p2seg_r18_stride8-300it_demo-cells.py'
DATA = 'data/demo_cells'
IOUS = (0.25, 0.5, 0.7, 0.75)
# The paper's ladder: each training differs from the one above by one
# switch. ``train``: model cfg options; ``dis_group`` / ``grouping``: the
# static-target switches of the pipeline; ``test``: model.test_cfg options.
PAPER = dict(
    model=dict(
        train_cfg=dict(
            use_i2s=True, use_inst_affinity=True, num_stages=1,
            unrefined_sem_loss_weight=0.0)),
    dis_group=True,
    grouping='euclidean')
TRAININGS = {
    'mdm_base': dict(
        model=dict(train_cfg=dict(use_i2s=False, use_inst_affinity=False)),
        dis_group=False),
    'dis_group': dict(
        model=dict(train_cfg=dict(use_i2s=False, use_inst_affinity=False))),
    # mdm_base with its semantic CE counted twice (+ the same CE on the
    # unrefined logits at weight 1): the control of p2seg_aux2_gmw, whose
    # unrefined CE has weight 2 (does I2S help, or the weight?)
    'mdm_base_sem2': dict(
        model=dict(
            train_cfg=dict(use_i2s=False, use_inst_affinity=False,
                           unrefined_sem_loss_weight=1.0)),
        dis_group=False),
    'i2s_t1': dict(model=dict(train_cfg=dict(use_inst_affinity=False))),
    'p2seg': dict(),
    'k2': dict(model=dict(train_cfg=dict(num_stages=2))),
    # beyond the paper: + a CE on the unrefined logits (weight 1), so that
    # the semantic head is trained where the walk averages objects away
    'p2seg_aux': dict(
        model=dict(train_cfg=dict(unrefined_sem_loss_weight=1.0))),
    # beyond the paper: the Gaussian affinity exp(-|e_i - e_j|^2) instead
    # of sigmoid(E^T E) (affinity_head.affinity, docs/method.md §4.1), which
    # cannot saturate at 1 between an object cell and a border cell whose
    # embedding is a shorter copy of the object's
    'p2seg_gauss': dict(
        model=dict(affinity_head=dict(affinity='gaussian'))),
    'p2seg_aux_gauss': dict(
        model=dict(
            affinity_head=dict(affinity='gaussian'),
            train_cfg=dict(unrefined_sem_loss_weight=1.0))),
    # + the walk at stride 4 (pool 1) with majority membership: a cell
    # joins an object's affinity rows only if most of its pixels do, so an
    # object's affine set is not the object dilated by a cell (docs/method.md
    # §4.6); run with --iters 1000 (README "Quality benchmark")
    'p2seg_aux_gm': dict(
        model=dict(
            affinity_head=dict(affinity='gaussian', pool=1),
            train_cfg=dict(
                unrefined_sem_loss_weight=1.0, aff_membership='majority'))),
    # p2seg_aux_gm less one switch each (which of the three matters):
    # max-pooled membership, or the sigmoid affinity, at stride 4
    'p2seg_aux_g4': dict(
        model=dict(
            affinity_head=dict(affinity='gaussian', pool=1),
            train_cfg=dict(unrefined_sem_loss_weight=1.0))),
    'p2seg_aux_sm4': dict(
        model=dict(
            affinity_head=dict(pool=1),
            train_cfg=dict(
                unrefined_sem_loss_weight=1.0, aff_membership='majority'))),
    # + the I2S terms (affinity losses, walk, refined CE) on one random
    # 128 x 128 window of each batch (train_cfg.i2s_window): 1/16 of the
    # N^2 pairs of a 256^2 crop at stride 4, so that the walk trains within
    # the demo's CPU budget (docs/method.md §4.6)
    'p2seg_aux_gmw': dict(
        model=dict(
            affinity_head=dict(affinity='gaussian', pool=1),
            train_cfg=dict(
                unrefined_sem_loss_weight=1.0, aff_membership='majority',
                i2s_window=(128, 128)))),
    # p2seg_aux_gmw with the unrefined CE at weight 2: trained with the I2S
    # terms, the semantic head's E. coli probability on the held-out (denser)
    # colonies is lower than without them, and seed 3 of p2seg_aux_gmw lost
    # held-out E. coli (AP50 59.1, 23 % fallback squares; docs/method.md
    # §4.6, "Session 12")
    'p2seg_aux2_gmw': dict(
        model=dict(
            affinity_head=dict(affinity='gaussian', pool=1),
            train_cfg=dict(
                unrefined_sem_loss_weight=2.0, aff_membership='majority',
                i2s_window=(128, 128)))),
    # + static offset targets that split touching objects by the geodesic
    # path avoiding image edges instead of Euclidean distance (not in the
    # paper; GenerateS2ITargets(grouping='geodesic'), docs/method.md
    # §3.5): Voronoi cuts rods at an angle, and the offsets learned it
    'p2seg_aux_gmw_geo': dict(
        model=dict(
            affinity_head=dict(affinity='gaussian', pool=1),
            train_cfg=dict(
                unrefined_sem_loss_weight=1.0, aff_membership='majority',
                i2s_window=(128, 128))),
        grouping='geodesic'),
    # the paper's ladder with the demo's switches (1000 iterations, with
    # mdm_base, dis_group and p2seg_aux_gmw): I2S with T1 only, and K = 2
    'i2s_t1_aux_gmw': dict(
        model=dict(
            affinity_head=dict(affinity='gaussian', pool=1),
            train_cfg=dict(
                unrefined_sem_loss_weight=1.0, aff_membership='majority',
                i2s_window=(128, 128), use_inst_affinity=False))),
    'k2_aux_gmw': dict(
        model=dict(
            affinity_head=dict(affinity='gaussian', pool=1),
            train_cfg=dict(
                unrefined_sem_loss_weight=1.0, aff_membership='majority',
                i2s_window=(128, 128), num_stages=2))),
    # the paper's training (refined CE only) with the same three switches:
    # does the method train once its affinity cannot collapse?
    'p2seg_gm': dict(
        model=dict(
            affinity_head=dict(affinity='gaussian', pool=1),
            train_cfg=dict(aff_membership='majority'))),
}


def decodings(training: str) -> Dict[str, tuple]:
    """The rows of one training: with the walk at test (named as the
    training), ``_no_test_i2s`` (same checkpoint, no walk), ``_map`` (its
    offsets on the given pseudo-map), and ``_pamr`` /
    ``_no_test_i2s_pamr`` (the first two with the network's probabilities
    refined at full resolution by the image's local affinity,
    ``test_cfg.pamr``, Araslanov & Roth 2020; not in the paper)."""
    splits = ('train', 'val')
    return {
        training: (training, dict(use_i2s=True), splits),
        f'{training}_no_test_i2s': (training, dict(use_i2s=False), splits),
        f'{training}_map': (training, dict(semantic_source='pseudo_map'),
                            splits),
        f'{training}_pamr': (training, dict(use_i2s=True, pamr=dict()),
                             splits),
        f'{training}_no_test_i2s_pamr': (training,
                                         dict(use_i2s=False, pamr=dict()),
                                         splits),
    }


# row -> (training, test_cfg options, splits)
ROWS = {
    'mdm_base': ('mdm_base', dict(use_i2s=False), ('train', 'val')),
    # row 2 with the full-resolution refinement of the _pamr rows: the
    # baseline those rows must beat for the walk to count
    'mdm_base_pamr': ('mdm_base', dict(use_i2s=False, pamr=dict()),
                      ('train', 'val')),
    'dis_group': ('dis_group', dict(use_i2s=False), ('train', 'val')),
    'i2s_t1': ('i2s_t1', dict(use_i2s=True), ('train', 'val')),
    'p2seg': ('p2seg', dict(use_i2s=True), ('train', 'val')),
    # the given pseudo-map grouped by the offsets of the training without
    # I2S: what the I2S training adds to stage B (compare p2seg_map)
    'mdm_base_map': ('mdm_base', dict(semantic_source='pseudo_map'),
                     ('train', 'val')),
    'dis_group_map': ('dis_group', dict(semantic_source='pseudo_map'),
                      ('train', 'val')),
    'i2s_t1_map': ('i2s_t1', dict(semantic_source='pseudo_map'),
                   ('train', 'val')),
    'k2_map': ('k2', dict(semantic_source='pseudo_map'), ('train', 'val')),
    'k2': ('k2', dict(use_i2s=True), ('train', 'val')),
    # the full method's checkpoint without the walk at test time: what
    # the test-time I2S adds
    'p2seg_no_test_i2s': ('p2seg', dict(use_i2s=False), ('train', 'val')),
    # beyond the paper: the image's given pseudo-map grouped by the full
    # method's learned offsets (test_cfg.semantic_source='pseudo_map')
    'p2seg_map': ('p2seg', dict(semantic_source='pseudo_map'),
                  ('train', 'val')),
    'p2seg_aux': ('p2seg_aux', dict(use_i2s=True), ('train', 'val')),
    'p2seg_aux_map': ('p2seg_aux', dict(semantic_source='pseudo_map'),
                      ('train', 'val')),
    # + each connected component grouped among its own points
    'p2seg_aux_map_cc': ('p2seg_aux', dict(semantic_source='pseudo_map',
                                           group_in_components=True),
                         ('train', 'val')),
    'p2seg_aux_no_test_i2s': ('p2seg_aux', dict(use_i2s=False),
                              ('train', 'val')),
    'p2seg_gauss': ('p2seg_gauss', dict(use_i2s=True), ('train', 'val')),
    'p2seg_aux_gauss': ('p2seg_aux_gauss', dict(use_i2s=True),
                        ('train', 'val')),
    **decodings('p2seg_aux_gm'),
    **decodings('p2seg_aux_gmw_geo'),
    # the demo's training decoded as new images (walk + pamr), each class's
    # foreground split between the points by the geodesic path avoiding
    # image edges instead of by the learned offsets (test_cfg.grouping,
    # not in the paper, docs/method.md §6.6)
    'p2seg_aux_gmw_pamr_geo': ('p2seg_aux_gmw',
                               dict(use_i2s=True, pamr=dict(),
                                    grouping='geodesic'), ('train', 'val')),
    # the paper's training and decoding (row 5) with the geodesic split
    # in place of the offsets' (test_cfg.grouping, docs/method.md §6.6),
    # and the same decoding of row 2: the switch on the paper's own ladder
    'p2seg_geo': ('p2seg', dict(use_i2s=True, grouping='geodesic'),
                  ('train', 'val')),
    'mdm_base_geo': ('mdm_base', dict(use_i2s=False, grouping='geodesic'),
                     ('train', 'val')),
    # the demo's decoding of each rung of the paper's ladder trained with
    # the demo's switches (--iters 1000): mdm_base_pamr_geo ->
    # dis_group_pamr_geo -> i2s_t1_aux_gmw_pamr_geo ->
    # p2seg_aux_gmw_pamr_geo (the demo) -> k2_aux_gmw_pamr_geo
    'dis_group_pamr_geo': ('dis_group',
                           dict(use_i2s=False, pamr=dict(),
                                grouping='geodesic'), ('train', 'val')),
    'i2s_t1_aux_gmw_pamr_geo': ('i2s_t1_aux_gmw',
                                dict(use_i2s=True, pamr=dict(),
                                     grouping='geodesic'), ('train', 'val')),
    'k2_aux_gmw_pamr_geo': ('k2_aux_gmw',
                            dict(use_i2s=True, pamr=dict(),
                                 grouping='geodesic'), ('train', 'val')),
    'mdm_base_sem2_pamr_geo': ('mdm_base_sem2',
                               dict(use_i2s=False, pamr=dict(),
                                    grouping='geodesic'), ('train', 'val')),
    # p2seg_aux_gmw_pamr_geo trained with the unrefined CE at weight 2
    'p2seg_aux2_gmw_pamr_geo': ('p2seg_aux2_gmw',
                                dict(use_i2s=True, pamr=dict(),
                                     grouping='geodesic'), ('train', 'val')),
    'p2seg_aux2_gmw_no_test_i2s_pamr_geo': ('p2seg_aux2_gmw',
                                            dict(use_i2s=False, pamr=dict(),
                                                 grouping='geodesic'),
                                            ('train', 'val')),
    # the demo's checkpoint decoded as the demo decodes but without the
    # walk at test: what the test-time I2S adds to that decoding
    'p2seg_aux_gmw_no_test_i2s_pamr_geo': ('p2seg_aux_gmw',
                                           dict(use_i2s=False, pamr=dict(),
                                                grouping='geodesic'),
                                           ('train', 'val')),
    # the same decoding of mdm_base (no dis_group, no I2S): does I2S help
    # once the grouping is geodesic?
    'mdm_base_pamr_geo': ('mdm_base',
                          dict(use_i2s=False, pamr=dict(),
                               grouping='geodesic'), ('train', 'val')),
    # the demo's stage B with the switch: the given map split geodesically
    'p2seg_aux_gmw_map_geo': ('p2seg_aux_gmw',
                              dict(semantic_source='pseudo_map',
                                   grouping='geodesic'), ('train', 'val')),
    'p2seg_aux_g4': ('p2seg_aux_g4', dict(use_i2s=True), ('train', 'val')),
    'p2seg_aux_sm4': ('p2seg_aux_sm4', dict(use_i2s=True),
                      ('train', 'val')),
    **decodings('p2seg_gm'),
    **decodings('p2seg_aux_gmw'),
    # + each connected component of the refined map grouped among its own
    # points (does it keep far pixels from joining a far point?)
    'p2seg_aux_gm_pamr_cc': ('p2seg_aux_gm',
                             dict(use_i2s=True, pamr=dict(),
                                  group_in_components=True),
                             ('train', 'val')),
    'p2seg_aux_gmw_pamr_cc': ('p2seg_aux_gmw',
                              dict(use_i2s=True, pamr=dict(),
                                   group_in_components=True),
                              ('train', 'val')),
    # point-free decoding (centre peaks) of new images, no clicks
    'p2seg_aux_center': ('p2seg_aux', dict(mode='center', use_i2s=False),
                         ('val', )),
}
# geodesic: the pseudo-map cut by the image-aware geodesic split (no
# learning, docs/method.md §3.5): what the *_geo rows' targets give alone
NO_LEARNING = ('nearest', 'nearest_fallback', 'geodesic', 'oracle')
# the rows of a plain run (`make bench-quality`, ~60 min on 2 cores: the
# paper's ladder at the ladder config's 300 iterations and the switches
# measured there, benchmarks/results/quality.*); the stride-4 rows
# (p2seg_aux_gm*, p2seg_gm*, p2seg_aux_gmw*) need --iters 1000 and are asked
# for by name (README "Quality benchmark"), or all with --rows all
LADDER_ROWS = [
    'nearest', 'nearest_fallback', 'oracle', 'mdm_base', 'dis_group',
    'i2s_t1', 'p2seg', 'k2', 'p2seg_no_test_i2s', 'mdm_base_map',
    'dis_group_map', 'i2s_t1_map', 'p2seg_map', 'k2_map', 'p2seg_aux',
    'p2seg_aux_map', 'p2seg_aux_map_cc', 'p2seg_aux_no_test_i2s',
    'p2seg_aux_center', 'p2seg_gauss', 'p2seg_aux_gauss', 'geodesic',
    'p2seg_geo', 'mdm_base_geo'
]
# test_cfg keys the rows vary, at the values a row means when it does not
# name them
ROW_TEST_DEFAULTS = dict(mode='point', semantic_source='network', pamr=None,
                         grouping='offset',
                         group_in_components=False)
FALLBACK_SCORE = 0.5  # the demo's test_cfg.fallback_score
# random orders of equal scores the no-learning rows' VOC AP is averaged
# over (eval_instance_ap(tie_orders=)): ranked in file order instead, the
# nearest-point cut's E. coli AP50 on the training frames is 53.0, and
# 42.4-50.7 over 10 random orders (mean 45.0)
TIE_ORDERS = 20


def fallback_half_size(config: str) -> int:
    """``model.test_cfg.fallback_half_size`` of ``config`` (the decoding's
    default when the config does not set it)."""
    from mmengine.config import Config

    from p2seg_mm.models.seg_heads import DEFAULT_TEST_CFG
    test_cfg = Config.fromfile(osp.join(ROOT, config)).model.get(
        'test_cfg') or {}
    return int(test_cfg.get('fallback_half_size',
                            DEFAULT_TEST_CFG['fallback_half_size']))


def merge(base: dict, extra: dict) -> dict:
    """Recursive dict merge (``extra`` wins)."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def flatten(prefix: str, value) -> List[str]:
    """``{'a': {'b': 1}}`` -> ``['a.b=1']`` (mmengine ``--cfg-options``)."""
    if isinstance(value, dict):
        return [
            opt for key, sub in value.items()
            for opt in flatten(f'{prefix}.{key}' if prefix else key, sub)
        ]
    return [f'{prefix}={value}']


def dis_group_index() -> int:
    """Position of ``GenerateS2ITargets`` in the demo training pipeline."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(ROOT, CONFIG))
    steps = cfg.train_dataloader.dataset.pipeline
    return next(i for i, s in enumerate(steps)
                if s['type'] == 'GenerateS2ITargets')


def model_options(name: str, extra: List[str]) -> List[str]:
    """The training's model options (decoding builds the same model)."""
    spec = merge(PAPER, TRAININGS[name])
    return flatten('model', spec['model']) + [
        opt for opt in extra if opt.startswith('model.')]


# what the benchmark reads of a data folder (its fingerprint hashes them)
DATA_PARTS = ('annotations', 'images', 'pseudo_sem')


def data_fingerprint(data: str) -> str:
    """A hash of the files the benchmark reads (``DATA_PARTS``: the
    annotation jsons, the images and the pseudo-maps, names and bytes), so
    that rebuilt maps or edited points count as other data."""
    import hashlib
    digest = hashlib.sha256()
    for part in DATA_PARTS:
        root = osp.join(data, part)
        for dirpath, dirnames, filenames in sorted(os.walk(root)):
            dirnames.sort()
            for name in sorted(filenames):
                path = osp.join(dirpath, name)
                digest.update(osp.relpath(path, data).encode() + b'\0')
                with open(path, 'rb') as f:
                    digest.update(hashlib.sha256(f.read()).digest())
    return digest.hexdigest()[:16]


def check_cache_data(work_dir: str, data: str) -> None:
    """Refuse a work dir whose cached checkpoints / scores come from other
    data (``<work_dir>/data.json`` records it; written on first use)."""
    record = osp.join(work_dir, 'data.json')
    now = data_fingerprint(data)
    if osp.isfile(record):
        with open(record) as f:
            old = json.load(f)
        if old.get('fingerprint') != now:
            raise SystemExit(
                f'{work_dir} caches results of other data ({old}; {data} '
                f'is now {now}: its annotations, images or pseudo-maps '
                'changed): they would be mixed with new ones. Fix: pass '
                'another --work-dir, or delete that one.')
        return
    if osp.isdir(work_dir) and os.listdir(work_dir):
        raise SystemExit(
            f'{work_dir} holds results but no data.json (made before the '
            'benchmark recorded its data): they may come from other data '
            '(the demo images changed on 2026-11-30). Fix: pass another '
            '--work-dir, or delete that one.')
    os.makedirs(work_dir, exist_ok=True)
    from p2seg_mm.utils.atomic_io import dump_json_atomic
    dump_json_atomic(dict(data=data, fingerprint=now), record)


def train_options(name: str, seed: int, pipe_index: int,
                  extra: List[str]) -> List[str]:
    spec = merge(PAPER, TRAININGS[name])
    opts = flatten('model', spec['model'])
    opts.append(f'train_dataloader.dataset.pipeline.{pipe_index}.dis_group='
                f'{spec["dis_group"]}')
    opts.append(f'train_dataloader.dataset.pipeline.{pipe_index}.grouping='
                f'{spec["grouping"]}')
    opts.append(f'randomness.seed={seed}')
    return opts + list(extra)


def run(cmd: List[str], log: str) -> None:
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
    with open(log, 'a') as f:
        f.write(f'$ {" ".join(cmd)}\n')
        f.flush()
        proc = subprocess.run(cmd, cwd=ROOT, stdout=f, stderr=f, env=env)
    if proc.returncode:
        raise RuntimeError(f'{" ".join(cmd[:3])} ... failed, see {log}')


def checkpoint_of(work: str) -> Optional[str]:
    last = osp.join(work, 'last_checkpoint')
    if not osp.exists(last):
        return None
    with open(last) as f:
        path = f.read().strip()
    # a cache trained from another checkout (a git worktree sharing
    # work_dirs) names that checkout's path: the file is here
    if not osp.exists(path):
        path = osp.join(work, osp.basename(path))
    return path if osp.exists(path) else None


def train_job(args, name: str, seed: int, pipe_index: int) -> str:
    work = osp.join(args.work_dir, name, f'seed{seed}')
    ckpt = checkpoint_of(work)
    final = f'iter_{args.iters}.pth'
    if ckpt and osp.basename(ckpt) == final:
        return ckpt
    os.makedirs(work, exist_ok=True)
    iters = [
        f'train_cfg.max_iters={args.iters}',
        f'train_cfg.val_interval={args.iters}',
        f'param_scheduler.1.end={args.iters}',
        f'default_hooks.checkpoint.interval={args.iters}',
        'val_dataloader=None', 'val_evaluator=None', 'val_cfg=None'
    ]
    cmd = [sys.executable, 'tools/train.py', CONFIG, '--work-dir', work]
    if ckpt:
        cmd.append('--resume')
    # the data scored is the data trained on
    data = [f'train_dataloader.dataset.data_root={args.data.rstrip("/")}/']
    cmd += ['--cfg-options'] + train_options(
        name, seed, pipe_index, iters + data + args.train_options)
    run(cmd, osp.join(work, 'bench.log'))
    return checkpoint_of(work)


def decode(args, row: str, seed: int, ckpt: str, split: str) -> dict:
    """Scores of one row / seed / split (cached in ``<split>.json``)."""
    out = osp.join(args.work_dir, 'scores', row, f'seed{seed}',
                   f'{split}.json')
    if osp.exists(out):
        with open(out) as f:
            return json.load(f)
    os.makedirs(osp.dirname(out), exist_ok=True)
    opts = model_options(ROWS[row][0], args.train_options) \
        if row in ROWS else []
    opts += args.test_options
    cmd = [
        sys.executable, osp.abspath(__file__), '--score-one', row, split,
        '--ckpt', ckpt or '-', '--out', out, '--data', args.data,
        '--config', CONFIG
    ] + (['--test-options'] + opts if opts else [])
    run(cmd, out[:-5] + '.log')
    with open(out) as f:
        return json.load(f)


def score_one(row: str, split: str, ckpt: str, out: str, data: str,
              test_options: List[str]) -> None:
    """Decode one split with one row's inference and score it (child)."""
    from PIL import Image

    from p2seg_mm.evaluation.nearest_point_baseline import \
        nearest_point_masks
    from p2seg_mm.evaluation.pseudo_quality import (evaluate_pseudo_masks,
                                                    load_coco)
    from p2seg_mm.utils.atomic_io import dump_json_atomic
    points = load_coco(osp.join(data, 'annotations', f'{split}_points.json'))
    gt_file = osp.join(data, 'annotations', f'{split}_gt.json')
    gt = load_coco(gt_file)
    cat_ids = [c['id'] for c in points.dataset['categories']]
    anns, t0 = [], time.time()
    if row in NO_LEARNING:
        for img_id in points.getImgIds():
            info = points.imgs[img_id]
            pts = points.imgToAnns[img_id]
            xy = np.array([a['point'] for a in pts], np.float32)
            labels = np.array([cat_ids.index(a['category_id']) for a in pts])
            if row.startswith('nearest') or row == 'geodesic':
                stem = osp.splitext(info['file_name'])[0]
                seg = np.array(
                    Image.open(osp.join(data, 'pseudo_sem', stem + '.png')))
            else:  # ground-truth semantic map
                seg = np.zeros((info['height'], info['width']), np.uint8)
                for ann in gt.imgToAnns[img_id]:
                    seg[gt.annToMask(ann) > 0] = cat_ids.index(
                        ann['category_id']) + 1
            image = None
            if row == 'geodesic':
                image = np.array(Image.open(
                    osp.join(data, 'images', info['file_name'])).convert(
                        'RGB'))
            res = nearest_point_masks(
                seg, xy, labels, len(cat_ids),
                fallback_half_size(CONFIG) if row == 'nearest_fallback'
                else 0, FALLBACK_SCORE,
                grouping='geodesic' if row == 'geodesic' else 'euclidean',
                image=image)
            anns += masks_to_anns(res['masks'], res['scores'], labels, xy,
                                  img_id, cat_ids, len(anns))
    else:
        anns = decode_with_model(row, split, ckpt, data, points, cat_ids,
                                 test_options)
    pseudo = dict(points.dataset, annotations=anns)
    # the no-learning rows give every mask score 1 (fallback squares 0.5):
    # their AP is the mean over random orders of the ties, not the file's
    tie_orders = TIE_ORDERS if row in NO_LEARNING else 0
    scores = evaluate_pseudo_masks(pseudo, gt_file, tie_orders=tie_orders)
    scores['tie_orders'] = tie_orders
    # share of points whose class lost the argmax everywhere near them:
    # they get the fallback square (score = test_cfg.fallback_score)
    for cat in points.dataset['categories']:
        of_cat = [a for a in anns if a['category_id'] == cat['id']]
        scores[f'fallback/{cat["name"]}'] = sum(
            a['score'] == FALLBACK_SCORE
            for a in of_cat) / max(len(of_cat), 1)
    scores['fallback'] = sum(a['score'] == FALLBACK_SCORE
                             for a in anns) / max(len(anns), 1)
    scores['seconds'] = time.time() - t0
    dump_json_atomic(scores, out)


def masks_to_anns(masks, scores, labels, xy, img_id, cat_ids,
                  first_id) -> List[dict]:
    from p2seg_mm.structures.mask_codec import encode_mask
    anns = []
    for k in range(len(masks)):
        ann = dict(
            id=first_id + k + 1,
            image_id=img_id,
            category_id=cat_ids[int(labels[k])],
            segmentation=encode_mask(np.asarray(masks[k])),
            score=float(scores[k]),
            iscrowd=0)
        if xy is not None:
            ann['point'] = [float(v) for v in xy[k]]
        anns.append(ann)
    return anns


def row_test_cfg(row: str) -> dict:
    """The test_cfg options a row decodes with: what a row does not set of
    the keys rows vary is the method's default, not the config's (a
    ``--config`` such as the demo's turns pamr and the given map on)."""
    return {**ROW_TEST_DEFAULTS, **ROWS[row][1]}


def decode_with_model(row, split, ckpt, data, points, cat_ids,
                      test_options) -> List[dict]:
    """The row's own inference (``model.test_step``) on every frame."""
    from p2seg_mm.apis.inference import (build_pipeline, inference_points,
                                         init_point_segmentor)
    test_cfg = row_test_cfg(row)
    opts = {f'model.test_cfg.{k}': v for k, v in test_cfg.items()}
    for opt in test_options:
        key, value = opt.split('=', 1)
        opts[key] = parse_value(value)
    model, cfg, _ = init_point_segmentor(
        osp.join(ROOT, CONFIG), ckpt, cfg_options=opts)
    if test_cfg.get('mode') == 'center':
        model.test_cfg['mode'] = 'center'
    with_seg = model.test_cfg['semantic_source'] == 'pseudo_map'
    pipeline = build_pipeline(cfg, with_seg=with_seg)
    anns = []
    for img_id in points.getImgIds():
        info = points.imgs[img_id]
        pts = points.imgToAnns[img_id]
        xy = np.array([a['point'] for a in pts], np.float32)
        labels = [cat_ids.index(a['category_id']) for a in pts]
        stem = osp.splitext(info['file_name'])[0]
        seg = osp.join(data, 'pseudo_sem', stem + '.png') if with_seg \
            else None
        pred = inference_points(model, pipeline,
                                osp.join(data, 'images', info['file_name']),
                                img_id, xy, labels, seg_map_path=seg)
        point_mode = test_cfg.get('mode', 'point') == 'point'
        anns += masks_to_anns(pred.masks.numpy(), pred.scores.numpy(),
                              pred.labels.numpy(), xy if point_mode else None,
                              img_id, cat_ids, len(anns))
    return anns


def parse_value(text: str):
    """A ``--cfg-options`` value as mmengine parses it: ``'False'`` ->
    False, ``'8'`` -> 8, ``'(128, 128)'`` -> (128, 128), other text stays
    text."""
    from mmengine.config import DictAction
    return DictAction._parse_iterable(text)


def summarise(scores: Dict[str, Dict[str, List[dict]]],
              classes: List[str]) -> List[dict]:
    """Per row / split / class / IoU: mean and std over seeds (in %)."""
    records = []
    for row, by_split in scores.items():
        for split, runs in by_split.items():
            for cls in classes + ['mean']:
                suffix = '' if cls == 'mean' else f'/{cls}'
                mious = [100 * r['point/mIoU' + suffix] for r in runs]
                fallback = [100 * r.get('fallback' + suffix, 0.) for r in runs]
                for iou in IOUS:
                    key = f'voc/mAP{round(100 * iou)}' if cls == 'mean' \
                        else f'voc/AP{round(100 * iou)}/{cls}'
                    values = [100 * r[key] for r in runs]
                    records.append(
                        dict(row=row, split=split, **{'class': cls},
                             iou=iou, mean=statistics.fmean(values),
                             std=spread(values), seeds=len(values),
                             values=values,
                             miou_mean=statistics.fmean(mious),
                             miou_std=spread(mious),
                             fallback_mean=statistics.fmean(fallback)))
    return records


def spread(values: List[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def steps(records: List[dict], split: str, iou: float,
          cls: str = 'mean',
          pairs: Optional[List[tuple]] = None) -> List[dict]:
    """The ladder's steps, each learned row against the one before it (in
    the order of ``records``) and against the first learned row, or the
    ``(base, row)`` ``pairs`` given (``--steps``): the difference of the means over seeds of VOC AP (% points, ``cls`` at IoU
    ``iou``), Welch's t-test p value over the seeds (scipy; ``nan`` when
    a row has one seed or both have no spread) and whether the difference
    is larger than the larger of the two stds ("beyond the spread", the
    demo's and the README's rule for printing a comparison)."""
    from scipy.stats import ttest_ind
    learned = [
        r for r in records
        if (r['split'], r['class'], r['iou']) == (split, cls, iou)
        and r['seeds'] > 1 and 'values' in r
    ]
    if pairs is None:
        pairs = [(a, b) for a, b in zip(learned, learned[1:])]
        pairs += [(learned[0], b) for b in learned[2:]]
    else:
        by_row = {r['row']: r for r in learned}
        pairs = [(by_row[a], by_row[b]) for a, b in pairs
                 if a in by_row and b in by_row]
    out = []
    for a, b in pairs:
        delta = b['mean'] - a['mean']
        if statistics.pstdev(a['values']) + statistics.pstdev(
                b['values']) == 0:
            p = float('nan')
        else:
            p = float(ttest_ind(b['values'], a['values'],
                                equal_var=False).pvalue)
        out.append(dict(base=a['row'], row=b['row'], delta=delta, p=p,
                        beyond=abs(delta) > max(a['std'], b['std'])))
    return out


def select(records: List[dict], row: str, split: str,
           cls: str) -> List[dict]:
    """The records of one row / split / class (one per IoU)."""
    return [
        r for r in records
        if (r['row'], r['split'], r['class']) == (row, split, cls)
    ]


def extra_options(args) -> str:
    """``', --train-options ... --test-options ...'`` when given (the
    header must say how to reproduce the table)."""
    out = ''
    for flag in ('train_options', 'test_options'):
        if getattr(args, flag):
            out += f", --{flag.replace('_', '-')} " + ' '.join(
                f"'{opt}'" for opt in getattr(args, flag))
    return out


def markdown(records: List[dict], args, minutes: float) -> str:
    classes = sorted({r['class'] for r in records} - {'mean'}) + ['mean']
    lines = [
        '# Pseudo-mask quality on the demo cells '
        '(`benchmarks/bench_quality.py`)',
        '',
        f'{datetime.date.today()}, {cpu_model()}, {os.cpu_count()} cores, '
        f'Python {platform.python_version()}; '
        + (f'MDM {CONFIG} with each row\'s switches (ROWS / TRAININGS), '
           f'{args.iters} iterations{extra_options(args)}, '
           f'seeds {args.seeds}; ' if any(r in ROWS for r in args.rows)
           else 'no learned row; ')
        + f'no-learning rows: VOC AP over {TIE_ORDERS} random orders of '
        'their tied scores; this invocation '
        f'{minutes:.0f} min (results cached in {args.work_dir} are '
        'reused). '
        'VOC mask AP (%) at IoU .25 / .5 / .7 / .75 and mean IoU per point '
        '(%), mean ± std over seeds ("train": pseudo-masks of the 30 '
        'training frames; "val": the 10 held-out frames decoded from their '
        'points).', ''
    ]
    for split in ('train', 'val'):
        lines += [f'## {split}', '',
                  '| row | ' + ' | '.join(classes) + ' |',
                  '|---|' + '---|' * len(classes)]
        rows = list(dict.fromkeys(r['row'] for r in records
                                  if r['split'] == split))
        for row in rows:
            cells = []
            for cls in classes:
                recs = select(records, row, split, cls)
                text = ' / '.join(f'{r["mean"]:.1f}±{r["std"]:.1f}'
                                  if r['seeds'] > 1 else f'{r["mean"]:.1f}'
                                  for r in recs)
                cells.append(f'{text}; mIoU {recs[0]["miou_mean"]:.1f}; '
                             f'fallback {recs[0]["fallback_mean"]:.0f} %')
            lines.append(f'| {row} | ' + ' | '.join(cells) + ' |')
        lines.append('')
    lines += step_lines(records, getattr(args, 'steps', None))
    return '\n'.join(lines)


def step_lines(records: List[dict],
               pairs: Optional[List[tuple]] = None) -> List[str]:
    """The markdown of the learned rows' steps (``steps``, ``pairs`` as
    there): mean over classes at AP50 and AP70, both splits."""
    table = {(split, iou): steps(records, split, iou, pairs=pairs)
             for split in ('train', 'val') for iou in (0.5, 0.7)}
    if not table[('train', 0.5)] and not table[('val', 0.5)]:
        return []
    lines = [
        '## Steps between learned rows', '',
        'Mean over classes: difference of the means over seeds (% points), '
        "Welch's t-test p over the seeds, and * when the difference is "
        'larger than the larger std of the two rows.', '',
        '| step | train AP50 | train AP70 | val AP50 | val AP70 |',
        '|---|---|---|---|---|'
    ]
    keys = [(s['base'], s['row']) for s in table[('train', 0.5)]
            or table[('val', 0.5)]]

    def cell(split, iou, key):
        found = [s for s in table[(split, iou)]
                 if (s['base'], s['row']) == key]
        if not found:
            return '-'
        s = found[0]
        return (f"{s['delta']:+.1f}{' *' if s['beyond'] else ''} "
                f"(p {s['p']:.2f})")

    for key in keys:
        lines.append(f'| {key[0]} → {key[1]} | ' + ' | '.join(
            cell(split, iou, key) for split in ('train', 'val')
            for iou in (0.5, 0.7)) + ' |')
    lines.append('')
    return lines


def plot(records: List[dict], path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    classes = sorted({r['class'] for r in records})
    fig, axes = plt.subplots(2, len(classes), figsize=(5 * len(classes), 7),
                             squeeze=False)
    rows = list(dict.fromkeys(r['row'] for r in records))
    colours = plt.cm.tab20(np.linspace(0, 1, max(len(rows), 2)))
    for i, split in enumerate(('train', 'val')):
        for j, cls in enumerate(classes):
            ax = axes[i][j]
            for k, row in enumerate(rows):
                recs = select(records, row, split, cls)
                if recs:
                    ax.errorbar([r['iou'] for r in recs],
                                [r['mean'] for r in recs],
                                yerr=[r['std'] for r in recs], marker='o',
                                capsize=3, label=row, color=colours[k],
                                linestyle=('-', '--', ':')[k % 3])
            ax.set_title(f'{split}: {cls}')
            ax.set_xlabel('IoU threshold')
            ax.set_ylabel('VOC mask AP (%)')
            ax.set_ylim(0, 100)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main(argv=None) -> None:
    global CONFIG
    all_rows = list(NO_LEARNING) + list(ROWS)
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--rows', nargs='+',
                        default=LADDER_ROWS,
                        help='rows to train / decode / score, or "all" '
                        '(default: the 300-iteration ladder, '
                        + ' '.join(LADDER_ROWS) + '); all rows: '
                        + ' '.join(all_rows))
    parser.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2],
                        help='randomness.seed of each training (default: '
                        '0 1 2)')
    parser.add_argument('--iters', type=int,
                        help='training length (default: the config\'s '
                        'train_cfg.max_iters)')
    parser.add_argument('--jobs', type=int, default=2,
                        help='processes side by side (one torch thread '
                        'each; default: 2)')
    parser.add_argument('--data', default=DATA,
                        help=f'data folder (default: {DATA}, built by '
                        'prepare_demo_data.py if missing; another folder '
                        'must hold annotations/{train,val}_{points,gt}.json, '
                        'images/ and pseudo_sem/)')
    parser.add_argument('--config', default=CONFIG,
                        help='the MDM config every row trains and decodes '
                        f'(default: {CONFIG})')
    parser.add_argument('--work-dir', default='work_dirs/bench_quality',
                        help='cache of checkpoints and scores (a rerun '
                        'reuses them; default: work_dirs/bench_quality)')
    parser.add_argument('--out-dir', default='benchmarks/results',
                        help='where quality.md / .json / .png are written '
                        '(default: benchmarks/results, the tracked results: '
                        'pass another folder for a trial run)')
    parser.add_argument('--steps', nargs='+', metavar='BASE:ROW',
                        help='the comparisons at the end of quality.md '
                        '(default: each learned row against the one before '
                        'it in --rows and against the first learned row)')
    parser.add_argument('--train-options', nargs='*', default=[],
                        help='extra --cfg-options for every training')
    parser.add_argument('--test-options', nargs='*', default=[],
                        help='extra key=python-value options at decoding')
    # internal: one decoding in a child process
    parser.add_argument('--score-one', nargs=2, metavar=('ROW', 'SPLIT'),
                        help=argparse.SUPPRESS)
    parser.add_argument('--ckpt', help=argparse.SUPPRESS)
    parser.add_argument('--out', help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    os.chdir(ROOT)
    CONFIG = args.config
    if args.iters is None:
        from mmengine.config import Config
        args.iters = int(
            Config.fromfile(osp.join(ROOT, CONFIG)).train_cfg.max_iters)
    if args.score_one:
        score_one(*args.score_one, args.ckpt, args.out, args.data,
                  args.test_options)
        return
    if args.rows == ['all']:
        args.rows = all_rows
    unknown = set(args.rows) - set(all_rows)
    if unknown:
        parser.error(f'unknown rows {sorted(unknown)}; rows: '
                     f'{" ".join(all_rows)}')
    if args.steps:
        pairs = [tuple(step.split(':')) for step in args.steps]
        bad = [step for step, pair in zip(args.steps, pairs)
               if len(pair) != 2 or not set(pair) <= set(args.rows)
               or not set(pair) <= set(ROWS)]
        if bad:
            parser.error(f'--steps {" ".join(bad)}: each step is BASE:ROW, '
                         'two learned rows among --rows (no-learning rows '
                         'have no seed spread).')
        args.steps = pairs
    if osp.normpath(args.data) == osp.normpath(DATA):
        # builds it, skips it, or stops on one made by an earlier version
        subprocess.run([sys.executable,
                        'tools/dataset_converters/prepare_demo_data.py'],
                       check=True)
    else:
        missing = [part for part in (
            'annotations/train_points.json', 'annotations/train_gt.json',
            'annotations/val_points.json', 'annotations/val_gt.json',
            'images', 'pseudo_sem') if not osp.exists(osp.join(args.data,
                                                                part))]
        if missing:
            parser.error(
                f'--data {args.data} lacks {", ".join(missing)}: the folder '
                'needs the layout of data/demo_cells (points and ground '
                'truth jsons of both splits, images/, pseudo_sem/ maps).')
    check_cache_data(args.work_dir, args.data)
    t0 = time.time()
    pipe_index = dis_group_index()
    learned = [r for r in args.rows if r in ROWS]
    trainings = sorted({ROWS[r][0] for r in learned},
                       key=list(TRAININGS).index)

    def job(name: str, seed: int):
        ckpt = train_job(args, name, seed, pipe_index)
        out = {}
        for row in learned:
            if ROWS[row][0] == name:
                for split in ROWS[row][2]:
                    out[(row, split)] = decode(args, row, seed, ckpt, split)
        return seed, out

    scores: Dict[str, Dict[str, List[dict]]] = {}
    for row in args.rows:
        if row in NO_LEARNING:
            for split in ('train', 'val'):
                scores.setdefault(row, {})[split] = [
                    decode(args, row, 0, None, split)]
    with ThreadPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(job, name, seed) for seed in args.seeds
                   for name in trainings]
        results = [f.result() for f in futures]
    for row in learned:
        for split in ROWS[row][2]:
            scores.setdefault(row, {})[split] = [
                out[(row, split)] for _, out in results
                if (row, split) in out]
    with open(osp.join(args.data, 'annotations', 'train_points.json')) as f:
        classes = [c['name'] for c in json.load(f)['categories']]
    records = summarise(scores, classes)
    os.makedirs(args.out_dir, exist_ok=True)
    from p2seg_mm.utils.atomic_io import dump_json_atomic
    dump_json_atomic(records, osp.join(args.out_dir, 'quality.json'))
    text = markdown(records, args, (time.time() - t0) / 60)
    with open(osp.join(args.out_dir, 'quality.md'), 'w') as f:
        f.write(text + '\n')
    plot(records, osp.join(args.out_dir, 'quality.png'))
    print(text)


if __name__ == '__main__':
    main()
