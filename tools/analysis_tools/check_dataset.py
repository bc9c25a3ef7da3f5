# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Check the data of a config and report every problem at once.

Example::

    python tools/analysis_tools/check_dataset.py \\
        configs/p2seg/p2seg_r50_voc.py [--splits train val] \\
        [--max-decode N] [--cfg-options KEY=VALUE ...]

Checks the train / val / test datasets of the config and the ground-truth
jsons of its metrics: json structure (unique image, annotation and category
ids; known references), categories against the config classes (by name, in
order; every point of a category that is a class, as training requires),
points (two finite numbers inside the image), image files
(readable; size equal to the json's in the upright frame, since the loader
applies the EXIF orientation: orientations 5-8 swap the stored width and
height; more than 8 bits with a loader other than ``LoadP2SegImageFromFile``,
which stretches them per image) and semantic pseudo-maps (present,
single-channel index PNG, upright image size, values ``0..C`` and 255),
masks of the metrics' jsons (decodable by pycocotools).
Warnings (training runs, the data is suspicious): a training point whose
pseudo-map pixel ``(floor(y), floor(x))`` is neither its class
(``label + 1``) nor ignore (255), i.e. background (0) or another class,
checked on the decoded pseudo-maps that exist (the first ones listed, the
rest counted); training images much smaller than the resize scale of the
train pipeline (upsampled more than 2x; once per dataset, with the count,
the first files and the factor).
Each problem names the file, image id and annotation id and the fix. Exit
status 1 if any error was found, 0 otherwise (warnings only).
"""
import argparse
import sys
from typing import List, Optional

from mmengine.config import DictAction


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the command line (see the module docstring)."""
    parser = argparse.ArgumentParser(
        description='Check the datasets of a config; list every problem')
    parser.add_argument('config', help='config file')
    parser.add_argument(
        '--splits',
        nargs='+',
        default=['train', 'val', 'test'],
        choices=['train', 'val', 'test'],
        help='dataloaders (and evaluators) to check')
    parser.add_argument(
        '--max-decode',
        type=int,
        default=None,
        help='decode the pixels of at most this many images (and '
        'pseudo-maps) per dataset, evenly spread; default: all')
    parser.add_argument(
        '--no-files',
        action='store_true',
        help='check the jsons only (no image / pseudo-map file)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config entries, key=value')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    """Run the checks, print every problem; return the exit status."""
    args = parse_args(argv)
    import p2seg_mm  # noqa: F401  (registries: dataset classes)
    from p2seg_mm.datasets.config_checks import check_config_data
    from p2seg_mm.utils.config_file import load_config_or_exit
    cfg = load_config_or_exit(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    problems = check_config_data(
        cfg,
        args.splits,
        files=not args.no_files,
        max_decode=args.max_decode)
    errors = [p for p in problems if p.level == 'error']
    for problem in problems:
        print(problem)
    print(f'{args.config}: {len(errors)} error(s), '
          f'{len(problems) - len(errors)} warning(s) in the '
          f'{"/".join(args.splits)} data.')
    return 1 if errors else 0


if __name__ == '__main__':
    sys.exit(main())
