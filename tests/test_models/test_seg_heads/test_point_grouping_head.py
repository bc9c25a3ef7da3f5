# Copyright (c) p2seg_mm contributors. All rights reserved.
"""The parameter-free grouping head decodes; the detector only forwards."""
import copy

import pytest
import torch
from mmengine.structures import InstanceData

from mmdet.registry import MODELS
from mmdet.structures.mask import mask2bbox
from p2seg_mm.models.seg_heads import (DEFAULT_TEST_CFG,
                                       P2SegPointGroupingHead)
from tests.builders import build, make_batch


def test_registered_parameter_free_with_checks():
    head = MODELS.build(dict(type='P2SegPointGroupingHead'))
    assert isinstance(head, P2SegPointGroupingHead)
    assert head.test_cfg == DEFAULT_TEST_CFG
    assert not list(head.parameters()) and not head.state_dict()
    with pytest.raises(ValueError, match='mode'):
        P2SegPointGroupingHead(dict(mode='box'))
    with pytest.raises(ValueError, match='semantic_source'):
        P2SegPointGroupingHead(dict(semantic_source='gt'))
    # a misspelt key is refused, not silently left at its default
    with pytest.raises(ValueError, match=r"unknown keys \['groupping'\]"):
        P2SegPointGroupingHead(dict(groupping='offset'))
    with pytest.raises(ValueError, match='geodesic_weight'):
        P2SegPointGroupingHead(dict(geodesic_weight=5))
    # values checked when the model is built, not on the first image
    for bad, match in ((dict(nms_kernel=4), 'nms_kernel must be odd'),
                       (dict(top_k=-3), 'top_k must be an int >= 1'),
                       (dict(fallback_half_size=1.5), 'fallback_half_size'),
                       (dict(min_area=-1), 'min_area')):
        with pytest.raises(ValueError, match=match):
            P2SegPointGroupingHead(bad)


def test_detector_predict_is_the_head_on_the_forward():
    """Same instances from the head called on the raw outputs as from the
    detector; the detector adds them to the samples; no checkpoint key
    belongs to the head or the criterion."""
    model = build().eval()
    assert model.test_cfg is model.grouping_head.test_cfg
    assert not [k for k in model.state_dict()
                if k.startswith(('grouping_head', 'criterion'))]
    data = model.data_preprocessor(make_batch(), False)
    with torch.no_grad():
        want = model(**data, mode='predict')
        outputs = model._forward(data['inputs'])
        got = model.grouping_head.predict(
            *outputs, data['data_samples'],
            affinity_head=model.affinity_head,
            num_walks=model.criterion.num_walks,
            input_size=data['inputs'].shape[-2:])
    assert len(got) == len(want) == 2
    for res, sample in zip(got, want):
        assert isinstance(res, InstanceData)
        assert len(res) == len(sample.gt_instances)
        assert torch.equal(res.masks, sample.pred_instances.masks)
        # boxes: mmdet's convention (x2 = last column + 1), from mmdet
        assert torch.equal(res.bboxes, mask2bbox(res.masks))
        assert res.masks.any()
        torch.testing.assert_close(res.scores, sample.pred_instances.scores)


def test_pseudo_map_source_uses_the_network_map_where_there_is_none():
    """semantic_source='pseudo_map': a sample that carries its map is
    grouped from it, one without (validation / test / new images) from the
    network's map, as with semantic_source='network'; said once in the
    log."""
    from unittest import mock
    batch = make_batch()
    del batch['data_samples'][1].gt_sem_seg
    outs = {}
    for source in ('pseudo_map', 'network'):
        model = build(test_cfg=dict(semantic_source=source)).eval()
        data = model.data_preprocessor(copy.deepcopy(batch), False)
        with torch.no_grad(), mock.patch(
                'p2seg_mm.models.seg_heads.point_grouping_head.print_log'
        ) as log:
            outs[source] = model(**data, mode='predict')
        assert log.called == (source == 'pseudo_map')
    mixed, network = outs['pseudo_map'], outs['network']
    assert torch.equal(mixed[1].pred_instances.masks,
                       network[1].pred_instances.masks)
    assert not torch.equal(mixed[0].pred_instances.masks,
                           network[0].pred_instances.masks)
    # the sample with a map decodes as in a batch where both have maps
    model = build(test_cfg=dict(semantic_source='pseudo_map')).eval()
    data = model.data_preprocessor(make_batch(), False)
    with torch.no_grad():
        both = model(**data, mode='predict')
    assert torch.equal(mixed[0].pred_instances.masks,
                       both[0].pred_instances.masks)
