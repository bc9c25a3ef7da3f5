# Copyright (c) p2seg_mm contributors. All rights reserved.
"""benchmarks/bench_geodesic.py: its tables and its argument checks."""
import json

import numpy as np
import pytest
from PIL import Image

from tests.builders import two_touching_rods
from tests.tool_loader import load_tool


@pytest.fixture(scope='module')
def bench():
    return load_tool('benchmarks/bench_geodesic.py')


def test_timing_table_has_both_splits(bench):
    text = bench.time_split(size=16, points=3, repeats=1, seed=0)
    assert '| geodesic (geodesic_point_labels) |' in text
    assert '| Voronoi (distance transform) |' in text


def _rods_data(root):
    """A one-image data folder: two touching rods, their ground truth."""
    fg, img, points = two_touching_rods()
    for part in ('annotations', 'images', 'pseudo_sem'):
        (root / part).mkdir(parents=True)
    Image.fromarray(img).save(root / 'images' / 'rods.png')
    Image.fromarray(fg.astype(np.uint8)).save(root / 'pseudo_sem' /
                                               'rods.png')
    from p2seg_mm.evaluation.nearest_point_baseline import \
        nearest_point_masks
    from p2seg_mm.structures.mask_codec import mask_to_annotation
    # ground truth: the geodesic split of the rods at the default weight
    res = nearest_point_masks(fg.astype(np.uint8), points,
                              np.zeros(len(points), int), 1,
                              grouping='geodesic',
                              image=np.stack([img] * 3, -1)
                              if img.ndim == 2 else img)
    image = dict(id=1, file_name='rods.png', height=fg.shape[0],
                 width=fg.shape[1])
    cats = [dict(id=1, name='rod')]
    gt = [dict(mask_to_annotation(m, 1, 1, 1.0), id=k + 1)
          for k, m in enumerate(res['masks'])]
    pts = [dict(id=k + 1, image_id=1, category_id=1, point=list(xy))
           for k, xy in enumerate(points.tolist())]
    for split in ('train', 'val'):
        for kind, anns in (('gt', gt), ('points', pts)):
            (root / 'annotations' / f'{split}_{kind}.json').write_text(
                json.dumps(dict(images=[image], categories=cats,
                                annotations=anns)))


def test_edge_weight_table_scores_each_weight(bench, tmp_path):
    _rods_data(tmp_path)
    text = bench.edge_weight_table(str(tmp_path), [0.0, 30.0])
    rows = [line.split(' | ') for line in text.splitlines()
            if line.startswith('| train |')]
    ap70 = {float(r[1]): float(r[4]) for r in rows}
    miou = {float(r[1]): float(r[5].rstrip(' |')) for r in rows}
    # the ground truth is the weight-30 split: it scores 100; without the
    # edge term the cut crosses the long rod (one mask below IoU .7)
    assert ap70[30.0] == 100.0 and miou[30.0] == 100.0
    assert ap70[0.0] < 100.0 and miou[0.0] < 100.0


def test_missing_data_is_a_usage_error(bench, tmp_path, capsys):
    with pytest.raises(SystemExit):
        bench.main(['--skip-timing', '--data', str(tmp_path)])
    assert 'make demo-data' in capsys.readouterr().err
    for bad in (['--skip-timing', '--skip-weights'],
                ['--skip-weights', '--edge-weights', '30', '-5']):
        with pytest.raises(SystemExit):
            bench.main(bad)
