# Copyright (c) p2seg_mm contributors. All rights reserved.
"""The tools' config opening: a missing file ends with one line."""
import pytest

from p2seg_mm.utils.config_file import load_config_or_exit


def test_missing_config_names_path_folder_and_fix(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as info:
        load_config_or_exit('configs/p2seg/nope.py')
    message = str(info.value)
    assert message.startswith('configs/p2seg/nope.py: no such config file')
    assert str(tmp_path) in message and 'Fix: run from the project root' \
        in message and '\n' not in message


def test_existing_config_is_loaded(tmp_path):
    path = tmp_path / 'cfg.py'
    path.write_text('a = dict(b=1)\n')
    assert load_config_or_exit(str(path)).a.b == 1
