# Copyright (c) p2seg_mm contributors. All rights reserved.
"""The quality benchmark's bookkeeping: options, parsing, seed statistics."""
import statistics

import pytest

from tests.tool_loader import load_tool

@pytest.fixture(scope='module')
def bench():
    return load_tool('benchmarks/bench_quality.py')


def test_each_paper_row_differs_by_its_switch(bench):
    opts = {
        name: set(bench.train_options(name, 0, 7, []))
        for name in bench.TRAININGS
    }
    assert 'model.train_cfg.use_i2s=False' in opts['mdm_base']
    assert 'train_dataloader.dataset.pipeline.7.dis_group=False' in \
        opts['mdm_base']
    assert opts['dis_group'] - opts['mdm_base'] == {
        'train_dataloader.dataset.pipeline.7.dis_group=True'}
    assert opts['i2s_t1'] - opts['dis_group'] == {
        'model.train_cfg.use_i2s=True'}
    assert opts['p2seg'] - opts['i2s_t1'] == {
        'model.train_cfg.use_inst_affinity=True'}
    assert opts['k2'] - opts['p2seg'] == {'model.train_cfg.num_stages=2'}
    # the unrefined CE's weight and its control without I2S
    assert opts['p2seg_aux2_gmw'] - opts['p2seg_aux_gmw'] == {
        'model.train_cfg.unrefined_sem_loss_weight=2.0'}
    assert opts['mdm_base_sem2'] - opts['mdm_base'] == {
        'model.train_cfg.unrefined_sem_loss_weight=1.0'}
    # decoding builds the model the row trained (K walks for k2)
    assert 'model.train_cfg.num_stages=2' in bench.model_options('k2', [])


def test_parse_value_and_summary(bench):
    assert bench.parse_value('False') is False
    assert bench.parse_value('8') == 8
    assert bench.parse_value('center') == 'center'
    # tuples (train_cfg.i2s_window) as the training's --cfg-options has them
    assert bench.parse_value('(128, 128)') == (128, 128)
    assert bench.parse_value('None') is None
    runs = [{
        'voc/mAP25': v, 'voc/mAP50': v, 'voc/mAP70': v, 'voc/mAP75': v,
        'voc/AP25/cell': v, 'voc/AP50/cell': v, 'voc/AP70/cell': v,
        'voc/AP75/cell': v, 'point/mIoU': v, 'point/mIoU/cell': v,
        'fallback': 0.5, 'fallback/cell': 0.5
    } for v in (0.2, 0.4, 0.6)]
    records = bench.summarise({'p2seg': {'train': runs}}, ['cell'])
    assert len(records) == 2 * 4  # class + mean, four thresholds
    rec = records[0]
    assert rec['mean'] == pytest.approx(40.0)
    assert rec['std'] == pytest.approx(statistics.stdev([20, 40, 60]))
    assert rec['seeds'] == 3 and rec['fallback_mean'] == pytest.approx(50)
    assert rec['values'] == pytest.approx([20, 40, 60])  # per seed
    assert {'row', 'split', 'class', 'iou', 'mean', 'std',
            'seeds'} <= set(rec)


def test_nearest_fallback_row_uses_the_configs_square(bench):
    """``nearest_fallback`` gives a point without pixels the square the
    learned rows' decoding gives it: the demo config's half size, 6."""
    import numpy as np

    from p2seg_mm.evaluation.nearest_point_baseline import \
        nearest_point_masks
    assert 'nearest_fallback' in bench.NO_LEARNING
    half = bench.fallback_half_size(bench.CONFIG)
    assert half == 6
    seg = np.zeros((30, 30), np.uint8)
    seg[2:6, 2:6] = 1  # class 0 blob around the first point only
    xy = np.array([[3.5, 3.5], [20.5, 20.5]])
    plain = nearest_point_masks(seg, xy, np.array([0, 0]), 1)
    square = nearest_point_masks(seg, xy, np.array([0, 0]), 1, half, 0.5)
    assert plain['masks'][1].sum() == 0 and plain['scores'][1] == 0
    assert square["masks"][1].sum() == (2 * half)**2  # (2 half)^2 px
    assert square['masks'][1][20, 20] and square['scores'][1] == 0.5
    assert (square['masks'][0] == plain['masks'][0]).all()


def test_results_header_says_how_to_reproduce(bench):
    """The markdown names the extra training / decoding options, without
    which a table made with ``--train-options`` reads as the default run."""
    import argparse
    args = argparse.Namespace(iters=1000, seeds=[0, 1], work_dir='w',
                              rows=['nearest', 'p2seg'],
                              train_options=['a.b=(192,192)'],
                              test_options=[])
    assert bench.extra_options(args) == ", --train-options 'a.b=(192,192)'"
    args.test_options = ['x=1']
    assert bench.extra_options(args).endswith(", --test-options 'x=1'")
    args.train_options, args.test_options = [], []
    assert bench.extra_options(args) == ''
    records = [dict(row='nearest', split='train', **{'class': c}, iou=0.5,
                    mean=50.0, std=0.0, seeds=1, miou_mean=50.0,
                    miou_std=0.0, fallback_mean=0.0)
               for c in ('cell', 'mean')]
    args.train_options = ['a.b=1']
    text = bench.markdown(records, args, 1.0)
    assert "1000 iterations, --train-options 'a.b=1', seeds [0, 1]" in text
    assert 'over 20 random orders of their tied scores' in text
    # without a learned row the header names no training
    args.rows = ['nearest']
    text = bench.markdown(records, args, 1.0)
    assert 'no learned row' in text and 'iterations' not in text


def test_rows_decode_with_the_methods_defaults_and_ladder_is_default(bench):
    # a row that does not name pamr / the given map decodes without them,
    # whatever the --config turns on (the demo config turns both on)
    plain = bench.row_test_cfg('p2seg_aux_gmw')
    assert plain['pamr'] is None and plain['semantic_source'] == 'network'
    assert plain['use_i2s'] is True
    assert bench.row_test_cfg('p2seg_aux_gmw_pamr')['pamr'] == {}
    assert bench.row_test_cfg('mdm_base_map')['semantic_source'] == \
        'pseudo_map'
    assert bench.row_test_cfg('p2seg_aux_center')['mode'] == 'center'
    # the plain run is the 300-iteration ladder: known rows, no stride-4 row
    known = set(bench.NO_LEARNING) | set(bench.ROWS)
    assert set(bench.LADDER_ROWS) <= known
    assert not [r for r in bench.LADDER_ROWS if '_gm' in r]
    assert {'nearest', 'mdm_base', 'dis_group', 'i2s_t1', 'p2seg', 'k2',
            'oracle'} <= set(bench.LADDER_ROWS)


def test_training_uses_the_data_it_is_scored_on(bench, tmp_path,
                                                monkeypatch):
    """``--data`` reaches the training, not only the decoding (it once
    trained on the config's data_root and scored on ``--data``)."""
    import argparse
    calls = []
    monkeypatch.setattr(bench, 'run', lambda cmd, log: calls.append(cmd))
    args = argparse.Namespace(iters=10, work_dir=str(tmp_path),
                              data='data/other_cells', train_options=[])
    bench.train_job(args, 'p2seg', 0, 7)
    opts = calls[0][calls[0].index('--cfg-options') + 1:]
    assert 'train_dataloader.dataset.data_root=data/other_cells/' in opts


def test_cache_refuses_results_of_other_data(bench, tmp_path):
    """A work dir remembers the data it was made from; other data (the demo
    images changed) or an unrecorded old cache stops the run."""
    import json
    data = tmp_path / 'data'
    for part in ('annotations', 'images', 'pseudo_sem'):
        (data / part).mkdir(parents=True)
    (data / 'annotations' / 'train_points.json').write_text('{}')
    (data / 'pseudo_sem' / 'a.png').write_bytes(b'map 1')
    (data / 'images' / 'a.png').write_bytes(b'image 1')
    (data / 'meta.json').write_text(json.dumps(dict(settings=dict(a=1))))
    work = str(tmp_path / 'work')
    bench.check_cache_data(work, str(data))  # first use: recorded
    bench.check_cache_data(work, str(data))  # same data: fine
    # an unread file does not matter
    (data / 'summary.txt').write_text('new summary')
    bench.check_cache_data(work, str(data))
    # a rebuilt pseudo-map, image, or edited json is other data
    for path, content in (('pseudo_sem/a.png', b'map 2'),
                          ('images/a.png', b'image 2'),
                          ('annotations/train_points.json', '{"a": 1}'),
                          ('pseudo_sem/b.png', b'map 1')):
        original = (data / path).read_bytes() if (data / path).exists() \
            else None
        target = data / path
        if isinstance(content, str):
            target.write_text(content)
        else:
            target.write_bytes(content)
        with pytest.raises(SystemExit, match='other data'):
            bench.check_cache_data(work, str(data))
        if original is None:
            target.unlink()
        else:
            target.write_bytes(original)
    bench.check_cache_data(work, str(data))  # restored: fine again
    old = tmp_path / 'old'
    (old / 'scores').mkdir(parents=True)
    with pytest.raises(SystemExit, match='no data.json'):
        bench.check_cache_data(str(old), str(data))


def test_steps_compare_each_learned_row_with_the_one_before(bench):
    """Hand-made seeds: b is 10 points above a with std ~1 (beyond the
    spread, small p); c equals b (difference 0, p 1); the no-learning row
    (one seed) is not a step; c is also compared with the first row."""
    def rec(row, values):
        return dict(row=row, split='train', iou=0.5, mean=statistics.fmean(
            values), std=bench.spread(values), seeds=len(values),
            values=values, **{'class': 'mean'})

    records = [rec('nearest', [50.0]), rec('a', [60.0, 61.0, 59.0]),
               rec('b', [70.0, 71.0, 69.0]), rec('c', [71.0, 69.0, 70.0])]
    out = bench.steps(records, 'train', 0.5)
    assert [(s['base'], s['row']) for s in out] == [('a', 'b'), ('b', 'c'),
                                                    ('a', 'c')]
    ab, bc, ac = out
    assert ab['delta'] == pytest.approx(10.0) and ab['beyond']
    assert ab['p'] < 0.001
    assert bc['delta'] == pytest.approx(0.0) and not bc['beyond']
    assert bc['p'] == pytest.approx(1.0)
    assert ac['beyond']
    # a wide spread hides the same difference
    records[2] = rec('b', [55.0, 85.0, 70.0])
    assert not bench.steps(records, 'train', 0.5)[0]['beyond']
    # rows without spread give no p (not a fake certainty)
    flat = [rec('a', [60.0, 60.0]), rec('b', [70.0, 70.0])]
    assert bench.steps(flat, 'train', 0.5)[0]['p'] != \
        bench.steps(flat, 'train', 0.5)[0]['p']  # nan
    # the markdown lists the steps with the marker
    text = '\n'.join(bench.step_lines(
        [dict(r, split=s, iou=i) for r in records[:3]
         for s in ('train', 'val') for i in (0.5, 0.7)]))
    assert '| a → b |' in text and 'Welch' in text


def test_steps_option_names_the_comparisons(bench, capsys):
    def rec(row, values):
        return dict(row=row, split='val', iou=0.7, mean=statistics.fmean(
            values), std=bench.spread(values), seeds=len(values),
            values=values, **{'class': 'mean'})

    records = [rec('a', [1.0, 2.0]), rec('b', [3.0, 4.0]),
               rec('c', [5.0, 6.0])]
    out = bench.steps(records, 'val', 0.7, pairs=[('c', 'a')])
    assert [(s['base'], s['row']) for s in out] == [('c', 'a')]
    assert out[0]['delta'] == pytest.approx(-4.0)
    # a step must name two learned rows among --rows
    for bad in (['mdm_base'], ['nearest:mdm_base'], ['mdm_base:p2seg']):
        with pytest.raises(SystemExit):
            bench.main(['--rows', 'nearest', 'mdm_base', '--steps', *bad])
        assert 'each step is BASE:ROW' in capsys.readouterr().err
