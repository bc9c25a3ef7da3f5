# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Fixtures of the integration tests: a tiny fabricated point dataset."""
import os.path as osp
import sys

import pytest

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

from fabricated_data import make_point_dataset  # noqa: E402


@pytest.fixture(scope='module')
def point_dataset(tmp_path_factory):
    """Paths of a 4-image fabricated COCO-point dataset (64 x 80 images)."""
    root = tmp_path_factory.mktemp('fabricated_cells')
    return make_point_dataset(str(root))
