# Copyright (c) p2seg_mm contributors. All rights reserved.
"""The resumable export loop: pending images only, merge when none is
left, the runner's test hooks called or not."""
import os.path as osp
from unittest import mock

import numpy as np
import pytest
import torch

from p2seg_mm.engine.runner import PseudoMaskExportLoop
from p2seg_mm.evaluation.metrics.pseudo_mask_dumper import (
    PseudoMaskDumper, load_done_image_ids)
from tests.export_helpers import (check_json, expected_squares,
                                  runner)  # noqa: F401 (fixture)

PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadP2SegAnnotations', with_seg=False),
    dict(type='PackP2SegInputs')
]


def _loop(runner, out_file, resume=True, call_hooks=True, score_thr=0.0):
    dataset = dict(runner.cfg.train_dataloader.dataset, pipeline=PIPELINE)
    return PseudoMaskExportLoop(
        runner,
        dict(batch_size=1, num_workers=0, dataset=dataset,
             sampler=dict(type='DefaultSampler', shuffle=False)),
        dict(type='PseudoMaskDumper', out_file=out_file,
             ann_file=osp.join(dataset['data_root'], dataset['ann_file']),
             resume=resume, score_thr=score_thr),
        call_hooks=call_hooks)


def _interrupted(out_file, ann_file, img_ids):
    crashed = PseudoMaskDumper(out_file=out_file, ann_file=ann_file)
    crashed.dataset_meta = dict(classes=('cat', 'dog'))
    for img_id in img_ids:
        mask = torch.from_numpy(np.stack(expected_squares(img_id)))
        labels = torch.tensor([0, 1][:len(mask)])
        crashed.process({}, [dict(img_id=img_id, pred_instances=dict(
            masks=mask, labels=labels, scores=torch.full((len(mask), ),
                                                         .5)))])


def test_predicts_only_pending_images_then_merges(runner, tmp_path):
    out_file = str(tmp_path / 'pseudo.json')
    _interrupted(out_file, str(tmp_path / 'train.json'), [2])
    runner.call_hook = mock.Mock()
    loop = _loop(runner, out_file)
    assert loop.num_done == 1 and len(loop.dataloader.dataset) == 2
    metrics = loop.run()
    assert sorted(i for *_, ids in runner.model.calls for i in ids) == [1, 3]
    assert metrics['pseudo/num_annotations'] == 4
    check_json(out_file)
    assert load_done_image_ids(out_file) == set()
    hooks = [c[0][0] for c in runner.call_hook.call_args_list]
    assert hooks[:2] == ['before_test', 'before_test_epoch']
    assert hooks[-1] == 'after_test'


def test_all_done_predicts_nothing_and_no_resume_predicts_all(
        runner, tmp_path):
    out_file = str(tmp_path / 'pseudo.json')
    _interrupted(out_file, str(tmp_path / 'train.json'), [1, 2, 3])
    loop = _loop(runner, out_file, call_hooks=False)
    assert len(loop.dataloader.dataset) == 0
    loop.run()
    assert runner.model.calls == []
    check_json(out_file)
    loop = _loop(runner, str(tmp_path / 'again.json'), resume=False,
                 call_hooks=False)
    _interrupted(str(tmp_path / 'again.json'), str(tmp_path / 'train.json'),
                 [1])  # a stale sidecar is ignored without resume
    assert loop.num_done == 0 and len(loop.dataloader.dataset) == 3


def test_needs_a_dumper(runner, tmp_path):
    with pytest.raises(ValueError, match='PseudoMaskDumper'):
        PseudoMaskExportLoop(runner, dict(dataset=dict()),
                             dict(type='VOCInstanceMetric'))


def test_resume_with_other_settings_is_refused(runner, tmp_path):
    """An export interrupted with one score threshold is not completed with
    another (its images would be mixed in one json); with the same
    settings it resumes, and the finished export leaves no settings file."""
    from p2seg_mm.engine.runner.pseudo_export_loop import settings_path
    out_file = str(tmp_path / 'pseudo.json')
    _loop(runner, out_file, call_hooks=False)  # records its settings
    assert osp.exists(settings_path(out_file))
    _interrupted(out_file, str(tmp_path / 'train.json'), [2])  # then died
    with pytest.raises(ValueError, match='score_thr'):
        _loop(runner, out_file, call_hooks=False, score_thr=0.3)
    loop = _loop(runner, out_file, call_hooks=False)
    assert loop.num_done == 1
    loop.run()
    check_json(out_file)
    assert not osp.exists(settings_path(out_file))
