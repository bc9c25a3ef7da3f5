# Copyright (c) p2seg_mm contributors. All rights reserved.
"""PASCAL VOC 2012 + SBD instance masks to COCO instances jsons.

Splits (the usual ``train_aug`` protocol):

- ``train_aug``: VOC ``train`` + SBD ``train`` + SBD ``val`` minus VOC
  ``val`` (10,582 images on the real data);
- ``val``: VOC ``val`` (1,449 images).

Where an image has both VOC and SBD annotations the VOC ones are used.
Sources:

- VOC: ``VOC2012/SegmentationObject/<id>.png`` holds instance ids (255 =
  boundary / ignore, belongs to no instance), the class of an instance is
  the majority class of its pixels in ``SegmentationClass/<id>.png``
  (ignoring 0 and 255); splits from ``ImageSets/Segmentation/*.txt``.
- SBD (``benchmark_RELEASE``): ``dataset/inst/<id>.mat`` with the struct
  ``GTinst`` (``Segmentation`` (H, W) instance ids, ``Categories`` 1-based
  class per instance); splits ``dataset/{train,val}.txt``.

Images are ``VOC2012/JPEGImages/<id>.jpg`` (the file name in the json);
sizes come from the masks. Category ids are 1..20.
"""
import os.path as osp
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from p2seg_mm.structures.mask_codec import mask_to_annotation
from p2seg_mm.utils.atomic_io import dump_json_atomic

VOC_CLASSES = ('aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car',
               'cat', 'chair', 'cow', 'diningtable', 'dog', 'horse',
               'motorbike', 'person', 'pottedplant', 'sheep', 'sofa', 'train',
               'tvmonitor')
IGNORE = 255

Instance = Tuple[np.ndarray, int]  # (bool mask (H, W), category id 1..20)


def _need_file(path: str, what: str) -> str:
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'{what} not found: {path}; check --voc-root / --sbd-root (VOC '
            'root holds JPEGImages, SBD root holds dataset/inst).')
    return path


def read_split(path: str) -> List[str]:
    """Image ids listed one per line in a split file."""
    with open(_need_file(path, 'split file')) as f:
        return [line.strip() for line in f if line.strip()]


def resolve_roots(voc_root: str,
                  sbd_root: Optional[str]) -> Tuple[str, Optional[str]]:
    """Accept the VOCdevkit / benchmark_RELEASE parents as well."""
    if osp.isdir(osp.join(voc_root, 'VOC2012')):
        voc_root = osp.join(voc_root, 'VOC2012')
    if sbd_root is not None and osp.isdir(osp.join(sbd_root, 'dataset')):
        sbd_root = osp.join(sbd_root, 'dataset')
    return voc_root, sbd_root


def voc_instances(obj_map: np.ndarray,
                  cls_map: np.ndarray,
                  name: str = '') -> List[Instance]:
    """Instances of a VOC object map (ids, 255 ignore) and class map."""
    if obj_map.shape != cls_map.shape:
        raise ValueError(f'{name}: SegmentationObject shape {obj_map.shape} '
                         f'differs from SegmentationClass {cls_map.shape}.')
    out = []
    for inst_id in np.unique(obj_map):
        if inst_id in (0, IGNORE):
            continue
        mask = obj_map == inst_id
        cls = cls_map[mask]
        cls = cls[(cls != 0) & (cls != IGNORE)]
        if cls.size == 0:
            warnings.warn(f'{name}: instance {inst_id} has no class pixels; '
                          'skipped.')
            continue
        cat = int(np.bincount(cls).argmax())
        if not 1 <= cat <= len(VOC_CLASSES):
            raise ValueError(f'{name}: instance {inst_id} has class {cat} '
                             'outside 1..20.')
        out.append((mask, cat))
    return out


def load_voc_instances(voc_root: str,
                       img_id: str) -> Tuple[Tuple[int, int], List[Instance]]:
    """Read ``((H, W), instances)`` of one VOC image (palette PNGs)."""
    obj = _need_file(
        osp.join(voc_root, 'SegmentationObject', img_id + '.png'),
        'VOC SegmentationObject png')
    cls = _need_file(
        osp.join(voc_root, 'SegmentationClass', img_id + '.png'),
        'VOC SegmentationClass png')
    obj_map = np.array(Image.open(obj))
    cls_map = np.array(Image.open(cls))
    if obj_map.ndim != 2 or cls_map.ndim != 2:
        raise ValueError(f'{obj} / {cls}: expected single-channel palette '
                         '(mode P) PNGs as shipped with VOC 2012.')
    return obj_map.shape[:2], voc_instances(obj_map, cls_map, name=obj)


def _field(struct, name: str):
    """Field ``name`` of whatever scipy.io.loadmat gives for a struct."""
    while isinstance(struct, np.ndarray) and struct.dtype == object:
        if struct.size != 1:
            raise ValueError(f'expected a 1x1 struct, got {struct.shape}')
        struct = struct.reshape(-1)[0]
    if isinstance(struct, np.ndarray) and struct.dtype.names:
        value = struct.reshape(-1)[0][name]
    elif isinstance(struct, np.void):
        value = struct[name]
    elif isinstance(struct, dict):
        value = struct[name]
    else:
        value = getattr(struct, name)
    while (isinstance(value, np.ndarray) and value.dtype == object
           and value.size == 1):
        value = value.reshape(-1)[0]
    return value


def sbd_instances(gt_inst,
                  name: str = '') -> Tuple[Tuple[int, int], List[Instance]]:
    """``((H, W), instances)`` of a loaded SBD ``GTinst`` struct."""
    try:
        seg = np.asarray(_field(gt_inst, 'Segmentation'))
        cats = np.atleast_1d(np.asarray(_field(gt_inst, 'Categories')))
    except (AttributeError, KeyError, ValueError) as e:
        raise ValueError(f'{name}: GTinst lacks Segmentation/Categories '
                         f'({e}); is this an SBD inst/*.mat file?') from e
    if seg.ndim != 2:
        raise ValueError(f'{name}: GTinst.Segmentation has shape '
                         f'{seg.shape}, expected (H, W).')
    cats = cats.reshape(-1).astype(np.int64)
    out = []
    for k, cat in enumerate(cats, start=1):
        mask = seg == k
        if not mask.any():
            warnings.warn(f'{name}: SBD instance {k} is empty; skipped.')
            continue
        if not 1 <= cat <= len(VOC_CLASSES):
            raise ValueError(f'{name}: instance {k} has class {cat} outside '
                             '1..20.')
        out.append((mask, int(cat)))
    return seg.shape[:2], out


def load_sbd_instances(sbd_root: str,
                       img_id: str) -> Tuple[Tuple[int, int], List[Instance]]:
    """Read ``((H, W), instances)`` of one image from ``inst/<id>.mat``."""
    from scipy.io import loadmat
    path = _need_file(
        osp.join(sbd_root, 'inst', img_id + '.mat'), 'SBD inst mat')
    mat = loadmat(path, squeeze_me=True, struct_as_record=False)
    if 'GTinst' not in mat:
        raise ValueError(f'{path}: no GTinst variable; not an SBD inst mat.')
    return sbd_instances(mat['GTinst'], name=path)


def split_ids(voc_root: str,
              sbd_root: Optional[str]) -> Dict[str, Dict[str, str]]:
    """Map split -> {image id: 'voc' | 'sbd'} (VOC preferred)."""
    seg_sets = osp.join(voc_root, 'ImageSets', 'Segmentation')
    voc_train = read_split(osp.join(seg_sets, 'train.txt'))
    voc_val = read_split(osp.join(seg_sets, 'val.txt'))
    val_set = set(voc_val)
    train: Dict[str, str] = {}
    if sbd_root is not None:
        for split in ('train', 'val'):
            for i in read_split(osp.join(sbd_root, split + '.txt')):
                if i not in val_set:
                    train[i] = 'sbd'
    for i in voc_train:
        if i not in val_set:
            train[i] = 'voc'
    return dict(
        train_aug=dict(sorted(train.items())),
        val={i: 'voc'
             for i in sorted(voc_val)})


def build_coco(
        records: Sequence[Tuple[str, Tuple[int, int],
                                List[Instance]]]) -> dict:
    """COCO instances dict from ``(image id, (H, W), instances)``."""
    images, anns = [], []
    for img_idx, (name, (h, w), insts) in enumerate(records, start=1):
        images.append(
            dict(id=img_idx, file_name=name + '.jpg', height=h, width=w))
        for mask, cat in insts:  # non-empty masks
            anns.append(
                dict(id=len(anns) + 1, **mask_to_annotation(mask, img_idx,
                                                            cat)))
    cats = [dict(id=i + 1, name=n) for i, n in enumerate(VOC_CLASSES)]
    return dict(images=images, annotations=anns, categories=cats)


def convert_voc_sbd(voc_root: str,
                    sbd_root: Optional[str],
                    out_dir: str,
                    splits: Sequence[str] = ('train_aug', 'val'),
                    progress: bool = True) -> Dict[str, str]:
    """Write ``voc_2012_<split>.json`` files; returns split -> path.

    Args:
        voc_root (str): ``VOC2012`` directory (or its ``VOCdevkit`` parent).
        sbd_root (str, optional): SBD ``dataset`` directory (or its
            ``benchmark_RELEASE`` parent); None uses VOC only.
        out_dir (str): Output directory.
        splits (Sequence[str]): Any of ``'train_aug'``, ``'val'``.
            Defaults to ('train_aug', 'val').
        progress (bool): Show tqdm bars. Defaults to True.
    """
    voc_root, sbd_root = resolve_roots(voc_root, sbd_root)
    ids = split_ids(voc_root, sbd_root)
    written = {}
    for split in splits:
        if split not in ids:
            raise ValueError(f'unknown split {split!r}; use train_aug/val.')
        items = ids[split].items()
        if progress:
            from tqdm import tqdm
            items = tqdm(items, desc=f'VOC+SBD {split}', unit='img')
        records = []
        for img_id, src in items:
            if src == 'voc':
                shape, insts = load_voc_instances(voc_root, img_id)
            else:
                shape, insts = load_sbd_instances(sbd_root, img_id)
            records.append((img_id, tuple(int(s) for s in shape), insts))
        path = osp.join(out_dir, f'voc_2012_{split}.json')
        dump_json_atomic(build_coco(records), path)
        written[split] = path
    return written
