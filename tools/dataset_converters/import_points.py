# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Import point annotations from annotation tools into our COCO json.

Examples::

    # labelme: a folder of per-image .json files with point shapes
    python tools/dataset_converters/import_points.py --format labelme \\
        my_images/ --img-dir my_images/ --classes cell --out points.json
    # ... and each point's polygon / rectangle / circle as its mask
    # (an evaluation json: segmentation, bbox, area)
    python tools/dataset_converters/import_points.py --format labelme \\
        my_images/ --img-dir my_images/ --keep-masks --out gt.json
    # CVAT for images 1.1 XML, or CVAT's COCO Keypoints json
    python tools/dataset_converters/import_points.py --format cvat \\
        annotations.xml --img-dir images/ --out points.json
    # Label Studio JSON export (keypointlabels)
    python tools/dataset_converters/import_points.py --format labelstudio \\
        export.json --img-dir images/ --out points.json
    # napari points layer of one image (row/col, pixel centres at integers)
    python tools/dataset_converters/import_points.py --format csv \\
        points.csv --img-dir images/ --image img.tif --class nucleus \\
        --columns x=axis-1 y=axis-0 --coords index --out points.json

Writes a COCO instances json whose annotations carry ``point`` ``[x, y]``
in continuous pixel coordinates (the centre of pixel (row i, column j) is
``(j + 0.5, i + 0.5)``), ``category_id`` (``--classes`` order, else sorted
names) and ``iscrowd: 0``, with image sizes read from the files. Each
format's coordinate convention is in ``point_formats.py`` and
``labelme_points.py`` (next to this script). ``--keep-masks`` (labelme
only) pairs each point with its polygon / rectangle / circle (same
``group_id``, else the shape of its label it lies in; the rule and its
errors: ``pair_masks`` in ``labelme_masks.py``).
"""
import argparse
from typing import Dict, List, Optional

from p2seg_mm.utils.atomic_io import dump_json_atomic

# sibling modules (this script's folder is on sys.path)
from point_formats import COORDS
from point_import import FORMATS, import_points


def _columns(pairs: Optional[List[str]]) -> Optional[Dict[str, str]]:
    """``['x=axis-1', ...]`` -> ``{'x': 'axis-1', ...}``."""
    if not pairs:
        return None
    out = {}
    for pair in pairs:
        role, sep, header = pair.partition('=')
        if not sep or role not in ('file', 'x', 'y', 'class'):
            raise SystemExit(f'--columns {pair!r}: use ROLE=HEADER with ROLE '
                             'one of file, x, y, class.')
        out[role] = header
    return out


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('input', help='the export (labelme: file or folder)')
    parser.add_argument('--format', required=True, choices=FORMATS)
    parser.add_argument(
        '--img-dir', required=True, help='folder of the images')
    parser.add_argument('--out', required=True, help='output json')
    parser.add_argument(
        '--classes', nargs='+', help='category order (default: sorted)')
    parser.add_argument(
        '--coords',
        choices=COORDS,
        default='continuous',
        help='csv / COCO keypoints: integers at pixel corners (continuous, '
        'ours, Fiji, CVAT) or at pixel centres (index: napari, COCO dataset '
        'keypoints; adds 0.5)')
    parser.add_argument(
        '--columns',
        nargs='+',
        metavar='ROLE=HEADER',
        help='csv: header of each role (file, x, y, class)')
    parser.add_argument('--image', help='csv without a file column: image')
    parser.add_argument(
        '--class',
        dest='default_class',
        help='csv without a class column: class of every point')
    parser.add_argument(
        '--channel',
        type=int,
        default=None,
        help='plane of multi-page/multi-channel TIFFs')
    parser.add_argument(
        '--keep-masks',
        action='store_true',
        help='labelme: give each point the segmentation, bbox and area of '
        'its polygon/rectangle/circle (same group_id, else the shape of its '
        'label it lies in; an evaluation json). Every point needs one; '
        'shapes without a point are skipped and counted')
    args = parser.parse_args(argv)
    if args.keep_masks and args.format != 'labelme':
        parser.error(f'--keep-masks reads labelme polygons/rectangles/'
                     f'circles; --format {args.format} has no masks.')
    return args


def main(argv: Optional[List[str]] = None) -> dict:
    """Entry point; returns the COCO dict written to ``--out``."""
    args = parse_args(argv)
    try:
        coco, counts = import_points(
            args.format,
            args.input,
            args.img_dir,
            classes=args.classes,
            channel=args.channel,
            keep_masks=args.keep_masks,
            coords=args.coords,
            columns=_columns(args.columns),
            image=args.image,
            default_class=args.default_class)
    except (ValueError, FileNotFoundError) as err:
        # a problem of the user's files: its message names the file and the
        # fix; a traceback would only bury it
        raise SystemExit(f'import_points: {err}') from None
    dump_json_atomic(coco, args.out)
    names = [c['name'] for c in coco['categories']]
    masks = ' with masks' if args.keep_masks else ''
    print(f'wrote {args.out}: {len(coco["images"])} images, '
          f'{len(coco["annotations"])} points{masks}, classes {names}')
    for what, num in sorted(counts.items()):
        if num:
            print(f'  {what}: {num}')
    return coco


if __name__ == '__main__':
    main()
