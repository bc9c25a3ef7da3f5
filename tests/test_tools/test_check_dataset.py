# Copyright (c) p2seg_mm contributors. All rights reserved.
"""tools/analysis_tools/check_dataset.py and the tools' pre-flight checks
(issue #10: one run lists every problem; faults 3, 5, 7, 9)."""
import json
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from tests.tool_loader import load_tool


def _load_tool(*parts):
    return load_tool(osp.join('tools', *parts))


def _save(path, array):
    Image.fromarray(array).save(path)


def _good_dataset(root):
    """Two 16 x 20 images, one point each, valid pseudo-maps."""
    for sub in ('img', 'sem'):
        (root / sub).mkdir(parents=True, exist_ok=True)
    images, anns = [], []
    for i in (1, 2):
        _save(root / 'img' / f'{i}.png', np.zeros((16, 20, 3), np.uint8))
        sem = np.zeros((16, 20), np.uint8)
        sem[4:8, 4:8] = i
        _save(root / 'sem' / f'{i}.png', sem)
        images.append(dict(id=i, file_name=f'{i}.png', height=16, width=20))
        anns.append(dict(id=i, image_id=i, category_id=i, point=[5.5, 5.5],
                         iscrowd=0))
    cats = [dict(id=1, name='cat'), dict(id=2, name='dog')]
    return dict(images=images, annotations=anns, categories=cats)


CONFIG = '''
custom_imports = dict(imports=['p2seg_mm'], allow_failed_imports=False)
metainfo = dict(classes=('cat', 'dog'))
pipeline = [dict(type={loader!r}),
            dict(type='LoadP2SegAnnotations', with_seg=True)]
train_dataloader = dict(dataset=dict(
    type='CocoPointDataset', data_root={root!r}, ann_file='train.json',
    metainfo=metainfo, data_prefix=dict(img='img/', seg='sem/'),
    pipeline=pipeline))
test_dataloader = dict(dataset=dict(
    type='CocoDataset', data_root={root!r}, ann_file='gt.json',
    metainfo=metainfo, data_prefix=dict(img='img/'), test_mode=True,
    pipeline=[]))
test_evaluator = dict(type='CocoMetric', ann_file={gt!r}, metric='segm')
'''


def _write_config(tmp_path, train, gt, loader='LoadImageFromFile', steps=''):
    """The config, whose train pipeline ends with ``steps`` (config text of
    dicts) if given."""
    (tmp_path / 'train.json').write_text(json.dumps(train))
    (tmp_path / 'gt.json').write_text(json.dumps(gt))
    cfg = tmp_path / 'cfg.py'
    text = CONFIG.format(root=str(tmp_path), gt=str(tmp_path / 'gt.json'),
                         loader=loader)
    if steps:
        text = text.replace('with_seg=True)]', f'with_seg=True), {steps}]')
    cfg.write_text(text)
    return str(cfg)


def _gt(train):
    anns = [dict(a, segmentation=[[4, 4, 8, 4, 8, 8, 4, 8]], area=16,
                 bbox=[4, 4, 4, 4]) for a in train['annotations']]
    return dict(train, annotations=anns)


def test_good_dataset_passes(tmp_path, capsys):
    train = _good_dataset(tmp_path)
    cfg = _write_config(tmp_path, train, _gt(train))
    assert _load_tool('analysis_tools', 'check_dataset.py').main([cfg]) == 0
    assert '0 error(s)' in capsys.readouterr().out


def test_bad_dataset_every_problem_in_one_run(tmp_path, capsys):
    train = _good_dataset(tmp_path)
    gt = json.loads(json.dumps(_gt(train)))
    train['images'][1]['height'] = 32  # fault 3: json != file
    train['annotations'][0]['point'] = [25.0, 1.0]  # outside the image
    _save(tmp_path / 'sem' / '1.png', np.full((16, 20), 38, np.uint8))
    (tmp_path / 'sem' / '2.png').unlink()
    # metric json: dog listed before cat (fault 5), a broken mask (fault 7)
    gt['categories'] = gt['categories'][::-1]
    gt['annotations'][1]['segmentation'] = [[0, 0, 4, 4]]
    cfg = _write_config(tmp_path, train, gt)
    tool = _load_tool('analysis_tools', 'check_dataset.py')
    assert tool.main([cfg]) == 1
    out = capsys.readouterr().out
    errors = [line for line in out.splitlines() if line.startswith('ERROR')]
    expected = [
        'annotation id 1: point (25.0, 1.0) lies outside',
        'image id 2 (' + str(tmp_path / 'img' / '2.png') + '): image file',
        'is 16 x 20 (H x W) but the json says 32 x 20',
        'holds values [38] that are not classes',
        '2.png does not exist',
        'the json lists the categories',
        'annotation id 2 of image id 2 polygon 0',
    ]
    for text in expected:
        assert any(text in line for line in errors), (text, errors)
    assert len(errors) == 6, errors
    assert '6 error(s)' in out


def test_structural_problems_are_listed_together(tmp_path, capsys):
    train = _good_dataset(tmp_path)
    gt = _gt(train)
    train['images'][1]['id'] = 1               # fault 2
    train['annotations'][1]['id'] = 1
    cfg = _write_config(tmp_path, train, gt)
    assert _load_tool('analysis_tools', 'check_dataset.py').main([cfg]) == 1
    out = capsys.readouterr().out
    assert 'image id 1 is used by 2 image entries' in out
    assert 'annotation ids [1] are used more than once' in out
    assert 'annotation id 2 refers to image id 2' in out


def test_test_tool_refuses_a_metric_json_in_another_class_order(tmp_path):
    """Fault 5: COCO mAP 0.000 instead of 0.166, no warning; now
    tools/test.py stops before inference, naming the json and the fix."""
    train = _good_dataset(tmp_path)
    gt = _gt(train)
    gt['categories'] = gt['categories'][::-1]
    cfg = _write_config(tmp_path, train, gt)
    test_tool = _load_tool('test.py')
    with pytest.raises(ValueError, match='json lists the categories') as e:
        test_tool.main([cfg, 'no_checkpoint.pth'])
    assert 'gt.json' in str(e.value) and 'Fix' in str(e.value)


def test_preflight_covers_coco_metric_masks(tmp_path):
    """Fault 7 for mmdet's CocoMetric (pycocotools IndexError before)."""
    from mmengine.config import Config

    from p2seg_mm.datasets.config_checks import preflight_check
    train = _good_dataset(tmp_path)
    gt = _gt(train)
    gt['annotations'][0]['segmentation'] = []
    cfg = Config.fromfile(_write_config(tmp_path, train, gt))
    with pytest.raises(ValueError, match='annotation id 1 of image id 1 '
                       '"segmentation" is an empty list'):
        preflight_check(cfg, ['test'])
    preflight_check(cfg, ['train'])  # point datasets check themselves


def test_train_tool_checks_stock_and_metric_jsons_before_training(tmp_path):
    """Fault 5 for a second-stage training: the stock CocoDataset json and
    the val metric json are checked before the runner is built."""
    from mmengine.config import Config
    train = _good_dataset(tmp_path)
    gt = _gt(train)
    gt['categories'] = gt['categories'][::-1]
    cfg = Config.fromfile(_write_config(tmp_path, train, gt))
    cfg.train_dataloader = cfg.test_dataloader
    cfg.val_dataloader = cfg.test_dataloader
    cfg.val_evaluator = cfg.test_evaluator
    cfg.val_cfg = dict(type='ValLoop')
    train_tool = _load_tool('train.py')
    with pytest.raises(ValueError, match='json lists the categories'):
        train_tool.check_data(cfg)
    cfg.val_cfg = None  # pipeline runs: no validation, train json only
    with pytest.raises(ValueError, match='json lists the categories'):
        train_tool.check_data(cfg)


def _exif_dataset(root):
    """Image 1 is a JPEG stored 16 x 20 (H x W) with EXIF Orientation=6
    (rotate 90 clockwise): it is loaded upright, 20 x 16. Its pseudo-map
    and json entry are in that upright frame, as annotation tools give."""
    train = _good_dataset(root)
    tags = Image.Exif()
    tags[0x0112] = 6
    Image.fromarray(np.full((16, 20, 3), 90, np.uint8)).save(
        root / 'img' / '1.jpg', exif=tags)
    sem = np.zeros((20, 16), np.uint8)
    sem[4:8, 4:8] = 1
    _save(root / 'sem' / '1.png', sem)
    train['images'][0].update(file_name='1.jpg', height=20, width=16)
    return train


def _messages(out, level):
    return [line for line in out.splitlines() if line.startswith(level)]


def test_exif_rotated_image_is_checked_upright(tmp_path, capsys):
    """The loader applies EXIF orientation, so the checks compare the
    upright size: the json in the upright frame passes (one warning that
    names the rotation, no advice to strip EXIF) ..."""
    from p2seg_mm.datasets.image_io import read_image_file
    train = _exif_dataset(tmp_path)
    assert read_image_file(str(tmp_path / 'img' / '1.jpg')).shape == (20, 16,
                                                                      3)
    tool = _load_tool('analysis_tools', 'check_dataset.py')
    cfg = _write_config(tmp_path, train, _gt(train))
    assert tool.main([cfg]) == 0
    out = capsys.readouterr().out
    warnings = _messages(out, 'WARNING')
    assert len(warnings) == 2  # the train and the test dataset
    for warning in warnings:
        assert 'EXIF Orientation=6' in warning
        assert 'loaded upright (20 x 16' in warning
    assert 'exif_transpose' not in out and 'strip' not in out
    # ... while the stored size (16 x 20) in the json is an error naming EXIF
    train['images'][0].update(height=16, width=20)
    _save(tmp_path / 'sem' / '1.png', np.zeros((16, 20), np.uint8))
    cfg = _write_config(tmp_path, train, _gt(train))
    assert tool.main([cfg]) == 1
    errors = _messages(capsys.readouterr().out, 'ERROR')
    # the image size (train and test dataset) and the map size (train)
    assert len(errors) == 3, errors
    image_error = [e for e in errors if 'image file' in e][0]
    assert 'is 20 x 16 (H x W) upright but the json says 16 x 20' in \
        image_error
    assert 'EXIF Orientation=6' in image_error
    assert 'write the upright size' in image_error
    map_error = [e for e in errors if 'pseudo-map' in e][0]
    assert 'EXIF' in map_error and 'upright' in map_error


def test_exif_rotated_image_at_dataset_build(tmp_path):
    """The same rule when training builds the dataset."""
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    from mmdet.registry import DATASETS
    train = _exif_dataset(tmp_path)
    cfg = Config.fromfile(_write_config(tmp_path, train, _gt(train),
                                        loader='LoadP2SegImageFromFile'))
    with DefaultScope.overwrite_default_scope('mmdet'):
        dataset = DATASETS.build(cfg.train_dataloader.dataset)
        sample = dataset[0]  # image 1: loaded upright, map in that frame
    assert sample['img'].shape == (20, 16, 3)
    assert sample['gt_seg_map'].shape == (20, 16)
    train['images'][0].update(height=16, width=20)
    cfg = Config.fromfile(_write_config(tmp_path, train, _gt(train),
                                        loader='LoadP2SegImageFromFile'))
    with pytest.raises(ValueError, match='EXIF Orientation=6') as err, \
            DefaultScope.overwrite_default_scope('mmdet'):
        DATASETS.build(cfg.train_dataloader.dataset)
    assert 'upright but the json says 16 x 20' in str(err.value)


@pytest.mark.parametrize('kind', ['grey16', 'rgb16'])
def test_16_bit_warning_depends_on_the_loader(tmp_path, capsys, kind):
    """16-bit images are stretched per image by LoadP2SegImageFromFile (no
    warning); mmcv's LoadImageFromFile keeps their high byte (warning that
    it darkens them and names the fix). 16-bit RGB PNGs open as PIL 'RGB'
    and are recognised too."""
    import cv2
    train = _good_dataset(tmp_path)
    values = np.arange(320).reshape(16, 20) * 3
    if kind == 'grey16':
        _save(tmp_path / 'img' / '1.png', values.astype(np.uint16))
    else:
        cv2.imwrite(str(tmp_path / 'img' / '1.png'),
                    np.dstack([values] * 3).astype(np.uint16))
    tool = _load_tool('analysis_tools', 'check_dataset.py')
    cfg = _write_config(tmp_path, train, _gt(train))
    assert tool.main([cfg]) == 0
    warnings = _messages(capsys.readouterr().out, 'WARNING')
    assert len(warnings) == 1, warnings
    assert 'more than 8 bits' in warnings[0]
    assert 'LoadImageFromFile, which keeps only its high byte' in warnings[0]
    assert 'Fix: use LoadP2SegImageFromFile' in warnings[0]
    cfg = _write_config(tmp_path, train, _gt(train),
                        loader='LoadP2SegImageFromFile')
    assert tool.main([cfg]) == 0
    assert not _messages(capsys.readouterr().out, 'WARNING')


def test_missing_relative_ann_file_names_the_current_folder(
        tmp_path, monkeypatch, capsys):
    """A relative data_root resolves against the current folder: the
    message says which folder that was and how to fix it."""
    tool = _load_tool('analysis_tools', 'check_dataset.py')
    cfg = tmp_path / 'cfg.py'
    cfg.write_text(CONFIG.format(loader='LoadImageFromFile',
                                 root='data/nowhere',
                                 gt=str(tmp_path / 'gt.json')))
    (tmp_path / 'gt.json').write_text(json.dumps(_good_dataset(tmp_path)))
    monkeypatch.chdir(tmp_path)
    assert tool.main([str(cfg), '--splits', 'train', '--no-files']) == 1
    out = capsys.readouterr().out
    assert 'data/nowhere/train.json does not exist' in out
    assert f'current folder {tmp_path}' in out
    assert 'run from the project root' in out
    # a config path that does not exist: one line, no traceback
    with pytest.raises(SystemExit, match=r'^configs/nope.py: no such config '
                       f'file .*current folder {tmp_path}'):
        tool.main(['configs/nope.py', '--no-files'])


def test_preflight_refuses_a_bad_p2seg_test_cfg():
    """A misspelt or bad decoding option stops test.py / train.py before
    the runner logs its environment and config (hundreds of lines)."""
    from mmengine.config import Config

    from p2seg_mm.datasets.config_checks import preflight_check
    cfg = Config(dict(model=dict(type='P2Seg', test_cfg=dict(
        grouping='geodesic'))))
    preflight_check(cfg, ['test'])  # a good test_cfg passes
    cfg.model.test_cfg = dict(groupping='offset')
    with pytest.raises(ValueError, match=r"unknown keys \['groupping'\]"):
        preflight_check(cfg, ['test'])
    cfg.model.test_cfg = dict(geodesic_edge_weight=-1)
    with pytest.raises(ValueError, match='geodesic_edge_weight'):
        preflight_check(cfg, ['test'])
    # other models are not P2Seg's business
    preflight_check(Config(dict(model=dict(type='MaskRCNN', test_cfg=dict(
        rcnn=dict(score_thr=0.05))))), ['test'])


def test_point_of_a_category_outside_the_classes_is_reported(
        tmp_path, capsys):
    """New-user trial: a point whose json category is not among the config
    classes passed check_dataset.py, then CocoPointDataset refused it at
    training. The tool reports it with training's message."""
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    from mmdet.registry import DATASETS
    train = _good_dataset(tmp_path)
    train['categories'].append(dict(id=3, name='bird'))  # not a class
    train['annotations'][1]['category_id'] = 3
    gt = _gt(_good_dataset(tmp_path))
    cfg = _write_config(tmp_path, train, gt)
    assert _load_tool('analysis_tools', 'check_dataset.py').main([cfg]) == 1
    errors = _messages(capsys.readouterr().out, 'ERROR')
    assert len(errors) == 1, errors
    train_json = str(tmp_path / 'train.json')
    assert errors[0] == (
        f"ERROR: {train_json}: image id 2 ('2.png'), annotation id 2: "
        'category_id 3 is not one of the dataset categories [1, 2] '
        "(metainfo classes ['cat', 'dog']). Fix the category_id or the "
        'metainfo classes.')
    # the same words as training's refusal
    with pytest.raises(ValueError) as err, \
            DefaultScope.overwrite_default_scope('mmdet'):
        DATASETS.build(Config.fromfile(cfg).train_dataloader.dataset)
    assert errors[0] == f'ERROR: {err.value}'
    # an ignored annotation is skipped by training, and by the check
    train['annotations'][1]['ignore'] = 1
    cfg = _write_config(tmp_path, train, gt)
    assert _load_tool('analysis_tools', 'check_dataset.py').main([cfg]) == 0


def test_clean_dataset_gets_no_warning(tmp_path, capsys):
    """Points on their own class (or ignore) and images at the resize
    scale of the train pipeline: no point or scale warning, in the tool
    and at the dataset build of training."""
    train = _good_dataset(tmp_path)
    gt = _gt(train)
    # ignore under the point of image 2: fine
    _save(tmp_path / 'sem' / '2.png', np.full((16, 20), 255, np.uint8))
    # a crowd point on background gets no target: not checked
    train['annotations'].append(dict(id=3, image_id=1, category_id=2,
                                     point=[0.5, 0.5], iscrowd=1))
    cfg = _write_config(tmp_path, train, gt,
                        steps=_resize_steps(scale=(20, 20), crop=(16, 16)))
    assert _load_tool('analysis_tools', 'check_dataset.py').main([cfg]) == 0
    out = capsys.readouterr().out
    assert not _messages(out, 'WARNING'), out
    assert '0 error(s), 0 warning(s)' in out
    assert _build_warnings(tmp_path, cfg) == []


def _resize_steps(scale, crop, ratio_range=(0.7, 1.3)):
    """The demo's train resize and crop (configs/_base_/datasets/
    demo_cells_point.py), at another scale."""
    return (f"dict(type='PointRandomResize', scale={scale!r}, "
            f'ratio_range={ratio_range!r}, keep_ratio=True), '
            f"dict(type='PointRandomCrop', crop_size={crop!r}, min_points=1)")


def _build_warnings(tmp_path, cfg):
    """The warnings logged when training builds the train dataset."""
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    from mmdet.registry import DATASETS
    from p2seg_mm.datasets import coco_point
    logged = []
    original = coco_point.print_log
    coco_point.print_log = lambda msg, **kw: logged.append(msg)
    try:
        with DefaultScope.overwrite_default_scope('mmdet'):
            DATASETS.build(Config.fromfile(cfg).train_dataloader.dataset)
    finally:
        coco_point.print_log = original
    return logged


def test_point_on_another_class_of_its_pseudo_map_is_a_warning(
        tmp_path, capsys):
    """New-user trial: a HeLa point on background (0) or on the E. coli
    label of the pseudo-map passed every check; its object gets no pixel
    of its class, so the point gets the fallback square / no mask. Now a
    warning per point names the json, ids, point, class, map value and
    its meaning and the fix, in the tool and at the training build."""
    train = _good_dataset(tmp_path)
    gt = _gt(train)
    train['annotations'][0]['point'] = [1.5, 2.5]  # cat on background
    sem = np.zeros((16, 20), np.uint8)
    sem[4:8, 4:8] = 1  # image 2: its dog point lies on 'cat'
    _save(tmp_path / 'sem' / '2.png', sem)
    cfg = _write_config(tmp_path, train, gt)
    tool = _load_tool('analysis_tools', 'check_dataset.py')
    assert tool.main([cfg]) == 0  # warnings only
    warnings = _messages(capsys.readouterr().out, 'WARNING')
    assert len(warnings) == 2, warnings
    train_json = str(tmp_path / 'train.json')
    sem_dir = str(tmp_path / 'sem')
    assert warnings[0].startswith(
        f'WARNING: {train_json}: image id 1 ({tmp_path / "img" / "1.png"}),'
        " annotation id 1: point (1.5, 2.5) of class 'cat' lies on a pixel "
        f'of value 0 (background) in the semantic pseudo-map {sem_dir}/'
        '1.png, not 1 (its class) or 255 (ignore): the pseudo-map gives '
        "this object's pixel to background")
    assert 'fallback square / no mask' in warnings[0]
    assert 'Fix the point (onto its object) or the map.' in warnings[0]
    assert ("image id 2 (" in warnings[1] and 'annotation id 2: point (5.5,'
            " 5.5) of class 'dog' lies on a pixel of value 1 (class 'cat')"
            in warnings[1])
    # training builds the dataset with the same warnings
    assert _build_warnings(tmp_path, cfg) == [
        w[len('WARNING: '):] for w in warnings]


def test_many_points_off_class_are_summarised(tmp_path, capsys):
    """The first points are listed one by one, the rest counted."""
    from p2seg_mm.datasets.file_checks import MAX_LISTED_POINTS
    train = _good_dataset(tmp_path)
    gt = _gt(train)
    extra = MAX_LISTED_POINTS + 3
    for k in range(extra):  # on background, row 12
        train['annotations'].append(dict(
            id=100 + k, image_id=1, category_id=1,
            point=[float(k) + 0.5, 12.5], iscrowd=0))
    cfg = _write_config(tmp_path, train, gt)
    assert _load_tool('analysis_tools', 'check_dataset.py').main(
        [cfg, '--splits', 'train']) == 0
    warnings = _messages(capsys.readouterr().out, 'WARNING')
    assert len(warnings) == MAX_LISTED_POINTS + 1, warnings
    assert all('annotation id 10' in w for w in warnings[:-1])
    summary = warnings[-1]
    assert (f'3 more point(s) lie on a semantic pseudo-map pixel that is '
            f'neither their class nor 255 (ignore), {extra} in all '
            f'(annotation ids {[100 + k for k in range(10, extra)]})'
            in summary)
    assert 'Fix the points or the maps.' in summary


def test_points_on_missing_pseudo_maps_are_not_checked(tmp_path, capsys):
    """A missing map is the error of its own check, nothing more."""
    train = _good_dataset(tmp_path)
    gt = _gt(train)
    train['annotations'][0]['point'] = [1.5, 2.5]
    cfg = _write_config(tmp_path, train, gt)
    (tmp_path / 'sem' / '1.png').unlink()
    assert _load_tool('analysis_tools', 'check_dataset.py').main(
        [cfg, '--splits', 'train']) == 1
    out = capsys.readouterr().out
    assert not _messages(out, 'WARNING'), out
    [err] = _messages(out, 'ERROR')
    assert '1.png does not exist' in err


def test_images_much_smaller_than_the_train_scale_are_a_warning(
        tmp_path, capsys):
    """New-user trial: 16 x 20 images with the demo's scale 512 are
    upsampled ~25 times in training and tested at their own size; one
    warning per dataset names how many, the first files, the factor and
    the fix, in the tool and at the training build."""
    train = _good_dataset(tmp_path)
    cfg = _write_config(tmp_path, train, _gt(train),
                        steps=_resize_steps(scale=(512, 512),
                                            crop=(256, 256)))
    assert _load_tool('analysis_tools', 'check_dataset.py').main([cfg]) == 0
    warnings = _messages(capsys.readouterr().out, 'WARNING')
    assert len(warnings) == 1, warnings  # once for the dataset
    img = tmp_path / 'img'
    assert warnings[0] == (
        f'WARNING: {tmp_path / "train.json"}: 2 of 2 images are much smaller'
        ' than the resize scale of the train pipeline, PointRandomResize('
        'scale=(512, 512), ratio_range=(0.7, 1.3), keep_ratio=True): '
        f'{img / "1.png"} (16 x 20, x25.6), {img / "2.png"} (16 x 20, '
        'x25.6) (H x W, factor). Training upsamples them x25.6 (x17.9 to '
        'x33.3 over the random ratio), so the model learns their objects '
        'that much larger than inference at full resolution shows them, '
        "and from blurred pixels. Fix: set the scale to the data's size, "
        "e.g. scale=(20, 20) for the dataset's median longer side of 20 px,"
        ' and PointRandomCrop(crop_size=(256, 256)) (and the pad size) no '
        'larger than that; if the upsampling is intended, ignore this '
        'warning.')
    assert _build_warnings(tmp_path, cfg) == [warnings[0][len('WARNING: '):]]
    # the longer side at half the scale is not "much smaller"
    cfg = _write_config(tmp_path, train, _gt(train),
                        steps=_resize_steps(scale=(40, 40), crop=(16, 16)))
    assert _load_tool('analysis_tools', 'check_dataset.py').main([cfg]) == 0
    assert not _messages(capsys.readouterr().out, 'WARNING')


def test_train_scale_lists_the_first_images_only():
    """Many small images: the count and the first few names."""
    from p2seg_mm.datasets.config_checks import (MAX_LISTED_IMAGES,
                                                 check_train_scale)
    data_list = [dict(img_path=f'{i}.png', height=100, width=50)
                 for i in range(MAX_LISTED_IMAGES + 4)]
    data_list.append(dict(img_path='big.png', height=600, width=500))
    pipeline = [dict(type='PointResize', scale=(512, 512), keep_ratio=True)]
    [problem] = check_train_scale(data_list, pipeline, 'j.json')
    assert problem.level == 'warning'
    assert f'{MAX_LISTED_IMAGES + 4} of {MAX_LISTED_IMAGES + 5} images' in \
        problem.message
    assert f'{MAX_LISTED_IMAGES - 1}.png (100 x 50, x5.1) and 4 more' in \
        problem.message
    assert f'{MAX_LISTED_IMAGES}.png' not in problem.message
    assert 'big.png' not in problem.message
    assert 'upsamples them x5.1, so' in problem.message
    # no resize step, a scale_factor resize: nothing to compare
    assert check_train_scale(data_list, [], 'j.json') == []
    assert check_train_scale(
        data_list, [dict(type='PointResize', scale_factor=2.0)], 'j') == []


def test_resize_factor_follows_mmdet_resize():
    """keep_ratio: the longer side fits max(scale), the shorter min(scale)
    (mmcv rescale_size); otherwise the smaller axis factor; the factors
    are those of mmdet's Resize on an image of that size."""
    from mmdet.datasets.transforms import Resize
    from p2seg_mm.datasets.config_checks import resize_factor
    for (height, width), scale, keep in [((100, 50), (512, 512), True),
                                         ((300, 400), (1333, 800), True),
                                         ((100, 50), (200, 300), False)]:
        out = Resize(scale=scale, keep_ratio=keep)(
            dict(img=np.zeros((height, width, 3), np.uint8)))
        new_h, new_w = out['img_shape']
        expected = min(new_h / height, new_w / width)
        assert resize_factor(height, width, scale, keep) == pytest.approx(
            expected, abs=0.02)
