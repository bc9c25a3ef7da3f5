# Copyright (c) p2seg_mm contributors. All rights reserved.
import copy
import json
import re

import numpy as np
import pycocotools.mask as mask_util
import pytest

from p2seg_mm.evaluation.pseudo_quality import (evaluate_pseudo_masks,
                                                format_quality_table)
from tests.tool_loader import load_tool

H, W = 8, 8
CATS = [dict(id=5, name='cat'), dict(id=7, name='dog')]


def box(y0, y1, x0, x1):
    m = np.zeros((H, W), dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


def rle(mask):
    r = mask_util.encode(np.asfortranarray(mask[:, :, None].astype(
        np.uint8)))[0]
    return dict(size=r['size'], counts=r['counts'].decode())


A, B, C = box(0, 4, 0, 4), box(4, 8, 4, 8), box(0, 2, 6, 8)
PA, PB, PC = [2.5, 2.5], [6.5, 6.5], [7.5, 1.5]


def ann(i, img, cat, mask, point=None, **kw):
    out = dict(id=i, image_id=img, category_id=cat, segmentation=rle(mask),
               area=int(mask.sum()), bbox=[0, 0, 1, 1], iscrowd=0, **kw)
    if point is not None:
        out['point'] = point
    return out


def images(*ids):
    return [dict(id=i, file_name=f'{i}.jpg', height=H, width=W) for i in ids]


@pytest.fixture
def gt():
    crowd = ann(4, 2, 7, box(6, 8, 0, 2))
    crowd['iscrowd'] = 1
    return dict(images=images(1, 2), categories=CATS, annotations=[
        ann(1, 1, 5, A, PA), ann(2, 1, 5, B, PB), ann(3, 2, 7, C, PC), crowd])


def pseudo_of(gt_json, extra_images=()):
    anns = [
        dict(a, score=0.9) for a in copy.deepcopy(gt_json['annotations'])
        if not a['iscrowd']
    ]
    return dict(images=images(1, 2, *extra_images), categories=CATS,
                annotations=anns)


def test_perfect_pseudo_masks_score_one(gt):
    res = evaluate_pseudo_masks(pseudo_of(gt, extra_images=(3, )), gt)
    for key in ('coco/segm_AP', 'coco/segm_AP50', 'voc/mAP25', 'voc/mAP50',
                'voc/mAP70', 'voc/mAP75', 'point/mIoU'):
        assert res[key] == pytest.approx(1.0), key
    assert res['num_images'] == 2  # image 3 has no ground truth
    assert res['num_gt_instances'] == 3  # the crowd one is excluded
    assert res['num_pseudo_annotations'] == 3


def test_partial_and_missing_masks(gt):
    pseudo = pseudo_of(gt)
    pseudo['annotations'][0]['segmentation'] = rle(box(0, 4, 0, 2))  # .5
    pseudo['annotations'][1]['score'] = 0.8
    del pseudo['annotations'][2]  # the dog of image 2 is missing
    res = evaluate_pseudo_masks(pseudo, gt)
    assert res['point/mIoU'] == pytest.approx((0.5 + 1 + 0) / 3)
    # cat: half (.9, IoU .5) then B (.8, IoU 1), 2 gts; dog: 1 gt, no
    # prediction -> AP 0. At .5 the cat AP is 1; at .7 the half mask is a
    # FP: precision [0, 1/2], recall [0, 1/2] -> AP 1/4.
    assert res['voc/mAP50'] == pytest.approx((1 + 0) / 2)
    assert res['voc/mAP70'] == pytest.approx((0.25 + 0) / 2)


def test_point_matching_uses_the_shared_point(gt):
    pseudo = pseudo_of(gt)
    # the two cat masks of image 1 are swapped between the points
    pseudo['annotations'][0]['segmentation'] = rle(B)
    pseudo['annotations'][1]['segmentation'] = rle(A)
    res = evaluate_pseudo_masks(pseudo, gt)
    assert res['point/mIoU'] == pytest.approx(1 / 3)
    for a in pseudo['annotations']:
        del a['point']  # without points: best IoU of the same category
    assert evaluate_pseudo_masks(pseudo, gt)['point/mIoU'] == 1.0


def test_no_shared_image_raises(gt):
    pseudo = dict(images=images(9), categories=CATS, annotations=[])
    with pytest.raises(ValueError, match='share no image id'):
        evaluate_pseudo_masks(pseudo, gt)


def test_same_id_of_another_file_raises(gt, tmp_path):
    """Images are matched by id; a ground truth of other files under the
    same ids scored zeros silently. Now the ids and both names are given,
    the json paths too when the library is given paths."""
    pseudo = pseudo_of(gt)
    pseudo['images'][1]['file_name'] = 'frame_2.png'
    with pytest.raises(ValueError) as err:
        evaluate_pseudo_masks(pseudo, gt)
    assert str(err.value).startswith(
        '1 of the 2 image ids shared by the pseudo-label json and the '
        "ground-truth json name different files")
    assert ("image id 2: 'frame_2.png' in the pseudo-label json, '2.jpg' "
            'in the ground-truth json') in str(err.value)
    paths = tmp_path / 'pseudo.json', tmp_path / 'gt.json'
    for path, data in zip(paths, (pseudo, gt)):
        path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=re.escape(
            f"'frame_2.png' in {paths[0]}, '2.jpg' in {paths[1]}")):
        evaluate_pseudo_masks(str(paths[0]), str(paths[1]))


def test_unknown_category_raises(gt):
    pseudo = pseudo_of(gt)
    pseudo['annotations'][0]['category_id'] = 99
    with pytest.raises(ValueError, match='category_id 99'):
        evaluate_pseudo_masks(pseudo, gt)


def test_cli_writes_out_json(gt, tmp_path, capsys):
    gt_file, pseudo_file = tmp_path / 'gt.json', tmp_path / 'pseudo.json'
    gt_file.write_text(json.dumps(gt))
    pseudo_file.write_text(json.dumps(pseudo_of(gt)))
    module = load_tool('tools/analysis_tools/eval_pseudo_masks.py')
    out_json = tmp_path / 'out' / 'quality.json'
    module.main([str(pseudo_file), str(gt_file), '--out-json',
                 str(out_json)])
    saved = json.loads(out_json.read_text())
    assert saved['voc/mAP50'] == 1.0
    assert 'point/mIoU' in capsys.readouterr().out
    assert 'voc/mAP75' in format_quality_table(saved)
    with pytest.raises(FileNotFoundError, match='missing.json'):
        module.main([str(tmp_path / 'missing.json'), str(gt_file)])
