# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Score exported pseudo-masks against ground-truth masks.

Example::

    python tools/analysis_tools/eval_pseudo_masks.py \\
        work_dirs/p2seg/pseudo_train.json data/voc/voc12_train_gt.json \\
        --out-json work_dirs/p2seg/pseudo_quality.json

Prints COCO segm AP, VOC mAP at IoU .25/.5/.7/.75 and the mean IoU per
point (see ``p2seg_mm/evaluation/pseudo_quality.py``). VOC AP averages
``--tie-orders`` random orders of equal scores (COCO AP keeps the file
order).

Images are matched by id; every shared id must name the same ``file_name``
in both jsons (a ground truth of other images stops with the first
mismatches, instead of scoring zeros).
"""
import argparse
import json
import os
import os.path as osp

from p2seg_mm.datasets.data_checks import (DataCheckError,
                                           check_coco_structure,
                                           check_segmentations, errors_of)
from p2seg_mm.evaluation.pseudo_quality import (check_same_files,
                                                evaluate_pseudo_masks,
                                                format_quality_table)
from p2seg_mm.utils.atomic_io import dump_json_atomic


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Evaluate a pseudo-mask json against ground truth')
    parser.add_argument('pseudo', help='pseudo-label json (exported)')
    parser.add_argument('gt', help='ground-truth COCO json with masks')
    parser.add_argument(
        '--iou-thrs',
        type=float,
        nargs='+',
        default=[0.25, 0.5, 0.7, 0.75],
        help='VOC AP IoU thresholds')
    parser.add_argument(
        '--tie-orders',
        type=int,
        default=20,
        help='VOC AP is the mean over this many random orders of masks '
        'with equal scores (the nearest-point baseline gives all of them '
        'score 1, and the file order would rank them); 0 keeps the file '
        'order, as the VOC devkit and COCO do (default: 20)')
    parser.add_argument('--out-json', help='save the numbers to this json')
    args = parser.parse_args(argv)
    if args.tie_orders < 0:
        parser.error(f'--tie-orders must be >= 0, got {args.tie_orders}')
    bad = [t for t in args.iou_thrs if not 0 < t <= 1]
    if bad:
        parser.error(f'--iou-thrs must lie in (0, 1], got {bad}')
    keys = [round(100 * t) for t in args.iou_thrs]
    if len(set(keys)) != len(keys):
        parser.error(f'--iou-thrs {args.iou_thrs} name the same result key '
                     '(voc/mAP<round(100 t)>) twice: give distinct '
                     'percentages')
    return args


def load_checked(path: str) -> dict:
    """Load a COCO json and check its ids and masks (every problem listed).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        DataCheckError: Repeated ids, dangling references, or masks
            pycocotools cannot decode (empty or < 3-point polygons ...).
        ValueError: No annotation has a mask (a points json given).
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path} does not exist.')
    with open(path, encoding='utf-8') as f:
        coco = json.load(f)
    anns = coco.get('annotations') or []
    if anns and not any('segmentation' in ann for ann in anns):
        raise ValueError(
            f'{path}: none of its {len(anns)} annotations has a '
            '"segmentation": it looks like a points json, not masks. Fix: '
            'give the pseudo-mask export of stage B (e.g. work_dirs/'
            'pipeline_*/pseudo/train_p2seg.json, tools/'
            'export_pseudo_masks.py) and the ground-truth masks of the same '
            'split.')
    problems = check_coco_structure(coco, path)
    if not errors_of(problems):
        problems += check_segmentations(coco, path)
    if errors_of(problems):
        raise DataCheckError(problems, path)
    return coco


def main(argv=None) -> dict:
    """Entry point; returns the results dict.

    Raises:
        FileNotFoundError: A json does not exist.
        DataCheckError: Bad ids or masks in a json (:func:`load_checked`).
        ValueError: An image id naming other files in the two jsons (the
            first mismatches listed with both file names), or no shared id.
    """
    args = parse_args(argv)
    pseudo, gt = load_checked(args.pseudo), load_checked(args.gt)
    check_same_files(pseudo, gt, args.pseudo, args.gt)
    results = evaluate_pseudo_masks(pseudo, gt, args.iou_thrs,
                                    tie_orders=args.tie_orders)
    print(format_quality_table(results))
    if args.out_json:
        os.makedirs(osp.dirname(osp.abspath(args.out_json)), exist_ok=True)
        dump_json_atomic(results, args.out_json, indent=2)
    return results


if __name__ == '__main__':
    main()
