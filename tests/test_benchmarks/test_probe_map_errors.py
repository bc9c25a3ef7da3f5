# Copyright (c) p2seg_mm contributors. All rights reserved.
"""The map-error probe's stride ceiling and corrected maps, by hand."""
import numpy as np
import pytest

from tests.tool_loader import load_tool


@pytest.fixture(scope='module')
def probe():
    return load_tool('benchmarks/probe_map_errors.py')


def test_through_stride_keeps_aligned_blocks_and_loses_thin_objects(probe):
    sem = np.zeros((16, 24), np.uint8)
    sem[4:12, 8:16] = 1  # 8 x 8, aligned to the stride-4 grid
    sem[2:14, 19] = 2  # a 1-px wide rod
    out4 = probe.through_stride(sem, 2, 4)
    # bilinear (align_corners=False): an edge pixel keeps 0.625 of its
    # cell, a corner pixel 0.625^2 = 0.39 < 0.5: the 4 corners are lost
    block = out4[4:12, 8:16] == 1
    assert block.sum() == 60
    assert not block[[0, 0, -1, -1], [0, -1, 0, -1]].any()
    assert (out4[:4] == 0).all() and (out4[12:] == 0).all()
    assert (out4 == 2).sum() == 0  # a quarter of a cell never wins
    # stride 8: the 8 x 8 block covers a quarter of each of four cells,
    # so it vanishes (the nuclei of the demo are ~14 px)
    assert (probe.through_stride(sem, 2, 8) == 0).all()
    # sizes that are not a multiple of the stride keep their shape
    assert probe.through_stride(sem[:15, :23], 2, 4).shape == (15, 23)


def test_variant_maps(probe):
    seg = np.array([[0, 1, 1, 255], [0, 1, 0, 0]], np.uint8)
    gt = np.array([[1, 1, 0, 0], [0, 1, 0, 0]], np.uint8)
    maps = probe.variant_maps(seg, gt, 1)
    assert maps['map'].tolist() == [[0, 1, 1, 0], [0, 1, 0, 0]]
    assert maps['map AND gt'].tolist() == [[0, 1, 0, 0], [0, 1, 0, 0]]
    assert maps['map OR gt'].tolist() == [[1, 1, 1, 0], [0, 1, 0, 0]]
    assert maps['gt (oracle)'] is gt
