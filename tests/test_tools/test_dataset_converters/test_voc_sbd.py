# Copyright (c) p2seg_mm contributors. All rights reserved.
import os
import os.path as osp

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from scipy.io import loadmat, savemat

from tests.tool_loader import add_tool_dir

add_tool_dir('tools/dataset_converters/voc_sbd_to_coco.py')
from voc_sbd import (VOC_CLASSES, convert_voc_sbd,  # noqa: E402
                     load_sbd_instances, sbd_instances, split_ids,
                     voc_instances)

H, W = 10, 12


def _palette_png(path, arr):
    im = Image.fromarray(arr.astype(np.uint8), mode='P')
    pal = [0] * 768
    for i in range(256):
        pal[3 * i:3 * i + 3] = [(i * 37) % 256, (i * 91) % 256, i]
    im.putpalette(pal)
    im.save(path)


def _voc_maps():
    obj = np.zeros((H, W), np.uint8)
    cls = np.zeros((H, W), np.uint8)
    obj[1:5, 1:6], cls[1:5, 1:6] = 1, 15  # person
    cls[1, 1] = 3  # minority wrong class inside instance 1
    obj[5, :], cls[5, :] = 255, 255  # boundary band
    obj[6:9, 2:10], cls[6:9, 2:10] = 2, 7  # car
    return obj, cls


def _write_list(path, ids):
    with open(path, 'w') as f:
        f.write('\n'.join(ids) + '\n')


def _sbd_mat(path, seg, cats):
    """SBD layout: 1x1 struct GTinst, Categories (N, 1), Boundaries cells."""
    bounds = np.empty((len(cats), 1), dtype=object)
    for k in range(len(cats)):
        bounds[k, 0] = np.zeros((2, 2), np.uint8)
    savemat(
        path, {
            'GTinst':
            dict(
                Segmentation=seg.astype(np.uint8),
                Categories=np.asarray(cats, np.uint8).reshape(-1, 1),
                Boundaries=bounds)
        })


@pytest.fixture
def roots(tmp_path):
    voc = tmp_path / 'VOCdevkit' / 'VOC2012'
    for d in ('JPEGImages', 'SegmentationObject', 'SegmentationClass',
              'ImageSets/Segmentation'):
        (voc / d).mkdir(parents=True)
    obj, cls = _voc_maps()
    for i in ('2007_000001', '2007_000002'):
        _palette_png(voc / 'SegmentationObject' / f'{i}.png', obj)
        _palette_png(voc / 'SegmentationClass' / f'{i}.png', cls)
    _write_list(voc / 'ImageSets/Segmentation/train.txt', ['2007_000001'])
    _write_list(voc / 'ImageSets/Segmentation/val.txt', ['2007_000002'])
    sbd = tmp_path / 'benchmark_RELEASE' / 'dataset'
    (sbd / 'inst').mkdir(parents=True)
    seg = np.zeros((H + 2, W), np.uint8)
    seg[0:3, 0:3], seg[4:8, 4:12] = 1, 2
    for i in ('2007_000001', '2008_000003', '2008_000004', '2007_000002'):
        _sbd_mat(sbd / 'inst' / f'{i}.mat', seg, [12, 1])
    _write_list(sbd / 'train.txt', ['2007_000001', '2008_000003'])
    _write_list(sbd / 'val.txt', ['2008_000004', '2007_000002'])
    return tmp_path


def test_voc_instances_majority_class_and_boundary():
    obj, cls = _voc_maps()
    insts = voc_instances(obj, cls)
    assert [c for _, c in insts] == [15, 7]
    assert insts[0][0].sum() == 20 and not insts[0][0][5].any()
    assert not any(m[5].any() for m, _ in insts)
    with pytest.raises(ValueError, match='shape'):
        voc_instances(obj, cls[:-1])


def test_sbd_struct_layouts(tmp_path):
    seg = np.zeros((4, 5), np.uint8)
    seg[0, 0], seg[2:, 2:] = 1, 2
    _sbd_mat(tmp_path / 'x.mat', seg, [3, 20])
    # scipy's own struct layout and the record/unsqueezed layouts
    for kw in (dict(squeeze_me=True, struct_as_record=False),
               dict(squeeze_me=False, struct_as_record=True),
               dict(squeeze_me=False, struct_as_record=False)):
        gt = loadmat(tmp_path / 'x.mat', **kw)['GTinst']
        shape, insts = sbd_instances(gt)
        assert shape == (4, 5)
        assert [c for _, c in insts] == [3, 20]
        assert insts[1][0].sum() == 6
    # one instance: Categories squeezes to a scalar
    seg1 = (seg == 2).astype(np.uint8)
    _sbd_mat(tmp_path / 'one.mat', seg1, [5])
    os.makedirs(tmp_path / 'inst')
    os.replace(tmp_path / 'one.mat', tmp_path / 'inst' / 'one.mat')
    shape, insts = load_sbd_instances(str(tmp_path), 'one')
    assert len(insts) == 1 and insts[0][1] == 5
    with pytest.raises(FileNotFoundError, match='nope.mat'):
        load_sbd_instances(str(tmp_path), 'nope')
    savemat(tmp_path / 'inst' / 'bad.mat', {'X': np.zeros(2)})
    with pytest.raises(ValueError, match='GTinst'):
        load_sbd_instances(str(tmp_path), 'bad')


def test_split_ids_prefer_voc_and_exclude_val(roots):
    ids = split_ids(
        str(roots / 'VOCdevkit' / 'VOC2012'),
        str(roots / 'benchmark_RELEASE' / 'dataset'))
    assert ids['train_aug'] == {
        '2007_000001': 'voc',
        '2008_000003': 'sbd',
        '2008_000004': 'sbd'
    }
    assert ids['val'] == {'2007_000002': 'voc'}


def test_convert_writes_coco(roots):
    out = convert_voc_sbd(
        str(roots / 'VOCdevkit'),
        str(roots / 'benchmark_RELEASE'),
        str(roots / 'ann'),
        progress=False)
    assert set(out) == {'train_aug', 'val'}
    assert osp.basename(out['train_aug']) == 'voc_2012_train_aug.json'
    train = COCO(out['train_aug'])
    assert len(train.imgs) == 3 and len(train.anns) == 6
    assert [c['name']
            for c in train.loadCats(sorted(train.cats))] == list(VOC_CLASSES)
    names = {i['file_name']: i for i in train.imgs.values()}
    assert names['2007_000001.jpg']['height'] == H  # VOC size, not SBD
    assert names['2008_000003.jpg']['height'] == H + 2
    voc_img = names['2007_000001.jpg']['id']
    anns = train.loadAnns(train.getAnnIds(imgIds=[voc_img]))
    assert [a['category_id'] for a in anns] == [15, 7]
    m = train.annToMask(anns[1]).astype(bool)
    np.testing.assert_array_equal(m, _voc_maps()[0] == 2)
    assert anns[1]['bbox'] == [2.0, 6.0, 8.0, 3.0]
    assert anns[1]['area'] == 24.0
    sbd_anns = train.loadAnns(
        train.getAnnIds(imgIds=[names['2008_000004.jpg']['id']]))
    assert [a['category_id'] for a in sbd_anns] == [12, 1]
    assert mask_utils.area(sbd_anns[0]['segmentation']) == 9
    val = COCO(out['val'])
    assert [i['file_name'] for i in val.imgs.values()] == ['2007_000002.jpg']


def test_missing_files_name_path(roots):
    os.remove(roots / 'VOCdevkit/VOC2012/SegmentationClass/2007_000002.png')
    with pytest.raises(FileNotFoundError, match='2007_000002.png'):
        convert_voc_sbd(
            str(roots / 'VOCdevkit'),
            None,
            str(roots / 'a'),
            splits=['val'],
            progress=False)
    with pytest.raises(FileNotFoundError, match='train.txt'):
        convert_voc_sbd(str(roots), None, str(roots / 'a'), progress=False)
