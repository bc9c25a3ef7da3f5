# Copyright (c) p2seg_mm contributors. All rights reserved.
"""The helpers of tools/run_pipeline.py: pipeline_stages, pipeline_report."""
import os.path as osp

from tests.tool_loader import add_tool_dir

add_tool_dir('tools/run_pipeline.py')
import pipeline_report  # noqa: E402  (the tool's folder)
import pipeline_stages  # noqa: E402
from pipeline_report import pick_images  # noqa: E402


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
    pipeline = pipeline_stages
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
    data_paths = pipeline_stages.data_paths
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


def test_overlays_read_images_by_the_loading_rule(tmp_path, monkeypatch):
    """The pipeline's overlays read images as training does (image_io): a
    16-bit image is stretched, not darkened to its high byte, and an
    EXIF-rotated one is upright, matching its upright-frame masks."""
    import json

    import numpy as np
    from PIL import Image
    from pycocotools import mask as mask_util

    pipeline = pipeline_report
    drawn = []
    monkeypatch.setattr('p2seg_mm.visualization.overlay_instances',
                        lambda img, masks, *a, **k: drawn.append(
                            (img, masks)) or img)
    monkeypatch.setattr('p2seg_mm.visualization.save_png',
                        lambda path, img: None)
    values = (np.arange(24).reshape(4, 6) * 10).astype(np.uint16)  # 0..230
    Image.fromarray(values).save(tmp_path / 'a.png')  # mode I;16
    Image.fromarray(np.full((4, 6, 3), 50, np.uint8)).save(
        tmp_path / 'b.jpg', exif=_orientation(6))
    images, anns = [], []
    for img_id, (name, h, w) in enumerate([('a.png', 4, 6), ('b.jpg', 6, 4)]):
        images.append(dict(id=img_id, file_name=name, height=h, width=w))
        mask = np.zeros((h, w), np.uint8, order='F')
        mask[0, 0] = 1
        rle = mask_util.encode(mask)
        rle['counts'] = rle['counts'].decode()
        anns.append(dict(id=img_id + 1, image_id=img_id, category_id=1,
                         segmentation=rle, area=1, bbox=[0, 0, 1, 1],
                         iscrowd=0, point=[0.5, 0.5]))
    with open(tmp_path / 'p.json', 'w') as f:
        json.dump(dict(images=images, annotations=anns,
                       categories=[dict(id=1, name='c')]), f)
    pipeline._draw_json_masks(str(tmp_path / 'p.json'), str(tmp_path),
                              str(tmp_path / 'out'), 2, 'pseudo', ['c'])
    shapes = sorted(img.shape for img, _ in drawn)
    assert shapes == [(4, 6, 3), (6, 4, 3)]
    for img, masks in drawn:
        assert img.shape[:2] == masks.shape[1:]
        if img.shape[:2] == (4, 6):
            assert img.max() == 255  # stretched (old loader: all 0)


def _orientation(value):
    from PIL import Image
    tags = Image.Exif()
    tags[274] = value
    return tags


def test_mdm_test_split_and_i2s_read_from_config_and_options(tmp_path):
    cfg = tmp_path / 'cfg.py'
    cfg.write_text("model = dict(test_cfg=dict(use_i2s=False))\n"
                   "test_dataloader = dict(batch_size=1)\n"
                   "test_evaluator = dict(type='VOCInstanceMetric')\n")
    assert pipeline_stages.has_test_split(str(cfg))
    assert not pipeline_stages.has_test_split(str(cfg),
                                              ['test_evaluator=None'])
    assert pipeline_stages.test_decoding(str(cfg)) == 'test-time I2S off'
    assert pipeline_stages.test_decoding(
        str(cfg), ['model.test_cfg.use_i2s=True',
                   'model.test_cfg.pamr.num_iter=5']) == \
        'test-time I2S on, PAMR'
    bare = tmp_path / 'bare.py'
    bare.write_text('model = dict()\n')
    assert not pipeline_stages.has_test_split(str(bare))
    # the decoding's defaults
    assert pipeline_stages.test_decoding(str(bare)) == 'test-time I2S on'
    assert pipeline_stages.test_decoding(
        str(bare), ["model.test_cfg.grouping='geodesic'"]) == \
        'test-time I2S on, geodesic split'


def test_mdm_table_names_the_walk_and_gives_percent():
    metrics = {'coco/segm_mAP': 0.25, 'coco/segm_mAP_50': 0.5,
               'voc/mAP25': 0.9, 'voc/mAP50': 0.5, 'voc/mAP70': 0.125}
    head, rule, row = pipeline_report.mdm_table(
        metrics, 'test-time I2S on, PAMR').splitlines()
    assert len(rule.strip('|').split('|')) == 7
    assert row == ('| test-time I2S on, PAMR | 25.0 | 50.0 | 90.0 | 50.0 | '
                   '12.5 | - |')


def test_demo_trains_one_second_stage_unless_asked():
    from tests.tool_loader import load_tool
    run_pipeline = load_tool('tools/run_pipeline.py')
    demo = run_pipeline.apply_defaults(run_pipeline.parse_args(['--demo']))
    assert demo.variants == ['p2seg']
    assert demo.mdm_config == run_pipeline.DEMO_MDM
    asked = run_pipeline.apply_defaults(
        run_pipeline.parse_args(['--demo', '--variants', 'p2seg', 'gt']))
    assert asked.variants == ['p2seg', 'gt']
    plain = run_pipeline.apply_defaults(run_pipeline.parse_args(['a', 'b']))
    assert plain.variants == ['p2seg', 'nearest', 'gt']
    assert not plain.no_mdm_test


def test_train_stage_refuses_a_folder_of_another_config(tmp_path,
                                                        monkeypatch):
    """A rerun after the config changed must not reuse the old model."""
    import pytest
    stages = pipeline_stages
    cfg = tmp_path / 'cfg.py'
    cfg.write_text('a = 1\n')
    work = tmp_path / 'work'
    runs = []

    def fake_run(cmd, log, **kw):
        runs.append(cmd)
        (work / 'last_checkpoint').write_text(str(work / 'iter_1.pth'))

    monkeypatch.setattr(stages, 'run_command', fake_run)
    work.mkdir()
    assert stages.train_stage(str(cfg), str(work)).endswith('iter_1.pth')
    assert (work / 'CONFIG_SHA').is_file() and len(runs) == 1
    stages.train_stage(str(cfg), str(work))  # same config: skipped
    assert len(runs) == 1
    with pytest.raises(SystemExit, match='another config'):
        stages.train_stage(str(cfg), str(work), ['a=2'])
    cfg.write_text('a = 3\n')  # the file itself changed
    with pytest.raises(SystemExit, match='delete'):
        stages.train_stage(str(cfg), str(work))
    (work / 'CONFIG_SHA').unlink()  # a folder of an earlier version
    with pytest.raises(SystemExit, match='without a config record'):
        stages.train_stage(str(cfg), str(work))
    assert len(runs) == 1
