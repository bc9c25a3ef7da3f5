# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Smoke tests of the P2Seg detector built from the real (shrunk) config."""
import math

import numpy as np
import pytest
import torch

from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from p2seg_mm.models.post_processing.image_decoding import \
    rescale_offsets_and_points
from p2seg_mm.models.utils.batching import refined_semantic_map
from tests.builders import build, make_batch, make_sample, tiny_model_cfg

ALL_KEYS = {
    'loss_sem_seg', 'loss_center', 'loss_offset_static', 'loss_offset_online',
    'loss_affinity_sem', 'loss_affinity_inst'
}


def run_loss(model, batch):
    model.train()
    data = model.data_preprocessor(batch, True)
    return model(**data, mode='loss')


def test_loss_has_all_keys_finite_and_backward():
    model = build()
    losses = run_loss(model, make_batch())
    assert ALL_KEYS <= set(losses)
    for key in ALL_KEYS:
        assert torch.isfinite(losses[key]), key
        assert losses[key].requires_grad, key
    for key in ('loss_sem_seg', 'loss_center', 'loss_offset_static',
                'loss_offset_online', 'loss_affinity_sem',
                'loss_affinity_inst'):
        assert losses[key].item() > 0, key
    assert 0 <= losses['s2i_coverage'].item() <= 1
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    assert model.affinity_head.conv.weight.grad.abs().sum() > 0
    assert model.backbone.conv1.weight.grad is not None


def test_loss_with_empty_targets_is_zero_but_connected():
    model = build()
    losses = run_loss(model, make_batch(empty=True))
    assert ALL_KEYS <= set(losses)
    for key in ALL_KEYS - {'loss_sem_seg'}:
        assert losses[key].item() == 0, key
    assert math.isfinite(losses['loss_sem_seg'].item())
    sum(v for k, v in losses.items() if 'loss' in k).backward()


def test_two_stages_and_switches():
    model = build(train_cfg=dict(num_stages=2))
    losses = run_loss(model, make_batch())
    assert ALL_KEYS <= set(losses)
    sum(v for k, v in losses.items() if 'loss' in k).backward()

    no_i2s = build(train_cfg=dict(use_i2s=False))
    losses = run_loss(no_i2s, make_batch())
    assert set(k for k in losses if 'loss' in
               k) == ALL_KEYS - {'loss_affinity_sem', 'loss_affinity_inst'}
    no_t2 = build(train_cfg=dict(use_inst_affinity=False))
    losses = run_loss(no_t2, make_batch())
    assert 'loss_affinity_inst' not in losses
    assert 'loss_affinity_sem' in losses


def test_predict_point_mode_one_mask_per_point_at_ori_shape():
    model = build().eval()
    batch = make_batch()
    with torch.no_grad():
        data = model.data_preprocessor(batch, False)
        results = model(**data, mode='predict')
    assert len(results) == 2
    for res, num, ori in zip(results, (3, 1), ((122, 140), (128, 128))):
        pred = res.pred_instances
        assert pred.masks.shape == (num, *ori)
        assert pred.masks.dtype == torch.bool
        assert pred.bboxes.shape == (num, 4)
        assert pred.scores.shape == (num, )
    assert results[0].pred_instances.labels.tolist() == [0, 2, 2]


def test_predict_without_rescale_and_center_mode():
    model = build().eval()
    with torch.no_grad():
        data = model.data_preprocessor(make_batch(), False)
        results = model.predict(
            data['inputs'], data['data_samples'], rescale=False)
    assert results[0].pred_instances.masks.shape == (3, 61, 70)
    center = build(test_cfg=dict(mode='center', center_threshold=-1.)).eval()
    with torch.no_grad():
        data = center.data_preprocessor(make_batch(), False)
        results = center(**data, mode='predict')
    for res, ori in zip(results, ((122, 140), (128, 128))):
        masks = res.pred_instances.masks
        assert masks.shape[1:] == ori
        assert len(res.pred_instances.bboxes) == masks.shape[0]


def test_tensor_mode():
    model = build().eval()
    data = model.data_preprocessor(make_batch(), False)
    with torch.no_grad():
        out = model(**data, mode='tensor')
    assert isinstance(out, tuple) and len(out) == 4
    sem, center, offset, embed = out
    assert sem.shape == (2, 4, 16, 24)
    assert center.shape == (2, 3, 16, 24)
    assert offset.shape == (2, 2, 16, 24)
    assert embed.shape == (2, 16, 16, 24)


def test_bad_config_raises():
    cfg = tiny_model_cfg()
    cfg.affinity_head = None
    with pytest.raises(ValueError, match='affinity_head'):
        MODELS.build(cfg)
    cfg = tiny_model_cfg()
    cfg.test_cfg.mode = 'boxes'
    with pytest.raises(ValueError, match='mode'):
        MODELS.build(cfg)


def test_refined_semantic_map_keeps_ignore_and_present_classes():
    log_probs = torch.zeros(1, 4, 2, 2)
    log_probs[0, 3] = 5.  # absent class 2 would win
    log_probs[0, 1, 0, 0] = 1.
    pseudo = torch.tensor([[[0, 255], [1, 1]]])
    out = refined_semantic_map(log_probs, [torch.tensor([0, 1])], pseudo)
    assert out.tolist() == [[[1, 255], [0, 0]]]


def test_rescale_offsets_and_points():
    sample = DetDataSample(
        metainfo=dict(
            img_shape=(50, 40),
            ori_shape=(100, 120),
            scale_factor=(40 / 120, 0.5)))
    offset = torch.ones(2, 100, 120)
    points = torch.tensor([[20., 10.], [39.99, 49.99]])
    off, pts = rescale_offsets_and_points(offset, points, sample)
    assert off[0].unique().tolist() == [3.0]
    assert off[1].unique().tolist() == [2.0]
    assert pts[0].tolist() == pytest.approx([60., 20.])
    assert pts[1, 0] < 120 and pts[1, 1] < 100


def test_unrefined_semantic_loss_and_test_time_i2s_switch():
    model = build(train_cfg=dict(unrefined_sem_loss_weight=0.5))
    losses = run_loss(model, make_batch())
    aux = losses['loss_sem_seg_unrefined']
    assert torch.isfinite(aux) and aux > 0
    assert 'loss_sem_seg_unrefined' not in run_loss(build(), make_batch())

    from unittest import mock
    from p2seg_mm.models.seg_heads import point_grouping_head as p2seg_module
    batch = make_batch()
    outs, probs = [], []
    for use_i2s in (True, False):
        model = build(test_cfg=dict(use_i2s=use_i2s)).eval()
        # features and heads that are not near-uniform (as they are at
        # init), so that the walk matters
        torch.manual_seed(1)
        for part in (model.neck, model.semantic_head, model.affinity_head):
            for mod in part.modules():
                if isinstance(mod, torch.nn.Conv2d):
                    torch.nn.init.normal_(mod.weight, std=0.2)
        torch.manual_seed(0)
        with torch.no_grad(), mock.patch.object(
                p2seg_module, 'decode_single',
                wraps=p2seg_module.decode_single) as decode:
            data = model.data_preprocessor(batch, False)
            outs.append(model(**data, mode='predict'))
        probs.append(decode.call_args_list[0][0][0].log_softmax(0).exp())
    for res in outs[1]:
        assert res.pred_instances.masks.shape[0] == len(res.gt_instances)
    # the switch changes the output: same weights, other probabilities
    assert (probs[0] - probs[1]).abs().max() > 0.05
    with_i2s = torch.cat([r.pred_instances.scores for r in outs[0]])
    without = torch.cat([r.pred_instances.scores for r in outs[1]])
    assert not torch.allclose(with_i2s, without)


def _predict_recording_refine(model, batch):
    """Predict and record every (input, channels, output) of refine."""
    calls = []
    refine = model.affinity_head.refine

    def recording(sem_logits, embed, channels):
        out = refine(sem_logits, embed, channels)
        calls.append((sem_logits, [c.tolist() for c in channels], out))
        return out

    model.affinity_head.refine = recording
    with torch.no_grad():
        data = model.data_preprocessor(batch, False)
        preds = model(**data, mode='predict')
    return preds, calls


def test_predict_applies_the_training_chain_of_k_walks():
    # each image walks on its own (over its cells, not the padding)
    for stages in (1, 2, 3):
        model = build(train_cfg=dict(num_stages=stages)).eval()
        _, calls = _predict_recording_refine(model, make_batch())
        assert len(calls) == 2 * stages  # two images
        for image in (calls[:stages], calls[stages:]):
            for prev, nxt in zip(image, image[1:]):
                assert nxt[0] is prev[2]  # each walk starts from the last
    model = build(train_cfg=dict(num_stages=3, use_i2s=False)).eval()
    _, calls = _predict_recording_refine(model, make_batch())
    assert len(calls) == 2  # trained without I2S: K is not a walk count


def test_predict_walks_over_the_image_not_the_padding():
    """The batch pads the 61 x 70 image to 64 x 96 (size divisor 32; the
    other image is 64 x 64 at scale 0.5): its walk covers only the cells
    of its own pixels, and the padded cells keep the unrefined map."""
    model = build().eval()
    batch = make_batch()
    preds, calls = _predict_recording_refine(model, batch)
    shapes = [tuple(c[0].shape[-2:]) for c in calls]
    with torch.no_grad():
        data = model.data_preprocessor(batch, False)
    pad_h, pad_w = data['inputs'].shape[-2:]
    for shape, sample in zip(shapes, data['data_samples']):
        img_h, img_w = sample.metainfo['img_shape'][:2]
        assert shape == (-(-img_h // 4), -(-img_w // 4))
    assert shapes[0] != (pad_h // 4, pad_w // 4)  # padding left out


def test_center_mode_walks_over_predicted_classes_and_warns():
    from unittest import mock
    model = build(test_cfg=dict(mode='center')).eval()
    model.semantic_head.cls.bias.data[3] = -100.  # class 2 never wins
    batch = make_batch()
    with torch.no_grad():
        data = model.data_preprocessor(batch, False)
        logits = model._forward(data['inputs'])[0]
    won = [lg.argmax(0).unique() for lg in logits]
    with mock.patch('p2seg_mm.models.seg_heads.point_grouping_head.print_log') as log:
        _, calls = _predict_recording_refine(model, batch)
    assert not log.called  # the tiny config trains the centre head
    want = [[0] + [int(c) for c in w if c > 0] for w in won]
    assert [c[1][0] for c in calls] == want  # one walk per image
    assert all(3 not in ch for ch in want)  # not every channel
    untrained = build(
        test_cfg=dict(mode='center'),
        center_offset_head=dict(loss_center_weight=0.0)).eval()
    with mock.patch('p2seg_mm.models.seg_heads.point_grouping_head.print_log') as log:
        _predict_recording_refine(untrained, batch)
    assert 'loss_center_weight=0' in log.call_args[0][0]


def test_pseudo_map_pixels_of_classes_without_points_are_ignored():
    """Class-2 pixels in an image whose points are class 0 only: after
    I2S their channel is constant, so the refined CE must ignore them."""
    def batch_with(value):
        batch = make_batch()
        sem = batch['data_samples'][1].gt_sem_seg.sem_seg
        sem[0, 50:60, 50:60] = value  # image b has one point, of class 1
        return batch

    model = build()
    absent = run_loss(model, batch_with(3))
    ignored = run_loss(build(), batch_with(255))
    assert absent['absent_cls_px'] > 0 and ignored['absent_cls_px'] == 0
    assert_close = torch.testing.assert_close
    assert_close(absent['loss_sem_seg'], ignored['loss_sem_seg'])
    with pytest.raises(ValueError, match='not classes'):
        run_loss(build(), batch_with(7))


def test_affinity_stride_follows_the_head():
    assert build().train_cfg['aff_stride'] == 4
    assert build(affinity_head=dict(pool=2)).train_cfg['aff_stride'] == 8
    model = build(affinity_head=dict(pool=2), train_cfg=dict(aff_stride=8))
    assert model.train_cfg['aff_stride'] == 8
    with pytest.raises(ValueError, match='follows the head'):
        build(train_cfg=dict(aff_stride=8))
    # the pooled head trains: targets on its stride-8 grid
    losses = run_loss(build(affinity_head=dict(pool=2)), make_batch())
    assert torch.isfinite(losses['loss_affinity_sem'])


def test_semantic_source_pseudo_map_groups_the_given_map():
    """semantic_source='pseudo_map': the given map's foreground grouped by
    the offsets; with zero offsets that is the nearest-point baseline."""
    from p2seg_mm.evaluation.nearest_point_baseline import \
        nearest_point_masks
    batch = make_batch()
    model = build(test_cfg=dict(semantic_source='pseudo_map')).eval()
    for conv in model.center_offset_head.offset_branch:
        if isinstance(conv, torch.nn.Conv2d):
            torch.nn.init.zeros_(conv.weight)
            torch.nn.init.zeros_(conv.bias)
    with torch.no_grad():
        data = model.data_preprocessor(batch, False)
        preds = model(**data, mode='predict')
    for pred in preds:
        sem = pred.gt_sem_seg.sem_seg[0]
        height, width = pred.img_shape
        want = nearest_point_masks(sem[:height, :width].numpy(),
                                   pred.gt_instances.points.numpy(),
                                   pred.gt_instances.labels.numpy(), 3)
        got = pred.pred_instances.masks
        # predict rescales to ori_shape (x2 here): compare at input size
        got = torch.nn.functional.interpolate(
            got[None].float(), size=(height, width))[0].bool()
        assert torch.equal(got, torch.from_numpy(want['masks']))
    network = build().eval()
    with torch.no_grad():
        data = network.data_preprocessor(make_batch(), False)
        other = network(**data, mode='predict')
    assert not torch.equal(other[0].pred_instances.masks,
                           preds[0].pred_instances.masks)
    # the map source of a direct call needs the maps
    from p2seg_mm.models.seg_heads.point_grouping_head import \
        pseudo_map_log_probs
    batch = make_batch()
    for sample in batch['data_samples']:
        del sample.gt_sem_seg
    with pytest.raises(ValueError, match='with_seg=True'):
        pseudo_map_log_probs(batch['data_samples'], 4, (64, 70))
    with pytest.raises(ValueError, match='semantic_source'):
        build(test_cfg=dict(semantic_source='gt'))


def test_background_affinity_row_changes_the_t1_loss():
    plain = run_loss(build(), make_batch())
    with_bg = run_loss(build(train_cfg=dict(aff_background=True)),
                       make_batch())
    assert torch.isfinite(with_bg['loss_affinity_sem'])
    assert not torch.isclose(plain['loss_affinity_sem'],
                             with_bg['loss_affinity_sem'])


@pytest.mark.parametrize('rescale', [True, False])
def test_point_decoding_upsamples_only_the_image_classes(rescale):
    """Point mode on an 80-class map: the same masks, labels and scores as
    upsampling all 81 channels, without any 81-channel full-size tensor."""
    from p2seg_mm.models.post_processing.image_decoding import decode_single
    from p2seg_mm.models.utils.batching import resize_bilinear
    from tests.probes import LargestTensor

    torch.manual_seed(0)
    num_classes, size = 80, (64, 72)
    sample = make_sample(61, 70, [(7, (5, 25, 5, 30), [(17.5, 15.5)]),
                                  (42, (30, 55, 35, 65), [(40.5, 40.5)])],
                         scale=0.5, num_classes=num_classes)
    log_probs = torch.randn(num_classes + 1, 16, 18) * 3
    log_probs[8] += 4  # class 7 wins somewhere
    offset = torch.randn(2, *size)
    cfg = dict(build().test_cfg)
    # reference: all 81 channels upsampled, softmax, then decoded
    from p2seg_mm.models.post_processing.image_decoding import (
        rescale_offsets_and_points, to_original_single)
    from p2seg_mm.models.utils.batching import image_labels
    from p2seg_mm.models.post_processing.point_decoding import \
        decode_instances_with_points
    prob = to_original_single(
        resize_bilinear(log_probs[None], size)[0], sample,
        rescale).log_softmax(0).exp()
    off = to_original_single(offset, sample, rescale)
    points = sample.gt_instances.points
    if rescale:
        off, points = rescale_offsets_and_points(off, points, sample)
    want = decode_instances_with_points(
        prob, off, points, sample.gt_instances.labels,
        img_labels=image_labels(sample),
        fallback_half_size=cfg['fallback_half_size'],
        fallback_score=cfg['fallback_score'])
    assert want['masks'].any()  # not a comparison of empty masks
    with LargestTensor() as probe:
        got = decode_single(log_probs, None, offset, sample, cfg, rescale,
                            size)
    assert torch.equal(got.masks, want['masks'])
    assert torch.equal(got.labels, want['labels'])
    torch.testing.assert_close(got.scores, want['scores'])
    height, width = got.masks.shape[-2:]
    assert probe.max_numel < 10 * max(height * width, size[0] * size[1])


def model_cfg_with_pamr():
    from p2seg_mm.models.seg_heads.point_grouping_head import \
        DEFAULT_TEST_CFG
    return {**DEFAULT_TEST_CFG, 'pamr': dict(num_iter=1,
                                             dilations=(1, ),
                                             temperature=0.1)}


def test_pamr_switch_refines_the_network_map_with_the_input():
    """test_cfg.pamr: the probabilities that reach the grouping are the
    bilinear ones refined by pamr_refine with the network input (cropped to
    the image, at the output size); the masks change; a given map is not
    refined; bad settings fail at build time."""
    from unittest import mock

    from p2seg_mm.models.post_processing import image_decoding
    from p2seg_mm.models.post_processing.pixel_refinement import \
        pamr_refine
    batch = make_batch()
    got = {}
    for name, pamr in (('off', None), ('on', dict(num_iter=5))):
        model = build(test_cfg=dict(pamr=pamr, use_i2s=False)).eval()
        torch.manual_seed(1)
        for part in (model.neck, model.semantic_head):
            for mod in part.modules():
                if isinstance(mod, torch.nn.Conv2d):
                    torch.nn.init.normal_(mod.weight, std=0.2)
        with torch.no_grad(), mock.patch.object(
                image_decoding, 'decode_instances_with_points',
                wraps=image_decoding.decode_instances_with_points) as dec:
            data = model.data_preprocessor(batch, False)
            preds = model(**data, mode='predict')
        got[name] = ([c[0][0] for c in dec.call_args_list], preds, data)
    probs_off, preds_off, data = got['off']
    probs_on, preds_on, _ = got['on']
    for i, sample in enumerate(data['data_samples']):
        height, width = sample.img_shape[:2]
        image = data['inputs'][i][:, :height, :width][None].float()
        image = torch.nn.functional.interpolate(
            image, size=sample.ori_shape[:2], mode='bilinear',
            align_corners=False)[0]
        want = pamr_refine(image, probs_off[i], num_iter=5)
        assert torch.allclose(probs_on[i], want, atol=1e-5)
    assert any(not torch.equal(a.pred_instances.masks, b.pred_instances.masks)
               for a, b in zip(preds_off, preds_on))
    # the given pseudo-map is not refined
    masks = []
    for pamr in (None, dict()):
        model = build(test_cfg=dict(pamr=pamr,
                                    semantic_source='pseudo_map')).eval()
        with torch.no_grad():
            data = model.data_preprocessor(make_batch(), False)
            masks.append([p.pred_instances.masks
                          for p in model(**data, mode='predict')])
    assert all(torch.equal(a, b) for a, b in zip(*masks))
    with pytest.raises(ValueError, match='unknown keys'):
        build(test_cfg=dict(pamr=dict(iters=3)))
    with pytest.raises(ValueError, match='test_cfg.pamr.temperature'):
        build(test_cfg=dict(pamr=dict(temperature=-1)))
    for bad in ('dict(num_iter=3)', True, [10]):
        with pytest.raises(ValueError, match='one by one'):
            build(test_cfg=dict(pamr=bad))
    # decode_single refuses to drop a requested refinement silently
    with pytest.raises(ValueError, match='image='):
        image_decoding.decode_single(
            torch.zeros(4, 8, 8), None, torch.zeros(2, 8, 8),
            preds_on[0], model_cfg_with_pamr(), True)
    model = build(test_cfg=dict(pamr=dict())).eval()
    with pytest.raises(ValueError, match='inputs='):
        model.grouping_head.predict(
            torch.zeros(1, 4, 4, 4), torch.zeros(1, 3, 4, 4),
            torch.zeros(1, 2, 4, 4), None,
            [make_sample(16, 16, [(0, (2, 6, 2, 6), [(4., 4.)])])])


def test_geodesic_grouping_switch_splits_by_the_raw_image():
    """test_cfg.grouping='geodesic': the grouping gets the edge map of the
    input before normalisation (the data preprocessor undone, at the output
    size), and the masks change; 'offset' (the method) calls it with no
    edge; bad settings fail at build time or without the raw input."""
    from unittest import mock

    from p2seg_mm.models.post_processing import image_decoding
    from p2seg_mm.models.task_modules.geodesic_grouping import \
        image_edge_cost
    batch = make_batch(scale=1.0)
    got = {}
    for grouping in ('offset', 'geodesic'):
        model = build(test_cfg=dict(grouping=grouping, use_i2s=False)).eval()
        torch.manual_seed(1)
        for mod in model.center_offset_head.modules():
            if isinstance(mod, torch.nn.Conv2d):
                torch.nn.init.normal_(mod.weight, std=0.2)
        # class 2 (two points in the first image) wins everywhere: the two
        # groupings must split that foreground differently
        torch.nn.init.zeros_(model.semantic_head.cls.weight)
        torch.nn.init.zeros_(model.semantic_head.cls.bias)
        model.semantic_head.cls.bias.data[3] = 10.0
        with torch.no_grad(), mock.patch.object(
                image_decoding, 'decode_instances_with_points',
                wraps=image_decoding.decode_instances_with_points) as dec:
            data = model.data_preprocessor(batch, False)
            preds = model(**data, mode='predict')
        got[grouping] = ([c.kwargs for c in dec.call_args_list], preds)
    for kw in got['offset'][0]:
        assert kw['grouping'] == 'offset' and kw['edge'] is None
    for i, kw in enumerate(got['geodesic'][0]):
        assert kw['grouping'] == 'geodesic' and kw['edge_weight'] == 30.0
        height, width = batch['data_samples'][i].ori_shape[:2]
        raw = batch['inputs'][i].float().permute(1, 2, 0).numpy()
        np.testing.assert_allclose(
            kw['edge'], image_edge_cost(raw[:height, :width]), atol=1e-3)
    assert any(not torch.equal(a.pred_instances.masks, b.pred_instances.masks)
               for a, b in zip(got['offset'][1], got['geodesic'][1]))
    with pytest.raises(ValueError, match='test_cfg.grouping'):
        build(test_cfg=dict(grouping='watershed'))
    with pytest.raises(ValueError, match='test_cfg.geodesic_edge_weight'):
        build(test_cfg=dict(geodesic_edge_weight=-1))
    model = build(test_cfg=dict(grouping='geodesic')).eval()
    with pytest.raises(ValueError, match='raw_inputs='):
        model.grouping_head.predict(
            torch.zeros(1, 4, 4, 4), torch.zeros(1, 3, 4, 4),
            torch.zeros(1, 2, 4, 4), None,
            [make_sample(16, 16, [(0, (2, 6, 2, 6), [(4., 4.)])])])
