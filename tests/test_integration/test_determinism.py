# Copyright (c) p2seg_mm contributors. All rights reserved.
"""The same seed twice on the CPU gives identical pseudo-masks (issue #10).

Two short trainings of the demo MDM (its random augmentation: resize, crop,
flip, photometric; two iterations) on the fabricated data, each followed by
the pseudo-mask export of ``PseudoMaskExportHook``: the two jsons are equal
byte for byte (and hold a mask per point).
"""
import json

import torch
from mmengine.runner import Runner

from test_short_training import build_short_run_cfg


def _train_and_export(data_root, work_dir):
    cfg = build_short_run_cfg(data_root, work_dir, max_iters=2, augment=True)
    cfg.custom_hooks = [
        dict(type='PseudoMaskExportHook', out_file='pseudo.json')
    ]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        Runner.from_cfg(cfg).train()
    finally:
        torch.set_num_threads(threads)
    with open(work_dir / 'pseudo.json', 'rb') as f:
        return f.read()


def test_same_seed_same_pseudo_masks(point_dataset, tmp_path):
    first = _train_and_export(point_dataset['root'], tmp_path / 'a')
    second = _train_and_export(point_dataset['root'], tmp_path / 'b')
    assert first == second
    with open(point_dataset['points_json']) as f:
        num_points = len(json.load(f)['annotations'])
    assert len(json.loads(first)['annotations']) == num_points
