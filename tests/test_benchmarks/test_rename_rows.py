# Copyright (c) p2seg_mm contributors. All rights reserved.
"""benchmarks/rename_rows.py: renamed rows replace the old ones."""
import json

import pytest

from tests.tool_loader import load_tool


def _rec(row, mean):
    return dict(row=row, split='train', **{'class': 'mean'}, iou=0.5,
                mean=mean, std=0.0, seeds=3)


def test_rename_replaces_the_target_row(tmp_path):
    tool = load_tool('benchmarks/rename_rows.py')
    records = [_rec('p2seg', 10.0), _rec('demo', 90.0), _rec('nearest', 50)]
    src = tmp_path / 'q.json'
    src.write_text(json.dumps(records))
    tool.main([str(src), 'p2seg=demo', '--out', str(tmp_path / 'o.json')])
    out = json.loads((tmp_path / 'o.json').read_text())
    assert [(r['row'], r['mean']) for r in out] == [('p2seg', 90.0),
                                                   ('nearest', 50)]
    assert out[0]['renamed_from'] == 'demo'
    with pytest.raises(SystemExit):
        tool.main([str(src), 'p2seg=nosuch', '--out', str(tmp_path / 'x')])
    for bad in (['p2seg'], ['a=demo', 'a=nearest'], ['a=demo', 'b=demo'],
                ['demo=demo'], ['a==demo']):
        with pytest.raises(SystemExit):
            tool.main([str(src)] + bad + ['--out', str(tmp_path / 'x')])
    (tmp_path / 'bad.json').write_text('{"row": 1}')
    for src_bad in (tmp_path / 'nope.json', tmp_path / 'bad.json'):
        with pytest.raises(SystemExit):
            tool.main([str(src_bad), 'p2seg=demo', '--out',
                       str(tmp_path / 'x')])
