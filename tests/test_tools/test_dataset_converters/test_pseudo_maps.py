# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Pseudo-map maker on fabricated bright/dark disks with known classes."""
import json

import cv2
import numpy as np
import pytest

from tests.tool_loader import add_tool_dir, load_tool

TOOL = 'tools/dataset_converters/make_pseudo_maps.py'
add_tool_dir(TOOL)
from pseudo_maps import (PseudoMapConfig, foreground_iou,  # noqa: E402
                         make_pseudo_map)
H, W = 32, 48


def _scene(touching=False):
    """Background 20 (+-2 noise), disks of 200; returns image, gt masks."""
    rng = np.random.RandomState(0)
    image = (20 + rng.randint(-2, 3, (H, W))).astype(np.uint8)
    yy, xx = np.mgrid[:H, :W] + 0.5
    centres = [(10, 10), (20 if touching else 30, 10), (24, 25)]
    disks = [(xx - cx)**2 + (yy - cy)**2 <= 25 for cx, cy in centres]
    for disk in disks:
        image[disk] = 200
    return image, disks


def test_bright_disks_classes_ignore_and_band():
    image, disks = _scene()
    xy = np.array([[10.5, 10.5], [30.5, 9.5]])  # disk 3 has no point
    seg, stats = make_pseudo_map(image, xy, np.array([0, 1]))
    assert stats['polarity'] == 1.0 and stats['point_coverage'] == 1.0
    assert seg[10, 10] == 1 and seg[10, 30] == 2  # (row, col)
    assert seg[25, 24] == 255  # component without a point: ignore
    assert seg[0, 0] == 0 and seg[31, 47] == 0  # background
    # the band: the first pixel right of disk 1 that is not class 1
    row = seg[10, 10:]
    assert row[np.argmax(row != 1)] == 255
    assert foreground_iou(seg, disks[0], classes=[0]) > 0.9
    # dark objects on a bright background: same map
    seg_dark, stats = make_pseudo_map(255 - image, xy, np.array([0, 1]))
    assert stats['polarity'] == -1.0
    np.testing.assert_array_equal(seg_dark, seg)


@pytest.mark.parametrize('conflict, left, right', [('nearest', 1, 2),
                                                   ('ignore', 255, 255)])
def test_touching_objects_of_two_classes(conflict, left, right):
    image, _ = _scene(touching=True)
    xy = np.array([[10.5, 10.5], [20.5, 10.5]])
    seg, _ = make_pseudo_map(image, xy, np.array([0, 1]),
                             PseudoMapConfig(conflict=conflict))
    assert seg[10, 7] == left and seg[10, 23] == right


def test_threshold_lowered_until_points_covered():
    """A faint object (k=6 misses it) is found by lowering k."""
    rng = np.random.RandomState(1)
    image = (100 + rng.randint(-3, 4, (H, W))).astype(np.uint8)
    image[8:16, 8:16] = 108  # MAD 2 -> 6 * 1.48 * 2 = 17.8 > 8
    seg, stats = make_pseudo_map(image, np.array([[11.5, 11.5]]),
                                 np.array([0]), PseudoMapConfig(sigma=0))
    assert stats['k'] < 6 and seg[11, 11] == 1 and seg[28, 40] == 0


def test_cli_writes_maps_the_loader_reads(tmp_path, capsys):
    from p2seg_mm.datasets.transforms.loading import LoadP2SegAnnotations
    tool = _load_tool()
    image, _ = _scene()
    (tmp_path / 'imgs').mkdir()
    cv2.imwrite(str(tmp_path / 'imgs' / 'f1.png'), image)
    coco = dict(
        images=[dict(id=1, file_name='f1.png', height=H, width=W)],
        categories=[dict(id=1, name='a'), dict(id=2, name='b')],
        annotations=[
            dict(id=1, image_id=1, category_id=2, point=[10.5, 10.5],
                 iscrowd=0)
        ])
    (tmp_path / 'p.json').write_text(json.dumps(coco))
    rows = tool.main([
        str(tmp_path / 'p.json'), '--img-dir',
        str(tmp_path / 'imgs'), '--out-dir',
        str(tmp_path / 'maps')
    ])
    assert rows[0]['point_coverage'] == 1.0
    results = LoadP2SegAnnotations(num_classes=2)(
        dict(img_path='f1.png', seg_map_path=str(tmp_path / 'maps' /
                                                 'f1.png'),
             img_shape=(H, W), instances=[]))
    assert results['gt_seg_map'][10, 10] == 2
    assert 'replacing' not in capsys.readouterr().out
    # a second run says that it replaces the maps already there
    tool.main([
        str(tmp_path / 'p.json'), '--img-dir',
        str(tmp_path / 'imgs'), '--out-dir',
        str(tmp_path / 'maps')
    ])
    assert 'replacing 1 of the 1 maps in ' + str(tmp_path / 'maps') in \
        capsys.readouterr().out


def _load_tool():
    return load_tool(TOOL)


def test_cli_from_config_with_gt_iou(tmp_path):
    """A config source finds json, images and map folder from its train
    dataset; ``--gt`` reports the foreground IoU (here checked by hand)."""
    from pycocotools import mask as mask_utils
    tool = _load_tool()
    image, disks = _scene()
    root = tmp_path / 'data'
    (root / 'images').mkdir(parents=True)
    cv2.imwrite(str(root / 'images' / 'f1.png'), image)
    img = dict(id=1, file_name='f1.png', height=H, width=W)
    cats = [dict(id=1, name='a'), dict(id=2, name='b')]
    pts = dict(images=[img], categories=cats, annotations=[
        dict(id=1, image_id=1, category_id=1, point=[10.5, 10.5], iscrowd=0)
    ])
    (root / 'points.json').write_text(json.dumps(pts))
    rle = mask_utils.encode(np.asfortranarray(disks[0].astype(np.uint8)))
    rle['counts'] = rle['counts'].decode()
    gt = dict(images=[img], categories=cats, annotations=[
        dict(id=1, image_id=1, category_id=1, segmentation=rle, iscrowd=0,
             area=float(disks[0].sum()), bbox=[5, 5, 11, 11])
    ])
    (root / 'gt.json').write_text(json.dumps(gt))
    config = tmp_path / 'cfg.py'
    config.write_text(
        f'train_dataloader = dict(dataset=dict(type="RepeatDataset", '
        f'times=2, dataset=dict(data_root="{root}/", '
        'ann_file="points.json", '
        'data_prefix=dict(img="images/", seg="maps/"))))\n')
    rows = tool.main([str(config), '--gt', 'gt.json', '--sigma', '0'])
    seg = cv2.imread(str(root / 'maps' / 'f1.png'), cv2.IMREAD_UNCHANGED)
    fg = seg == 1
    expected = (fg & disks[0]).sum() / (fg | disks[0]).sum()
    assert fg[disks[0]].mean() > 0.9  # the disk with the point
    assert (seg[disks[2]] == 255).all()  # a blob without point: ignore
    ious = {r['gt_class']: r['foreground_iou'] for r in rows
            if 'gt_class' in r}
    assert ious == {'a': pytest.approx(expected)} and expected > 0.8
    bad = tmp_path / 'bad.py'
    bad.write_text('train_dataloader = dict(dataset=dict(ann_file="p.json"))')
    # usage errors end the command with one line (no traceback)
    with pytest.raises(SystemExit, match='make_pseudo_maps: .*data_prefix'):
        tool.main([str(bad)])
    with pytest.raises(SystemExit, match='make_pseudo_maps: .*--img-dir'):
        tool.main([str(root / 'points.json')])


def test_cli_config_with_images_at_data_root_and_gt_errors(tmp_path):
    """``data_prefix=dict(img='')`` (images in data_root, the README's own
    data config) is a valid prefix; a missing ``--gt`` file or one that
    shares no image with the points stops with its name."""
    tool = _load_tool()
    image, _ = _scene()
    root = tmp_path / 'cells'
    root.mkdir()
    cv2.imwrite(str(root / 'f1.png'), image)
    img = dict(id=1, file_name='f1.png', height=H, width=W)
    cats = [dict(id=1, name='a')]
    (root / 'points.json').write_text(json.dumps(dict(
        images=[img], categories=cats, annotations=[
            dict(id=1, image_id=1, category_id=1, point=[10.5, 10.5],
                 iscrowd=0)])))
    other = dict(images=[dict(img, file_name='other.png')], categories=cats,
                 annotations=[])
    (root / 'other_gt.json').write_text(json.dumps(other))
    config = tmp_path / 'cfg.py'
    config.write_text(
        f'train_dataloader = dict(dataset=dict(data_root="{root}/", '
        'ann_file="points.json", '
        'data_prefix=dict(img="", seg="pseudo_maps/")))\n')
    tool.main([str(config), '--sigma', '0'])
    assert (root / 'pseudo_maps' / 'f1.png').is_file()
    with pytest.raises(SystemExit, match="missing_gt.json: no such file "
                       r"\(relative paths: to the config's data_root"):
        tool.main([str(config), '--gt', 'missing_gt.json'])
    # a json source has no data_root: the message does not mention one
    with pytest.raises(SystemExit, match=r'missing_gt.json: no such file\.$'):
        tool.main([str(root / 'points.json'), '--img-dir', str(root),
                   '--out-dir', str(tmp_path / 'maps'), '--gt',
                   'missing_gt.json'])
    with pytest.raises(ValueError, match='other_gt.json'):
        tool.main([str(config), '--gt', 'other_gt.json'])


def test_config_classes_set_the_map_values_and_the_gt_classes(tmp_path):
    """The config's classes label the maps, by name (value ``k + 1`` is
    ``classes[k]``, as the dataset reads it), not by json position: a
    ``_background_`` category first in the jsons shifted 'a' to value 2
    and scored it against the wrong ground truth."""
    from pycocotools import mask as mask_utils
    tool = _load_tool()
    image, disks = _scene()
    root = tmp_path / 'data'
    (root / 'images').mkdir(parents=True)
    cv2.imwrite(str(root / 'images' / 'f1.png'), image)
    img = dict(id=1, file_name='f1.png', height=H, width=W)
    cats = [dict(id=0, name='_background_'), dict(id=1, name='a'),
            dict(id=2, name='b')]
    (root / 'points.json').write_text(json.dumps(dict(
        images=[img], categories=cats, annotations=[
            dict(id=1, image_id=1, category_id=1, point=[10.5, 10.5],
                 iscrowd=0),
            dict(id=2, image_id=1, category_id=2, point=[30.5, 9.5],
                 iscrowd=0)])))
    anns = []
    for k, cat_id in ((0, 1), (1, 2)):
        rle = mask_utils.encode(np.asfortranarray(disks[k].astype(np.uint8)))
        rle['counts'] = rle['counts'].decode()
        anns.append(dict(id=k + 1, image_id=1, category_id=cat_id,
                         segmentation=rle, iscrowd=0))
    (root / 'gt.json').write_text(json.dumps(dict(
        images=[img], categories=cats, annotations=anns)))
    config = tmp_path / 'cfg.py'
    config.write_text(
        f'train_dataloader = dict(dataset=dict(data_root="{root}/", '
        'ann_file="points.json", metainfo=dict(classes=("a", "b")), '
        'data_prefix=dict(img="images/", seg="maps/")))\n')
    rows = tool.main([str(config), '--gt', 'gt.json', '--sigma', '0'])
    seg = cv2.imread(str(root / 'maps' / 'f1.png'), cv2.IMREAD_UNCHANGED)
    assert seg[10, 10] == 1 and seg[10, 30] == 2  # 'a' = 1, 'b' = 2
    ious = {r['gt_class']: r['foreground_iou'] for r in rows
            if 'gt_class' in r}
    assert set(ious) == {'a', 'b'}
    assert min(ious.values()) > 0.8  # each class against its own disk
    # classes in another order than the json's: the one rule's error
    config.write_text(config.read_text().replace('("a", "b")',
                                                 '("b", "a")'))
    with pytest.raises(ValueError, match='json category order'):
        tool.main([str(config), '--sigma', '0'])


def test_help_describes_every_option(capsys):
    """``--help`` says what each threshold option does and its default."""
    tool = _load_tool()
    with pytest.raises(SystemExit):
        tool.parse_args(['--help'])
    text = ' '.join(capsys.readouterr().out.split())
    for phrase in ('Gaussian blur (pixels) before thresholding (default 1.0)',
                   'ignore (255) band around each kept component (default 1)',
                   'required with a json source', 'plane (0-based) of multi-plane',
                   'LOW HIGH', 'replacing maps already there'):
        assert phrase in text, phrase
    assert '(json source)' not in text


@pytest.mark.parametrize('point, shown', [([130.2, 10.5], '(130.2, 10.5)'),
                                          ([-0.5, 10.5], '(-0.5, 10.5)'),
                                          ([10.5, 32.0], '(10.5, 32.0)')])
def test_cli_refuses_a_point_outside_its_image_before_any_map(
        tmp_path, point, shown):
    """New-user trial: x = 130.2 in a 128-px-wide image crashed with a bare
    IndexError, x = -0.5 was used and moved the threshold. Every point is
    checked (data_checks.point_problem) before the first map is written;
    the error names the json, the image id, the annotation id and the
    fix."""
    tool = _load_tool()
    image, _ = _scene()
    (tmp_path / 'imgs').mkdir()
    for name in ('f1.png', 'f2.png'):
        cv2.imwrite(str(tmp_path / 'imgs' / name), image)
    coco = dict(
        images=[dict(id=1, file_name='f1.png', height=H, width=W),
                dict(id=2, file_name='f2.png', height=H, width=W)],
        categories=[dict(id=1, name='a')],
        annotations=[
            dict(id=1, image_id=1, category_id=1, point=[10.5, 10.5],
                 iscrowd=0),
            dict(id=7, image_id=2, category_id=1, point=point, iscrowd=0)
        ])
    points = tmp_path / 'p.json'
    points.write_text(json.dumps(coco))
    with pytest.raises(ValueError) as err:
        tool.main([str(points), '--img-dir', str(tmp_path / 'imgs'),
                   '--out-dir', str(tmp_path / 'maps')])
    msg = str(err.value)
    assert f'{points}: image id 2, annotation id 7: point {shown} lies ' \
        f'outside the image of width {W} and height {H}' in msg
    assert 'Fix the point or the image size' in msg
    assert not (tmp_path / 'maps').exists()  # not even image 1's map


def test_cli_refuses_a_category_not_in_the_json(tmp_path):
    """New-user trial: a point of category_id 7 (not in "categories")
    vanished from the map with exit 0; it is an error naming the json, the
    image id, the annotation id and the fix."""
    tool = _load_tool()
    image, _ = _scene()
    (tmp_path / 'imgs').mkdir()
    cv2.imwrite(str(tmp_path / 'imgs' / 'f1.png'), image)
    coco = dict(
        images=[dict(id=1, file_name='f1.png', height=H, width=W)],
        categories=[dict(id=1, name='a')],
        annotations=[
            dict(id=1, image_id=1, category_id=1, point=[10.5, 10.5],
                 iscrowd=0),
            dict(id=2, image_id=1, category_id=7, point=[20.5, 10.5],
                 iscrowd=0)
        ])
    points = tmp_path / 'p.json'
    points.write_text(json.dumps(coco))
    with pytest.raises(ValueError) as err:
        tool.main([str(points), '--img-dir', str(tmp_path / 'imgs'),
                   '--out-dir', str(tmp_path / 'maps')])
    assert f'{points}: image id 1, annotation id 2: category_id 7 is not ' \
        'in "categories" [1]. Fix the category_id or add the category.' \
        in str(err.value)
    assert not (tmp_path / 'maps').exists()


def test_cli_warns_when_few_points_lie_on_their_class(tmp_path, capsys):
    """New-user trial: one of an image's two points moved onto the
    background flipped the bright/dark choice and emptied the map, with
    exit 0 and no word; the tool now warns naming the image."""
    tool = _load_tool()
    image, _ = _scene()
    (tmp_path / 'imgs').mkdir()
    cv2.imwrite(str(tmp_path / 'imgs' / 'f1.png'), image)
    good = _points_json(tmp_path, [[10.5, 10.5]])
    tool.main([str(good), '--img-dir', str(tmp_path / 'imgs'),
               '--out-dir', str(tmp_path / 'ok')])
    assert 'WARNING' not in capsys.readouterr().out
    bad = _points_json(tmp_path, [[10.5, 10.5], [0.5, 0.5], [1.5, 0.5]])
    rows = tool.main([str(bad), '--img-dir', str(tmp_path / 'imgs'),
                      '--out-dir', str(tmp_path / 'bad')])
    assert rows[0]['point_coverage'] < tool.LOW_COVERAGE
    out = capsys.readouterr().out
    assert 'WARNING: ' in out and 'of the 3 points of image id 1 ' \
        '(f1.png) lie on their class' in out


def _points_json(tmp_path, xys):
    coco = dict(
        images=[dict(id=1, file_name='f1.png', height=H, width=W)],
        categories=[dict(id=1, name='a')],
        annotations=[
            dict(id=k + 1, image_id=1, category_id=1, point=xy, iscrowd=0)
            for k, xy in enumerate(xys)])
    path = tmp_path / f'p{len(xys)}.json'
    path.write_text(json.dumps(coco))
    return path


def test_make_pseudo_map_refuses_points_outside_the_image():
    """The library function itself: no IndexError, no silent clipping."""
    image, _ = _scene()
    for xy in ([[W + 2.2, 10.5]], [[-0.5, 10.5]]):
        with pytest.raises(ValueError, match=r'point #0: point .* lies '
                           'outside the image'):
            make_pseudo_map(image, np.array(xy), np.array([0]))
