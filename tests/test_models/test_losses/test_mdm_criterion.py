# Copyright (c) p2seg_mm contributors. All rights reserved.
"""The MDM criterion owns targets, the K-stage loop and the loss dict."""
import re

import pytest
import torch

from mmdet.registry import MODELS
from p2seg_mm.models.losses import (DEFAULT_TRAIN_CFG, MDMHeads,
                                    P2SegMDMCriterion)
from tests.builders import build, make_batch


def test_registered_defaults_and_checks():
    crit = MODELS.build(dict(type='P2SegMDMCriterion'))
    assert isinstance(crit, P2SegMDMCriterion)
    assert {k: crit.train_cfg[k] for k in DEFAULT_TRAIN_CFG} == \
        DEFAULT_TRAIN_CFG
    assert crit.train_cfg['aff_stride'] == 4 and crit.num_walks == 1
    assert P2SegMDMCriterion(dict(num_stages=3)).num_walks == 3
    assert P2SegMDMCriterion(dict(num_stages=3, use_i2s=False)).num_walks == 1
    with pytest.raises(ValueError, match='num_stages'):
        P2SegMDMCriterion(dict(num_stages=0))
    with pytest.raises(ValueError, match='aff_stride'):
        P2SegMDMCriterion(dict(aff_stride=4), aff_stride=8)


def test_detector_loss_is_the_criterion_on_the_forward():
    """The detector's loss is the criterion applied to its raw outputs and
    heads: same dict, same values; the model's train_cfg is the
    criterion's (one dict)."""
    model = build().train()
    assert model.train_cfg is model.criterion.train_cfg
    data = model.data_preprocessor(make_batch(), True)
    torch.manual_seed(0)
    want = model(**data, mode='loss')
    torch.manual_seed(0)
    outputs = model._forward(data['inputs'])
    got = model.criterion.loss(
        outputs,
        MDMHeads(model.semantic_head, model.center_offset_head,
                 model.affinity_head), data['data_samples'],
        data['inputs'].shape[-2:])
    assert set(got) == set(want)
    for key in want:
        torch.testing.assert_close(got[key], want[key])


def test_i2s_window_checks_and_draws_on_the_affinity_grid():
    for bad in ((6, 8), (8, ), (0, 8), (8, -4), 128, (8.5, 8), '(8, 8)'):
        with pytest.raises(ValueError, match='i2s_window'):
            P2SegMDMCriterion(dict(i2s_window=bad))
    crit = P2SegMDMCriterion(dict(i2s_window=[8, 12]))
    assert crit.train_cfg['i2s_window'] == (8, 12)
    torch.manual_seed(0)
    starts = set()
    for _ in range(50):
        rows, cols = crit._i2s_window((64, 40))
        assert rows.stop - rows.start == 8 and cols.stop - cols.start == 12
        assert rows.start % 4 == 0 and cols.start % 4 == 0
        assert 0 <= rows.start <= 56 and 0 <= cols.start <= 28
        starts.add((rows.start, cols.start))
    assert len(starts) > 10  # drawn, not fixed
    # a window as large as the input, or I2S off: the whole crop, said once
    from unittest import mock
    with mock.patch(
            'p2seg_mm.models.losses.mdm_criterion.print_log') as log:
        assert crit._i2s_window((8, 12)) is None
        assert crit._i2s_window((6, 10)) is None
    assert log.call_count == 1 and 'covers the whole' in log.call_args[0][0]
    assert P2SegMDMCriterion(dict(i2s_window=(8, 8),
                                  use_i2s=False))._i2s_window((64, 64)) is None


def _criterion_losses(model, window):
    data = model.data_preprocessor(make_batch(), True)
    outputs = model._forward(data['inputs'])
    model.criterion._i2s_window = lambda size: window
    return model.criterion.loss(
        outputs,
        MDMHeads(model.semantic_head, model.center_offset_head,
                 model.affinity_head), data['data_samples'],
        data['inputs'].shape[-2:])


def test_i2s_window_restricts_the_affinity_terms_to_the_window():
    """The window changes exactly the I2S terms (affinity losses, refined
    CE); the windowed T1 loss is the head's loss on the window's cells and
    the window's T1 memberships."""
    from p2seg_mm.models.task_modules.target_generators.affinity_target \
        import semantic_membership
    from p2seg_mm.models.utils.batching import image_labels, stack_sem_seg
    model = build().train()
    # logits that differ between pixels (the init gives ~0 everywhere)
    torch.manual_seed(1)
    for conv in (model.semantic_head.cls, model.affinity_head.conv):
        torch.nn.init.normal_(conv.weight, std=0.5)
    window = (slice(16, 48), slice(8, 40))
    torch.manual_seed(0)
    whole = _criterion_losses(model, None)
    torch.manual_seed(0)
    part = _criterion_losses(model, window)
    for key in ('loss_affinity_sem', 'loss_affinity_inst', 'loss_sem_seg'):
        assert not torch.allclose(part[key], whole[key]), key
    for key in ('loss_center', 'loss_offset_static', 'loss_offset_online'):
        torch.testing.assert_close(part[key], whole[key])
    # by hand: T1 on the window's 8 x 8 cells (stride 4)
    data = model.data_preprocessor(make_batch(), True)
    size = data['inputs'].shape[-2:]
    with torch.no_grad():
        embed = model._forward(data['inputs']).embed[..., 4:12, 2:10]
    gt_sem = stack_sem_seg(data['data_samples'], tuple(size))
    members = [
        semantic_membership(seg[window], image_labels(s).tolist(), 4,
                            model.criterion.train_cfg['aff_membership'],
                            model.criterion.train_cfg['aff_background'])
        for seg, s in zip(gt_sem, data['data_samples'])
    ]
    want = model.affinity_head.loss(embed, members, kind='sem')
    torch.testing.assert_close(part['loss_affinity_sem'].detach(), want)


def test_i2s_window_with_two_stages_groups_the_refined_window():
    """K = 2: the second stage groups the refined map inside the window and
    the pseudo-map outside; the losses stay finite and differ from K = 1."""
    window = (slice(16, 48), slice(8, 40))
    losses = {}
    for stages in (1, 2):
        model = build(train_cfg=dict(num_stages=stages)).train()
        torch.manual_seed(1)
        for conv in (model.semantic_head.cls, model.affinity_head.conv):
            torch.nn.init.normal_(conv.weight, std=0.5)
        torch.manual_seed(0)
        losses[stages] = _criterion_losses(model, window)
    assert all(torch.isfinite(v).all() for v in losses[2].values())
    assert not torch.allclose(losses[2]['loss_sem_seg'],
                              losses[1]['loss_sem_seg'])


@pytest.mark.parametrize('train_cfg, message', [
    (dict(use_i2z=False), "unknown keys ['use_i2z']"),
    (dict(use_i2s='Flase'), 'train_cfg.use_i2s must be True or False'),
    (dict(aff_membership='majorty'), 'train_cfg.aff_membership'),
])
def test_train_cfg_typos_are_refused(train_cfg, message):
    """A misspelt key or a string switch used to keep the default (or turn
    I2S on) silently; the valid spellings still build."""
    with pytest.raises(ValueError, match=re.escape(message)):
        P2SegMDMCriterion(train_cfg=train_cfg)
    crit = P2SegMDMCriterion(train_cfg=dict(
        use_i2s=False, aff_membership='majority', aff_stride=4))
    assert crit.train_cfg['use_i2s'] is False
