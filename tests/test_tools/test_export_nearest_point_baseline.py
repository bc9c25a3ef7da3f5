# Copyright (c) p2seg_mm contributors. All rights reserved.
"""tools/export_nearest_point_baseline.py (issue #10, faults 1, 2 and 6)."""
import json

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_util

from tests.tool_loader import load_tool

tool = load_tool('tools/export_nearest_point_baseline.py')
export_nearest_point_baseline = tool.export_nearest_point_baseline


def _scene(tmp_path, categories, cat_of_class, suffix='.png', crowd=False):
    """One 20 x 30 image: class-0 blob left, class-1 blob right."""
    seg = np.zeros((20, 30), np.uint8)
    seg[2:8, 2:8] = 1
    seg[10:18, 18:28] = 2
    (tmp_path / 'sem').mkdir(exist_ok=True)
    Image.fromarray(seg).save(tmp_path / 'sem' / f'img{suffix}')
    anns = [
        dict(id=1, image_id=1, category_id=cat_of_class[0], point=[4.5, 4.5],
             iscrowd=0),
        dict(id=2, image_id=1, category_id=cat_of_class[1],
             point=[20.5, 12.5], iscrowd=int(crowd)),
    ]
    src = dict(images=[dict(id=1, file_name='img.jpg', height=20, width=30)],
               annotations=anns, categories=categories)
    path = tmp_path / 'points.json'
    path.write_text(json.dumps(src))
    return str(path), seg


def _masks(out_file):
    with open(out_file) as f:
        out = json.load(f)
    return {a['category_id']: a for a in out['annotations']}


def test_background_category_and_two_classes_map_by_name(tmp_path):
    """Fault 1: with "_background_" first in the json, classes were taken by
    json position: 0 masks (one class) or the wrong class's blob (IoU 0)."""
    cats = [dict(id=0, name='_background_'), dict(id=1, name='ecoli'),
            dict(id=2, name='hela')]
    ann_file, seg = _scene(tmp_path, cats, (1, 2))
    out = export_nearest_point_baseline(
        ann_file, str(tmp_path / 'sem'), str(tmp_path / 'out.json'),
        progress=False, classes=['ecoli', 'hela'])
    masks = _masks(out)
    for cat_id, value in ((1, 1), (2, 2)):
        mask = mask_util.decode(masks[cat_id]['segmentation']).astype(bool)
        np.testing.assert_array_equal(mask, seg == value)  # IoU 1.0


def test_one_class_with_background_category(tmp_path):
    cats = [dict(id=0, name='_background_'), dict(id=1, name='cell')]
    ann_file, seg = _scene(tmp_path, cats, (1, 1))
    seg[seg == 2] = 1
    Image.fromarray(seg).save(tmp_path / 'sem' / 'img.png')
    out = export_nearest_point_baseline(
        ann_file, str(tmp_path / 'sem'), str(tmp_path / 'out.json'),
        progress=False, classes=['cell'])
    with open(out) as f:
        assert len(json.load(f)['annotations']) == 2


def test_seg_suffix_and_crowd_flag_are_kept(tmp_path):
    cats = [dict(id=1, name='ecoli'), dict(id=2, name='hela')]
    ann_file, _ = _scene(tmp_path, cats, (1, 2), suffix='_sem.png',
                         crowd=True)
    with pytest.raises(FileNotFoundError, match='seg_map_suffix'):
        export_nearest_point_baseline(
            ann_file, str(tmp_path / 'sem'), str(tmp_path / 'o.json'),
            progress=False, classes=['ecoli', 'hela'])
    out = export_nearest_point_baseline(
        ann_file, str(tmp_path / 'sem'), str(tmp_path / 'out.json'),
        seg_suffix='_sem.png', progress=False, classes=['ecoli', 'hela'])
    masks = _masks(out)
    assert masks[1]['iscrowd'] == 0 and masks[2]['iscrowd'] == 1


def test_empty_output_and_duplicate_image_ids_are_errors(tmp_path):
    cats = [dict(id=1, name='ecoli'), dict(id=2, name='hela')]
    ann_file, seg = _scene(tmp_path, cats, (1, 2))
    Image.fromarray(np.zeros_like(seg)).save(tmp_path / 'sem' / 'img.png')
    out_file = tmp_path / 'out.json'
    with pytest.raises(ValueError, match='no mask for any point'):
        export_nearest_point_baseline(ann_file, str(tmp_path / 'sem'),
                                      str(out_file), progress=False,
                                      classes=['ecoli', 'hela'])
    assert not out_file.exists()
    with open(ann_file) as f:
        src = json.load(f)
    src['images'].append(dict(id=1, file_name='b.jpg', height=20, width=30))
    with open(ann_file, 'w') as f:
        json.dump(src, f)
    with pytest.raises(ValueError, match='image id 1 is used by 2'):
        export_nearest_point_baseline(ann_file, str(tmp_path / 'sem'),
                                      str(out_file), progress=False,
                                      classes=['ecoli', 'hela'])


def test_command_line_passes_suffix_and_classes(tmp_path):
    """The command line is the function: ``--seg-suffix`` finds the maps,
    ``--classes`` sets the labels (map value ``k + 1`` is the k-th class,
    in the json's order)."""
    cats = [dict(id=1, name='ecoli'), dict(id=2, name='hela')]
    ann_file, seg = _scene(tmp_path, cats, (1, 2), suffix='_sem.png')
    argv = [ann_file, str(tmp_path / 'sem'), '--seg-suffix', '_sem.png']
    out = tool.main(argv + ['--out', str(tmp_path / 'all.json')])
    assert out == str(tmp_path / 'all.json')
    masks = _masks(out)
    for cat_id, value in ((1, 1), (2, 2)):  # default: json order
        mask = mask_util.decode(masks[cat_id]['segmentation']).astype(bool)
        np.testing.assert_array_equal(mask, seg == value)
    # one class: the map may only hold 0, 1 and 255
    with pytest.raises(ValueError, match=r'holds values \[2\]'):
        tool.main(argv + ['--out', str(tmp_path / 'x.json'), '--classes',
                          'hela'])
    with pytest.raises(ValueError, match='json category order'):
        tool.main(argv + ['--out', str(tmp_path / 'x.json'), '--classes',
                          'hela', 'ecoli'])
    with pytest.raises(SystemExit):  # --out is required
        tool.main(argv)


def test_geodesic_grouping_from_the_command_line(tmp_path):
    """--grouping geodesic reads the image and moves the split of two
    touching rods onto their seam (hand case of
    tests/test_models/test_task_modules/test_geodesic_grouping.py)."""
    from tests.builders import two_touching_rods
    fg, img, points = two_touching_rods()
    seg = fg.astype(np.uint8)
    (tmp_path / 'sem').mkdir()
    (tmp_path / 'img').mkdir()
    Image.fromarray(seg).save(tmp_path / 'sem' / 'rods.png')
    Image.fromarray(img).save(tmp_path / 'img' / 'rods.png')
    anns = [dict(id=k + 1, image_id=1, category_id=1, point=list(xy))
            for k, xy in enumerate(points.tolist())]
    src = dict(images=[dict(id=1, file_name='rods.png', height=12, width=20)],
               annotations=anns, categories=[dict(id=1, name='rod')])
    ann_file = tmp_path / 'points.json'
    ann_file.write_text(json.dumps(src))

    def long_rod(extra):
        out = tool.main([str(ann_file), str(tmp_path / 'sem'), '--out',
                         str(tmp_path / 'out.json')] + extra)
        with open(out) as f:
            first = json.load(f)['annotations'][0]
        return mask_util.decode(first['segmentation']).astype(bool)

    assert not long_rod([])[3, 1]  # Voronoi gives it to the short rod
    geo = long_rod(['--grouping', 'geodesic', '--img-dir',
                    str(tmp_path / 'img')])
    assert geo[2:6].all()
    # command-line mistakes are usage errors naming the flag
    with pytest.raises(SystemExit, match='give --img-dir'):
        long_rod(['--grouping', 'geodesic'])
    with pytest.raises(SystemExit, match='--img-dir .*nowhere is not a'):
        long_rod(['--grouping', 'geodesic', '--img-dir',
                  str(tmp_path / 'nowhere')])
    with pytest.raises(SystemExit, match='--edge-weight only applies'):
        long_rod(['--edge-weight', '5'])
    # an image missing from --img-dir names the fix
    (tmp_path / 'other').mkdir()
    with pytest.raises(FileNotFoundError, match=r'rods.png does not exist'
                       r'.*--img-dir'):
        long_rod(['--grouping', 'geodesic', '--img-dir',
                  str(tmp_path / 'other')])
    with pytest.raises(SystemExit, match='nope.json does not exist'):
        tool.main([str(tmp_path / 'nope.json'), str(tmp_path / 'sem'),
                   '--out', str(tmp_path / 'out.json')])


def test_points_of_other_classes_are_counted(tmp_path, monkeypatch):
    """--classes with fewer classes than the json: the other points are
    skipped and the log says how many."""
    cats = [dict(id=1, name='ecoli'), dict(id=2, name='hela')]
    ann_file, seg = _scene(tmp_path, cats, (1, 2))
    seg[seg == 2] = 0  # a one-class map
    Image.fromarray(seg).save(tmp_path / 'sem' / 'img.png')
    logs = []
    monkeypatch.setattr(tool, 'print_log', lambda msg, **k: logs.append(msg))
    out = tool.main([ann_file, str(tmp_path / 'sem'), '--out',
                     str(tmp_path / 'one.json'), '--classes', 'ecoli'])
    assert list(_masks(out)) == [1]
    assert any('1 points of categories not in classes' in m for m in logs)


@pytest.mark.parametrize('point', [[30.2, 12.5], [-0.5, 4.0], [5.0, 20.0]])
def test_point_outside_the_map_is_named(tmp_path, point):
    """A click outside the 30 x 20 map got a mask (x = 30.2) or was dropped
    as an empty mask (x = -0.5) without a word (new-user trial)."""
    cats = [dict(id=1, name='ecoli'), dict(id=2, name='hela')]
    ann_file, _ = _scene(tmp_path, cats, (1, 2))
    src = json.loads(open(ann_file).read())
    src['annotations'][1]['point'] = point
    open(ann_file, 'w').write(json.dumps(src))
    with pytest.raises(ValueError, match='image id 1, annotation id 2'):
        export_nearest_point_baseline(ann_file, str(tmp_path / 'sem'),
                                      str(tmp_path / 'out.json'),
                                      progress=False)
    assert not (tmp_path / 'out.json').exists()
