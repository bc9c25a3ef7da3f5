# Copyright (c) p2seg_mm contributors. All rights reserved.
import json
import os

import pytest

from p2seg_mm.utils.atomic_io import (atomic_open, dump_json_atomic,
                                      write_bytes_atomic)


def test_writes_create_folders_and_replace(tmp_path):
    path = tmp_path / 'a' / 'b' / 'x.json'
    dump_json_atomic({'k': [1, 2]}, str(path))
    assert json.loads(path.read_text()) == {'k': [1, 2]}
    write_bytes_atomic(b'new', str(path))
    assert path.read_bytes() == b'new'
    assert os.listdir(path.parent) == ['x.json']


def test_failure_keeps_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / 'x.json'
    path.write_text('old')
    with pytest.raises(RuntimeError, match='boom'):
        with atomic_open(str(path), 'w') as f:
            f.write('half of the new conte')
            raise RuntimeError('boom')
    assert path.read_text() == 'old'
    assert os.listdir(tmp_path) == ['x.json']
    with pytest.raises(ValueError, match="'w' or 'wb'"):
        with atomic_open(str(path), 'a'):
            pass
