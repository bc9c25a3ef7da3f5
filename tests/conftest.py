# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Pytest root configuration: import the plugin so every registry is full."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault('OMP_NUM_THREADS', '1')

from mmdet.utils import register_all_modules  # noqa: E402

import p2seg_mm  # noqa: E402,F401  (registers the plugin's modules)

register_all_modules(init_default_scope=False)


@pytest.fixture(autouse=True)
def _restore_default_scope():
    """Each test leaves the registry scope as it found it.

    A Runner built in a test makes its ``default_scope`` the process-wide
    default; under pytest-xdist the next test of that worker would build
    its transforms in that scope.
    """
    from mmengine.registry import DefaultScope
    saved = dict(DefaultScope._instance_dict)
    yield
    DefaultScope._instance_dict.clear()
    DefaultScope._instance_dict.update(saved)
