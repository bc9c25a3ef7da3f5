# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Copy a quality.json with some rows renamed, to check another decoding
against targets written for the ladder's row names.

``bench_quality.py`` names rows by what they train and decode; a target
check that reads rows ``p2seg`` and ``mdm_base`` can be pointed at, e.g.,
the demo's decoding and the same decoding of ``mdm_base``. The renamed rows
replace rows of the new name; nothing else changes.

Example::

    python benchmarks/rename_rows.py benchmarks/results/iters1000/quality.json \\
        p2seg=p2seg_aux_gmw_pamr_geo mdm_base=mdm_base_pamr_geo \\
        --out /tmp/demo_as_p2seg.json
    python ../shared/checks/quality_targets.py /tmp/demo_as_p2seg.json
"""
import argparse
import json
from typing import Dict, List


def rename_rows(records: List[dict], mapping: Dict[str, str]) -> List[dict]:
    """Records with row ``old`` renamed ``new`` for each ``new=old``; the
    records of a row named ``new`` before are dropped.

    Raises:
        ValueError: A source row not in the records.
    """
    rows = {r['row'] for r in records}
    missing = sorted(set(mapping.values()) - rows)
    if missing:
        raise ValueError(f'rows {missing} are not in the records; they '
                         f'hold {sorted(rows)}.')
    back = {old: new for new, old in mapping.items()}
    out = []
    for rec in records:
        if rec['row'] in back:
            out.append(dict(rec, row=back[rec['row']], renamed_from=rec[
                'row']))
        elif rec['row'] not in mapping:
            out.append(rec)
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('records', help='a quality.json of bench_quality.py')
    parser.add_argument('renames', nargs='+', metavar='NEW=OLD',
                        help='give row OLD the name NEW')
    parser.add_argument('--out', required=True, help='json to write')
    args = parser.parse_args(argv)
    mapping = {}
    for item in args.renames:
        new, sep, old = item.partition('=')
        if not sep or not new or not old or '=' in old:
            parser.error(f'{item!r} is not NEW=OLD')
        if new in mapping:
            parser.error(f'{new!r} is given twice as NEW')
        if old in mapping.values():
            parser.error(f'{old!r} is given twice as OLD')
        if new == old:
            parser.error(f'{item!r} renames a row onto itself')
        mapping[new] = old
    try:
        with open(args.records) as f:
            records = json.load(f)
    except (OSError, ValueError) as err:
        parser.error(f'cannot read {args.records}: {err}')
    if not isinstance(records, list) or not all(
            isinstance(r, dict) and 'row' in r for r in records):
        parser.error(f'{args.records} is not a list of records with "row" '
                     '(a quality.json of bench_quality.py)')
    try:
        out = rename_rows(records, mapping)
    except ValueError as err:
        parser.error(f'{args.records}: {err}')
    try:
        with open(args.out, 'w') as f:
            json.dump(out, f, indent=1)
    except OSError as err:
        parser.error(f'cannot write --out {args.out}: {err}')
    print(f'{args.out}: {len(out)} records, ' + ', '.join(
        f'{new} <- {old}' for new, old in mapping.items()))


if __name__ == '__main__':
    main()
