# Copyright (c) p2seg_mm contributors. All rights reserved.
"""The tools' one way to open the config file a user named."""
import os
import os.path as osp

from mmengine.config import Config


def load_config_or_exit(path: str) -> Config:
    """``Config.fromfile(path)``, or end the command with one line.

    A missing file is the user's typo or a command run from another folder
    (configs inherit ``../_base_`` files and name ``data/...`` relative to
    the project root); mmengine's own error is a long traceback.

    Raises:
        SystemExit: ``path`` is not a file (message: the path, the current
            folder and the fix).
    """
    if not osp.isfile(path):
        raise SystemExit(
            f'{path}: no such config file (relative paths are read from the '
            f'current folder {os.getcwd()}). Fix: run from the project root, '
            'the folder that holds configs/, or give the right path.')
    return Config.fromfile(path)
