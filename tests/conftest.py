# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Pytest root configuration: import the plugin so every registry is full."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault('OMP_NUM_THREADS', '1')

from mmdet.utils import register_all_modules  # noqa: E402

import p2seg_mm  # noqa: E402,F401  (registers the plugin's modules)

register_all_modules(init_default_scope=False)
