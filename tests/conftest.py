# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Pytest root configuration: import the plugin so every registry is full."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault('OMP_NUM_THREADS', '1')
