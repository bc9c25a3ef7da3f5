# Copyright (c) p2seg_mm contributors. All rights reserved.
import math

import numpy as np
import pytest

from p2seg_mm.evaluation.functional.voc_instance_ap import (
    average_precision, eval_instance_ap, image_mask_iou, mask_iou,
    rle_mask_iou)
from p2seg_mm.structures.mask_codec import encode_masks

H, W = 8, 8


def box(y0, y1, x0, x1):
    """A (H, W) bool mask with rows [y0, y1) and columns [x0, x1) set."""
    m = np.zeros((H, W), dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


A = box(0, 4, 0, 4)   # 16 px
B = box(4, 8, 4, 8)   # 16 px, disjoint from A
C = box(0, 2, 6, 8)   # 4 px, disjoint from A and B


def stack(*masks):
    if not masks:
        return np.zeros((0, H, W), dtype=bool)
    return np.stack(masks)


def run(preds, gts, num_classes=2, thr=0.5, tie_orders=0):
    """preds: per image [(mask, label, score)]; gts: per image [(mask, l)]."""
    return eval_instance_ap(
        [stack(*[p[0] for p in img]) for img in preds],
        [np.array([p[1] for p in img], dtype=np.int64) for img in preds],
        [np.array([p[2] for p in img], dtype=float) for img in preds],
        [stack(*[g[0] for g in img]) for img in gts],
        [np.array([g[1] for g in img], dtype=np.int64) for img in gts],
        num_classes, thr, tie_orders)


def test_mask_iou_dense_matches_rle_and_hand_values():
    pred = stack(A, box(0, 4, 0, 2), np.zeros((H, W), bool))
    gt = stack(A, B)
    ious = mask_iou(pred, gt)
    expected = np.array([[1., 0.], [0.5, 0.], [0., 0.]])
    np.testing.assert_allclose(ious, expected)
    rles = encode_masks(pred)
    gt_rles = [dict(size=r['size'], counts=r['counts'].decode())
               for r in encode_masks(gt)]  # str counts, as in json
    np.testing.assert_allclose(rle_mask_iou(rles, gt_rles), expected)
    np.testing.assert_allclose(image_mask_iou(pred, gt_rles), expected)
    assert image_mask_iou(stack(), gt).shape == (0, 2)


def test_mask_iou_size_mismatch_is_clear():
    with pytest.raises(ValueError, match='original image size'):
        mask_iou(np.zeros((1, 4, 4), bool), np.zeros((1, 4, 5), bool))


def test_average_precision_hand_value():
    # precision [1, 0.5, 2/3] at recall [0.5, 0.5, 1]: envelope 1 then 2/3
    ap = average_precision(np.array([1, .5, 2 / 3]), np.array([.5, .5, 1]))
    assert ap == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)


def test_perfect_predictions_give_ap_one():
    preds = [[(A, 0, .9), (B, 1, .8)], [(C, 0, .7)]]
    gts = [[(A, 0), (B, 1)], [(C, 0)]]
    out = run(preds, gts)
    np.testing.assert_allclose(out['ap'], [1., 1.])
    assert out['map'] == 1.0
    np.testing.assert_array_equal(out['num_gts'], [2, 1])


def test_false_positive_ranked_above_true_positives():
    # Sorted: FP (.9), TP A (.8), TP B (.7) -> precision [0, 1/2, 2/3],
    # recall [0, 1/2, 1]; envelope 2/3 on both recall steps -> AP 2/3.
    preds = [[(C, 0, .9), (A, 0, .8), (B, 0, .7)]]
    gts = [[(A, 0), (B, 0)]]
    out = run(preds, gts, num_classes=1)
    assert out['ap'][0] == pytest.approx(2 / 3)
    # the same ranking with the FP last gives AP 1
    preds = [[(C, 0, .1), (A, 0, .8), (B, 0, .7)]]
    assert run(preds, gts, num_classes=1)['map'] == pytest.approx(1.0)


def test_duplicate_detection_is_false_positive():
    # A (.9) TP, A again (.8) FP, B (.7) TP: precision [1, 1/2, 2/3],
    # recall [1/2, 1/2, 1] -> AP = 1/2 * 1 + 1/2 * 2/3 = 5/6.
    preds = [[(A, 0, .9), (A, 0, .8), (B, 0, .7)]]
    gts = [[(A, 0), (B, 0)]]
    assert run(preds, gts, num_classes=1)['map'] == pytest.approx(5 / 6)


def test_candidate_is_argmax_gt_even_if_already_matched():
    # p2 overlaps A with IoU 8/18 (its argmax) and B with IoU 2/24; A is
    # taken by p1, so p2 is a FP although its IoU with B passes the
    # threshold: precision [1, 1/2], recall [1/2, 1/2] -> AP 1/2.
    p2 = box(0, 4, 0, 2) | box(4, 5, 4, 6)
    np.testing.assert_allclose(
        mask_iou(stack(p2), stack(A, B)), [[8 / 18, 2 / 24]])
    preds = [[(A, 0, .9), (p2, 0, .8)]]
    gts = [[(A, 0), (B, 0)]]
    out = run(preds, gts, num_classes=1, thr=0.05)
    assert out['map'] == pytest.approx(0.5)


def test_missed_instances_limit_recall():
    # 3 gts, one found: precision [1], recall [1/3] -> AP 1/3.
    preds = [[(A, 0, .9)], []]
    gts = [[(A, 0), (B, 0)], [(C, 0)]]
    assert run(preds, gts, num_classes=1)['map'] == pytest.approx(1 / 3)


def test_empty_classes_are_nan_and_excluded():
    # class 0: perfect; class 1: gt but no prediction -> 0;
    # class 2: predictions but no gt -> nan; class 3: nothing -> nan.
    preds = [[(A, 0, .9), (B, 2, .8)]]
    gts = [[(A, 0), (C, 1)]]
    out = run(preds, gts, num_classes=4)
    assert out['ap'][0] == 1.0 and out['ap'][1] == 0.0
    assert math.isnan(out['ap'][2]) and math.isnan(out['ap'][3])
    assert out['map'] == pytest.approx(0.5)
    # no gt at all: mAP is nan
    out = run([[(A, 0, .9)]], [[]], num_classes=2)
    assert math.isnan(out['map'])


def test_iou_threshold_edge_is_inclusive():
    half = box(0, 4, 0, 2)  # IoU with A = 8/16 = 0.5 exactly
    preds = [[(half, 0, .9)]]
    gts = [[(A, 0)]]
    assert run(preds, gts, num_classes=1, thr=0.5)['map'] == 1.0
    assert run(preds, gts, num_classes=1, thr=0.51)['map'] == 0.0
    out = run(preds, gts, num_classes=1, thr=[0.25, 0.5, 0.75])
    np.testing.assert_allclose(out['map'], [1., 1., 0.])
    assert out['ap'].shape == (3, 1)


def test_rle_inputs_give_the_same_result_as_dense():
    rng = np.random.default_rng(0)
    pred = rng.random((5, H, W)) > 0.5
    gt = rng.random((3, H, W)) > 0.5
    labels, scores = rng.integers(0, 2, 5), rng.random(5)
    gt_labels = np.array([0, 1, 1])
    thrs = [0.1, 0.3]
    dense = eval_instance_ap([pred], [labels], [scores], [gt], [gt_labels],
                             2, thrs)
    rle = eval_instance_ap([encode_masks(pred)], [labels], [scores],
                           [encode_masks(gt)], [gt_labels], 2, thrs)
    np.testing.assert_allclose(dense['ap'], rle['ap'])


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match='one entry per image'):
        eval_instance_ap([stack(A)], [], [], [], [], 1)
    with pytest.raises(ValueError, match='image 0 has 1 predicted masks'):
        eval_instance_ap([stack(A)], [np.array([0, 0])], [np.array([1.])],
                         [stack(A)], [np.array([0])], 1)
    with pytest.raises(ValueError, match='outside'):
        eval_instance_ap([stack(A)], [np.array([3])], [np.array([1.])],
                         [stack(A)], [np.array([0])], 1)


def run_ties(preds, gts, tie_orders):
    return run(preds, gts, num_classes=1, tie_orders=tie_orders)['map']


def test_tie_orders_average_the_ranking_of_equal_scores():
    # one gt A; a FP (C) and the TP (A) with the same score. Input order
    # FP first: AP 1/2 (precision [0, 1/2] at recall [0, 1]); TP first:
    # AP 1. Each order has probability 1/2, so the expected AP is 3/4.
    gts = [[(A, 0)]]
    fp_first = [[(C, 0, 1.0), (A, 0, 1.0)]]
    tp_first = [[(A, 0, 1.0), (C, 0, 1.0)]]
    assert run_ties(fp_first, gts, 0) == pytest.approx(0.5)
    assert run_ties(tp_first, gts, 0) == pytest.approx(1.0)
    # 400 orders: std of the mean 0.25 / 20
    assert run_ties(fp_first, gts, 400) == pytest.approx(0.75, abs=0.05)
    assert run_ties(tp_first, gts, 400) == pytest.approx(0.75, abs=0.05)
    # seeded: the same call gives the same value, and the input order of
    # the tied predictions does not change it
    assert run_ties(fp_first, gts, 7) == run_ties(fp_first, gts, 7)
    assert run_ties(fp_first, gts, 7) == run_ties(tp_first, gts, 7)
    # ties across images are shuffled too
    two_images = [[(C, 0, 1.0)], [(A, 0, 1.0)]]
    assert run_ties(two_images, [[], [(A, 0)]], 0) == pytest.approx(0.5)
    assert run_ties(two_images, [[], [(A, 0)]], 400) == pytest.approx(
        0.75, abs=0.05)


def test_tie_orders_keep_distinct_scores_in_order():
    # FP .9 above the TPs: AP 2/3 whatever the tie orders
    preds = [[(C, 0, .9), (A, 0, .8), (B, 0, .7)]]
    gts = [[(A, 0), (B, 0)]]
    assert run_ties(preds, gts, 50) == pytest.approx(2 / 3)


@pytest.mark.parametrize('bad', [-1, 1.5, True, '3'])
def test_tie_orders_must_be_a_non_negative_int(bad):
    with pytest.raises(ValueError, match='tie_orders must be an int'):
        run_ties([[(A, 0, 1.0)]], [[(A, 0)]], bad)
