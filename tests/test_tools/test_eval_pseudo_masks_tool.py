# Copyright (c) p2seg_mm contributors. All rights reserved.
"""tools/analysis_tools/eval_pseudo_masks.py on bad ground truth (issue #10,
fault 7: pycocotools crashed with IndexError / TypeError naming nothing)."""
import json

import numpy as np
import pycocotools.mask as mask_util
import pytest

from p2seg_mm.evaluation.pseudo_quality import evaluate_pseudo_masks

from tests.tool_loader import load_tool


def _tool():
    return load_tool('tools/analysis_tools/eval_pseudo_masks.py')


def _rle(mask):
    r = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    return dict(size=r['size'], counts=r['counts'].decode())


def _jsons(tmp_path, bad_segmentations):
    mask = np.zeros((8, 8), bool)
    mask[:4, :4] = True
    anns = [dict(id=1, image_id=1, category_id=1, segmentation=_rle(mask),
                 area=16, iscrowd=0)]
    for k, segm in enumerate(bad_segmentations, start=2):
        anns.append(dict(id=k, image_id=1, category_id=1, segmentation=segm,
                         area=1, iscrowd=0))
    gt = dict(images=[dict(id=1, file_name='1.jpg', height=8, width=8)],
              categories=[dict(id=1, name='cat')], annotations=anns)
    pseudo = dict(gt, annotations=[dict(anns[0], score=1.0)])
    gt_file, pseudo_file = tmp_path / 'gt.json', tmp_path / 'pseudo.json'
    gt_file.write_text(json.dumps(gt))
    pseudo_file.write_text(json.dumps(pseudo))
    return str(pseudo_file), str(gt_file), gt, pseudo


def test_every_bad_mask_is_listed_with_file_and_annotation(tmp_path):
    pseudo_file, gt_file, _, _ = _jsons(tmp_path, [[], [[0, 0, 4, 4]]])
    with pytest.raises(ValueError) as err:
        _tool().main([pseudo_file, gt_file])
    msg = str(err.value)
    assert '2 problem(s)' in msg and gt_file in msg
    assert 'annotation id 2 of image id 1 "segmentation" is an empty' in msg
    assert 'annotation id 3 of image id 1 polygon 0' in msg
    assert 'has 4 numbers' in msg and 'Fix' in msg


def test_library_call_names_the_annotation(tmp_path):
    _, _, gt, pseudo = _jsons(tmp_path, [[[0, 0, 4, 4]]])
    with pytest.raises(ValueError, match='annotation id 2 of image id 1'):
        evaluate_pseudo_masks(pseudo, gt)


def test_tie_orders_rank_equal_scores_at_random(tmp_path):
    # a false positive (score 1) filed before the true positive (score 1):
    # file order gives AP 1/2, the mean over random orders ~3/4
    _, gt_file, gt, _ = _jsons(tmp_path, [])
    wrong = np.zeros((8, 8), bool)
    wrong[6:, 6:] = True
    pseudo = dict(gt, annotations=[
        dict(gt['annotations'][0], id=2, segmentation=_rle(wrong), area=4,
             score=1.0),
        dict(gt['annotations'][0], id=1, score=1.0)])
    pseudo_file = tmp_path / 'tied.json'
    pseudo_file.write_text(json.dumps(pseudo))
    file_order = _tool().main([str(pseudo_file), gt_file,
                               '--tie-orders', '0'])
    assert file_order['voc/mAP50'] == pytest.approx(0.5)
    shuffled = _tool().main([str(pseudo_file), gt_file])  # default 20
    assert 0.6 < shuffled['voc/mAP50'] < 0.9
    for bad in (['--tie-orders', '-1'], ['--iou-thrs', '1.5'],
                ['--iou-thrs', '0.5', '0.504']):
        with pytest.raises(SystemExit):
            _tool().main([str(pseudo_file), gt_file] + bad)


def test_wrong_ground_truth_json_stops_with_the_mismatched_files(tmp_path):
    """New-user trial: the ground truth of other images with the same ids
    was matched by id alone and scored zeros, silently. Every shared id
    must name the same file_name; the first mismatches are listed with
    the ids and both file names."""
    pseudo_file, gt_file, gt, pseudo = _jsons(tmp_path, [])
    assert _tool().main([pseudo_file, gt_file])['voc/mAP50'] == 1.0
    wrong = dict(gt, images=[dict(id=k, file_name=f'other_{k}.jpg', height=8,
                                  width=8) for k in range(1, 8)])
    pseudo = dict(pseudo, images=[dict(img, file_name=f'{img["id"]}.jpg')
                                  for img in wrong['images']])
    (tmp_path / 'pseudo.json').write_text(json.dumps(pseudo))
    wrong_file = tmp_path / 'wrong_gt.json'
    wrong_file.write_text(json.dumps(wrong))
    with pytest.raises(ValueError) as err:
        _tool().main([pseudo_file, str(wrong_file)])
    msg = str(err.value)
    assert msg.startswith(f'7 of the 7 image ids shared by {pseudo_file} '
                          f'and {wrong_file} name different files')
    assert (f"image id 1: '1.jpg' in {pseudo_file}, 'other_1.jpg' in "
            f'{wrong_file}') in msg
    assert "image id 5: '5.jpg'" in msg and 'image id 6' not in msg
    assert '... and 2 more' in msg and 'Fix: give the ground truth' in msg


def test_points_json_given_for_the_masks_says_so(tmp_path):
    """New-user trial: a points json passed as the pseudo-masks listed one
    "has no segmentation" error per annotation with a fix that did not
    apply; it is one message naming the mistake."""
    pseudo_file, gt_file, _, pseudo = _jsons(tmp_path, [])
    points = tmp_path / 'points.json'
    points.write_text(json.dumps(dict(pseudo, annotations=[
        dict(id=1, image_id=1, category_id=1, point=[1.5, 1.5], iscrowd=0)
    ])))
    with pytest.raises(ValueError) as err:
        _tool().main([str(points), gt_file])
    assert str(err.value).startswith(
        f'{points}: none of its 1 annotations has a "segmentation": it '
        'looks like a points json, not masks.')
    _tool().main([pseudo_file, gt_file])  # masks: scored
