# Copyright (c) p2seg_mm contributors. All rights reserved.
import json
import os.path as osp

import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch
from pycocotools.coco import COCO

from p2seg_mm.structures.mask_codec import mask_to_annotation
from p2seg_mm.evaluation.metrics.pseudo_mask_dumper import (
    PseudoMaskDumper, load_done_image_ids, sidecar_path)

CLASSES = ('cat', 'dog')
SIZES = {1: (8, 8), 2: (6, 10)}


@pytest.fixture
def ann_file(tmp_path):
    data = dict(
        images=[
            dict(id=i, file_name=f'{i}.jpg', height=h, width=w)
            for i, (h, w) in SIZES.items()
        ],
        # ids are not in label order: labels map by name (json order
        # must follow the classes, issue #10)
        categories=[dict(id=3, name='cat'), dict(id=9, name='dog')],
        annotations=[])
    path = tmp_path / 'source.json'
    path.write_text(json.dumps(data))
    return str(path)


def box(img_id, y0, y1, x0, x1):
    m = np.zeros(SIZES[img_id], dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


def sample(img_id, masks, labels, scores, points=None):
    pred = dict(
        masks=torch.from_numpy(np.stack(masks)),
        labels=torch.tensor(labels),
        scores=torch.tensor(scores),
        bboxes=torch.zeros(len(masks), 4))
    if points is not None:
        pred['points'] = torch.tensor(points)
    return dict(img_id=img_id, pred_instances=pred)


SAMPLES = {
    1: sample(1, [box(1, 1, 3, 2, 5), box(1, 0, 0, 0, 0),
                  box(1, 4, 8, 0, 8)], [0, 1, 1], [0.9, 0.8, 0.7],
              points=[[3.5, 1.5], [0.5, 0.5], [2.5, 5.5]]),
    2: sample(2, [box(2, 0, 6, 9, 10), box(2, 0, 1, 0, 1)], [1, 0],
              [0.6, 0.05]),
}


def make_dumper(out_file, ann_file, **kwargs):
    dumper = PseudoMaskDumper(out_file=out_file, ann_file=ann_file,
                              **kwargs)
    dumper.dataset_meta = dict(classes=CLASSES)
    return dumper


def check_output(out_file, expected_masks):
    coco = COCO(out_file)
    assert sorted(coco.getImgIds()) == [1, 2]
    assert [c['id'] for c in coco.dataset['categories']] == [3, 9]
    anns = coco.dataset['annotations']
    assert [a['id'] for a in anns] == list(range(1, len(anns) + 1))
    assert len(anns) == len(expected_masks)
    for a, (img_id, mask, cat_id) in zip(anns, expected_masks):
        assert a['image_id'] == img_id and a['category_id'] == cat_id
        decoded = coco.annToMask(a).astype(bool)
        np.testing.assert_array_equal(decoded, mask)
        rows, cols = np.nonzero(mask)
        assert a['bbox'] == [cols.min(), rows.min(),
                             cols.max() - cols.min() + 1,
                             rows.max() - rows.min() + 1]
        assert a['area'] == mask.sum() and a['iscrowd'] == 0
    return anns


EXPECTED = [(1, box(1, 1, 3, 2, 5), 3), (1, box(1, 4, 8, 0, 8), 9),
            (2, box(2, 0, 6, 9, 10), 9)]


def test_export_two_images(tmp_path, ann_file):
    out_file = str(tmp_path / 'out' / 'pseudo.json')
    dumper = make_dumper(out_file, ann_file, score_thr=0.1)
    dumper.process({}, [SAMPLES[1]])
    dumper.process({}, [SAMPLES[2]])
    assert osp.exists(sidecar_path(out_file))
    metrics = dumper.evaluate(2)
    assert metrics == {
        'pseudo/num_annotations': 3,
        'pseudo/num_empty_dropped': 1
    }
    anns = check_output(out_file, EXPECTED)
    assert anns[0]['score'] == pytest.approx(0.9)
    assert anns[0]['point'] == [3.5, 1.5] and 'point' not in anns[2]
    assert not osp.exists(sidecar_path(out_file))
    assert not osp.exists(out_file + '.tmp')


def test_resume_after_crash_has_no_duplicates(tmp_path, ann_file):
    out_file = str(tmp_path / 'pseudo.json')
    first = make_dumper(out_file, ann_file, score_thr=0.1)
    first.process({}, [SAMPLES[1]])
    del first  # "crash": compute_metrics never runs
    assert not osp.exists(out_file)
    assert load_done_image_ids(out_file) == {1}
    # a write interrupted in the middle of a line is skipped
    with open(sidecar_path(out_file), 'a') as f:
        f.write('{"image_id": 2, "annotations": [{"seg')
    assert load_done_image_ids(out_file) == {1}

    second = make_dumper(out_file, ann_file, score_thr=0.1)
    second.process({}, [SAMPLES[2]])
    second.process({}, [SAMPLES[1]])  # redone: deduplicated
    metrics = second.evaluate(2)
    assert metrics['pseudo/num_annotations'] == 3
    assert metrics['pseudo/num_empty_dropped'] == 1
    check_output(out_file, EXPECTED)
    assert load_done_image_ids(out_file) == set()


def test_no_resume_ignores_a_stale_sidecar(tmp_path, ann_file):
    out_file = str(tmp_path / 'pseudo.json')
    make_dumper(out_file, ann_file).process({}, [SAMPLES[1]])
    dumper = make_dumper(out_file, ann_file, resume=False, score_thr=0.1)
    dumper.process({}, [SAMPLES[2]])
    assert load_done_image_ids(out_file) == {2}
    assert dumper.evaluate(1)['pseudo/num_annotations'] == 1


def test_corrupted_sidecar_line_raises(tmp_path):
    out_file = str(tmp_path / 'pseudo.json')
    with open(sidecar_path(out_file), 'w') as f:
        f.write('not json\n{"image_id": 1, "annotations": []}\n')
    with pytest.raises(ValueError, match='line 1'):
        load_done_image_ids(out_file)


def test_bad_inputs_raise(tmp_path, ann_file):
    out_file = str(tmp_path / 'pseudo.json')
    dumper = make_dumper(out_file, ann_file)
    wrong_size = sample(1, [np.ones((6, 10), bool)], [0], [1.0])
    with pytest.raises(ValueError, match='image id 1'):
        dumper.process({}, [wrong_size])
    unknown = sample(5, [np.ones((6, 10), bool)], [0], [1.0])
    with pytest.raises(ValueError, match='image id 5'):
        dumper.process({}, [unknown])
    dumper = PseudoMaskDumper(out_file=out_file, ann_file=ann_file)
    dumper.dataset_meta = dict(classes=('cat', 'bird'))
    with pytest.raises(ValueError, match='bird'):
        dumper.process({}, [SAMPLES[1]])
    with pytest.raises(ValueError, match='.json'):
        PseudoMaskDumper(out_file='x.pkl', ann_file=ann_file)


def test_mask_to_annotation_round_trip():
    mask = np.zeros((5, 7), bool)
    mask[1:4, 2] = True
    mask[3, 5] = True
    ann = mask_to_annotation(mask, 4, 3, 0.5)
    assert ann['bbox'] == [2.0, 1.0, 4.0, 3.0] and ann['area'] == 4
    assert isinstance(ann['segmentation']['counts'], str)
    np.testing.assert_array_equal(
        mask_util.decode(ann['segmentation']).astype(bool), mask)
    assert mask_to_annotation(np.zeros((5, 7), bool), 4, 3, 0.5) is None


def test_categories_in_another_order_than_the_classes_raise(tmp_path,
                                                            ann_file):
    """Issue #10 (one rule): mmdet would read the labels of such a json as
    the other class; the dumper refuses it like the dataset does."""
    with open(ann_file) as f:
        data = json.load(f)
    data['categories'].reverse()
    with open(ann_file, 'w') as f:
        json.dump(data, f)
    dumper = make_dumper(str(tmp_path / 'pseudo.json'), ann_file)
    with pytest.raises(ValueError, match='order'):
        dumper.process({}, [SAMPLES[1]])


def test_export_without_any_mask_fails_and_writes_nothing(tmp_path,
                                                          ann_file):
    """Issue #10 fault 6: an export that kept no mask exited 0 and stage C
    crashed later with "need at least one array to concatenate"."""
    out_file = str(tmp_path / 'pseudo.json')
    dumper = make_dumper(out_file, ann_file, score_thr=0.99)
    dumper.process({}, [SAMPLES[1], SAMPLES[2]])
    with pytest.raises(ValueError, match='no mask') as err:
        dumper.evaluate(2)
    assert '5 scored below score_thr=0.99' in str(err.value)
    assert 'Fix' in str(err.value)
    assert not osp.exists(out_file)
    assert not osp.exists(sidecar_path(out_file))
    # intermediate exports (PseudoMaskExportHook interval) may be empty
    dumper = make_dumper(out_file, ann_file, score_thr=0.99,
                         allow_empty=True)
    dumper.process({}, [SAMPLES[1]])
    assert dumper.evaluate(1)['pseudo/num_annotations'] == 0


def test_duplicate_image_ids_in_source_raise(tmp_path, ann_file):
    """Issue #10 fault 2: the exported json had annotation ids [3, 4, 3,
    4] for two image entries with one id."""
    with open(ann_file) as f:
        data = json.load(f)
    data['images'][1]['id'] = 1
    with open(ann_file, 'w') as f:
        json.dump(data, f)
    dumper = make_dumper(str(tmp_path / 'pseudo.json'), ann_file)
    with pytest.raises(ValueError, match='image id 1 is used by 2'):
        dumper.process({}, [SAMPLES[1]])
