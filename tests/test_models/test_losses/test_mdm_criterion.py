# Copyright (c) p2seg_mm contributors. All rights reserved.
"""The MDM criterion owns targets, the K-stage loop and the loss dict."""
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
