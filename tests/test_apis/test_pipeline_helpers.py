# Copyright (c) p2seg_mm contributors. All rights reserved.
import os.path as osp

from p2seg_mm.apis.pipeline import pick_images


def test_pick_images_covers_every_class_crowded_first():
    labels = [
        [1, 1, 1],  # 0: class 1, 3 instances
        [0] * 10,  # 1: class 0, 10
        [0] * 20 + [1],  # 2: class 0, 21
        [],  # 3: nothing to draw
        [1, 1, 0],  # 4: class 1, 3
        [1] * 5,  # 5: class 1, 5
    ]
    assert pick_images(labels, 2) == [2, 5]  # one crowded image per class
    assert pick_images(labels, 4) == [2, 5, 1, 0]
    assert pick_images(labels, 10) == [2, 5, 1, 0, 4]  # empty image never
    assert pick_images(labels, 0) == []
    assert pick_images([[], []], 3) == []


def test_export_stage_passes_a_work_dir(tmp_path, monkeypatch):
    """Issue #10 fault 13: the export's logs landed in the repository's
    work_dirs/ (a test left work_dirs/mdm_tiny behind)."""
    from p2seg_mm.apis import pipeline
    calls = []
    monkeypatch.setattr(pipeline, 'run_command',
                        lambda cmd, log, **kw: calls.append(cmd))
    out = str(tmp_path / 'pseudo' / 'train_p2seg.json')
    pipeline.export_stage('cfg.py', 'ckpt.pth', out, ['a=1'],
                          str(tmp_path / 'export'))
    cmd = calls[-1]
    assert cmd[cmd.index('--work-dir') + 1] == str(tmp_path / 'export')
    pipeline.export_stage('cfg.py', 'ckpt.pth', out)  # default: next to out
    cmd = calls[-1]
    assert cmd[cmd.index('--work-dir') + 1].startswith(str(tmp_path))


def test_data_paths_give_classes_and_seg_suffix(tmp_path):
    from p2seg_mm.apis.pipeline import data_paths
    cfg = tmp_path / 'cfg.py'
    cfg.write_text(
        "train_dataloader = dict(dataset=dict(type='RepeatDataset', times=2,"
        " dataset=dict(ann_file='a.json', data_root='d/',"
        " metainfo=dict(classes=('x', 'y')), seg_map_suffix='_s.png',"
        " data_prefix=dict(img='i/', seg='s/'))))\n")
    paths = data_paths(str(cfg))
    assert paths['train_classes'] == ['x', 'y']
    assert paths['train_seg_suffix'] == '_s.png'
    assert paths['train_seg'].endswith(osp.join('d', 's'))
