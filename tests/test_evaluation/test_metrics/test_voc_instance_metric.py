# Copyright (c) p2seg_mm contributors. All rights reserved.
import json

import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch

import p2seg_mm.evaluation.metrics.voc_instance_metric as metric_module
from p2seg_mm.evaluation.metrics.voc_instance_metric import VOCInstanceMetric

H, W = 8, 8


def box(y0, y1, x0, x1):
    m = np.zeros((H, W), dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


A, B, C = box(0, 4, 0, 4), box(4, 8, 4, 8), box(0, 2, 6, 8)


def rle(mask):
    r = mask_util.encode(np.asfortranarray(mask[:, :, None].astype(
        np.uint8)))[0]
    return dict(size=r['size'], counts=r['counts'].decode())


@pytest.fixture
def ann_file(tmp_path):
    anns = [
        dict(id=1, image_id=1, category_id=12, segmentation=rle(A)),
        dict(id=2, image_id=1, category_id=12, segmentation=rle(B)),
        # crowd (polygon): excluded from the evaluation
        dict(id=3, image_id=1, category_id=4, iscrowd=1,
             segmentation=[[0, 6, 2, 6, 2, 8, 0, 8]]),
        dict(id=4, image_id=2, category_id=4, segmentation=rle(C)),
    ]
    data = dict(
        images=[dict(id=i, file_name=f'{i}.jpg', height=H, width=W)
                for i in (1, 2, 3)],
        # ids not in label order: mapped by name, in the classes' order
        categories=[dict(id=12, name='cat'), dict(id=4, name='dog')],
        annotations=anns)
    path = tmp_path / 'gt.json'
    path.write_text(json.dumps(data))
    return str(path)


def sample(img_id, masks, labels, scores):
    masks = np.stack(masks) if masks else np.zeros((0, H, W), bool)
    return dict(
        img_id=img_id,
        pred_instances=dict(
            masks=torch.from_numpy(masks),
            labels=torch.tensor(labels, dtype=torch.long),
            scores=torch.tensor(scores, dtype=torch.float)))


def make_metric(ann_file, classes=('cat', 'dog'), **kwargs):
    metric = VOCInstanceMetric(ann_file=ann_file, **kwargs)
    metric.dataset_meta = dict(classes=classes)
    return metric


def test_perfect_predictions(ann_file, monkeypatch):
    logged = []
    monkeypatch.setattr(metric_module, 'print_log',
                        lambda msg, **kw: logged.append(msg))
    metric = make_metric(ann_file)
    metric.process({}, [sample(1, [A, B], [0, 0], [0.9, 0.8])])
    pre_encoded = sample(2, [C], [1], [0.7])
    pre_encoded['pred_instances']['masks'] = [rle(C)]  # RLE input
    metric.process({}, [pre_encoded, sample(3, [], [], [])])
    assert all(isinstance(r['masks'], list) for r in metric.results)
    out = metric.evaluate(3)
    assert out == {
        'voc/mAP25': 1.0,
        'voc/mAP50': 1.0,
        'voc/mAP70': 1.0,
        'voc/mAP75': 1.0
    }
    assert len(logged) == 1
    assert 'cat' in logged[0] and 'AP50' in logged[0]


def test_hand_computed_values(ann_file, monkeypatch):
    monkeypatch.setattr(metric_module, 'print_log', lambda *a, **k: None)
    metric = make_metric(ann_file, iou_thrs=(0.5, 0.75), classwise=False)
    half_b = box(4, 8, 4, 6)  # IoU 0.5 with B
    # cat: FP (C, .95), A (.9), half B (.8); 2 gts.
    #   t=.5 : FP, TP, TP -> precision [0, 1/2, 2/3], recall [0, 1/2, 1]
    #          -> AP 2/3
    #   t=.75: FP, TP, FP -> precision [0, 1/2, 1/3], recall [0, 1/2, 1/2]
    #          -> AP 1/4
    # dog: 1 gt in image 2, no prediction -> AP 0.
    metric.process({}, [sample(1, [C, A, half_b], [0, 0, 0],
                               [0.95, 0.9, 0.8])])
    metric.process({}, [sample(2, [], [], [])])
    out = metric.evaluate(2)
    assert out['voc/mAP50'] == pytest.approx((2 / 3 + 0) / 2)
    assert out['voc/mAP75'] == pytest.approx((1 / 4 + 0) / 2)


def test_errors(ann_file, monkeypatch):
    monkeypatch.setattr(metric_module, 'print_log', lambda *a, **k: None)
    metric = make_metric(ann_file, classes=('cat', 'horse'))
    metric.process({}, [sample(1, [A], [0], [0.9])])
    with pytest.raises(ValueError, match='horse'):
        metric.evaluate(1)
    metric = make_metric(ann_file)
    metric.process({}, [sample(7, [A], [0], [0.9])])
    with pytest.raises(ValueError, match='image id 7'):
        metric.evaluate(1)
    metric = make_metric(ann_file)
    metric.process({}, [sample(1, [A], [0], [0.9])] * 2)
    with pytest.raises(ValueError, match='more than once'):
        metric.evaluate(2)
    with pytest.raises(ValueError, match='iou_thrs'):
        VOCInstanceMetric(ann_file=ann_file, iou_thrs=(0, 0.5))


def test_inside_an_evaluator_with_det_data_samples(ann_file, monkeypatch):
    from mmengine.evaluator import Evaluator
    from mmengine.structures import InstanceData

    from mmdet.structures import DetDataSample
    monkeypatch.setattr(metric_module, 'print_log', lambda *a, **k: None)
    evaluator = Evaluator(
        VOCInstanceMetric(ann_file=ann_file, iou_thrs=(0.5, )))
    evaluator.dataset_meta = dict(classes=('cat', 'dog'))
    samples = []
    for img_id, masks, labels in ((1, [A, B], [0, 0]), (2, [C], [1])):
        s = DetDataSample(metainfo=dict(img_id=img_id, ori_shape=(H, W)))
        s.pred_instances = InstanceData(
            masks=torch.from_numpy(np.stack(masks)),
            labels=torch.tensor(labels),
            scores=torch.ones(len(labels)),
            bboxes=torch.zeros(len(labels), 4))
        samples.append(s)
    evaluator.process(data_samples=samples, data_batch={})
    assert evaluator.evaluate(2) == {'voc/mAP50': 1.0}


def test_json_categories_in_another_order_raise(ann_file, monkeypatch):
    """Issue #10 fault 5 (one rule): CocoMetric scores such a json as the
    other class, so every metric refuses it."""
    monkeypatch.setattr(metric_module, 'print_log', lambda *a, **k: None)
    metric = make_metric(ann_file, classes=('dog', 'cat'))
    metric.process({}, [sample(1, [A], [0], [0.9])])
    with pytest.raises(ValueError, match='order'):
        metric.evaluate(1)


@pytest.mark.parametrize('segmentation, match', [
    ([], 'empty list'),
    ([[0, 0, 4, 4]], 'has 4 numbers'),
    (dict(size=[H, W + 1], counts='abc'), 'RLE "size"'),
    (None, 'no "segmentation"'),
])
def test_bad_ground_truth_masks_name_the_annotation(ann_file, monkeypatch,
                                                    segmentation, match):
    """Issue #10 fault 7: pycocotools raised IndexError / TypeError deep
    inside, naming no file or annotation."""
    monkeypatch.setattr(metric_module, 'print_log', lambda *a, **k: None)
    with open(ann_file) as f:
        data = json.load(f)
    if segmentation is None:
        del data['annotations'][3]['segmentation']
    else:
        data['annotations'][3]['segmentation'] = segmentation
    with open(ann_file, 'w') as f:
        json.dump(data, f)
    metric = make_metric(ann_file)
    metric.process({}, [sample(2, [C], [1], [0.9])])
    with pytest.raises(ValueError, match=match) as err:
        metric.evaluate(1)
    assert ann_file in str(err.value)
    assert 'annotation id 4 of image id 2' in str(err.value)


def test_repeated_image_ids_in_ground_truth_raise(ann_file, monkeypatch):
    """Issue #10 fault 2 (whole kind): pycocotools keeps one of two image
    entries with one id and moves the other's annotations to it."""
    monkeypatch.setattr(metric_module, 'print_log', lambda *a, **k: None)
    with open(ann_file) as f:
        data = json.load(f)
    data['images'][2]['id'] = 1
    with open(ann_file, 'w') as f:
        json.dump(data, f)
    metric = make_metric(ann_file)
    metric.process({}, [sample(1, [A], [0], [0.9])])
    with pytest.raises(ValueError, match='image id 1 is used by 2'):
        metric.evaluate(1)
