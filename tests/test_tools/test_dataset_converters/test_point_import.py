# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Point importers on fixtures written in each tool's documented format.

Images: ``a.png`` is 10 x 20 (H x W), ``b.png`` 8 x 8. Expected points are
computed by hand in our convention (pixel (i, j) covers [j, j+1) x [i, i+1),
centre (j + 0.5, i + 0.5)).
"""
import json

import numpy as np
import pytest
from PIL import Image

from tests.tool_loader import load_tool

tool = load_tool('tools/dataset_converters/import_points.py')
from point_import import import_points  # noqa: E402  (the tool's folder)


@pytest.fixture
def img_dir(tmp_path):
    folder = tmp_path / 'images'
    folder.mkdir()
    rng = np.random.RandomState(0)
    Image.fromarray(rng.randint(0, 255, (10, 20, 3)).astype(
        np.uint8)).save(folder / 'a.png')
    Image.fromarray(rng.randint(0, 255, (8, 8)).astype(
        np.uint8)).save(folder / 'b.png')
    return folder


def _write(path, content):
    path.write_text(content if isinstance(content, str) else json.dumps(
        content))
    return str(path)


def _points(coco):
    """{file_name: [(x, y, class name), ...]} of a COCO-with-points dict."""
    files = {im['id']: im['file_name'] for im in coco['images']}
    names = {c['id']: c['name'] for c in coco['categories']}
    out = {name: [] for name in files.values()}
    for ann in coco['annotations']:
        assert ann['iscrowd'] == 0
        out[files[ann['image_id']]].append(
            (*ann['point'], names[ann['category_id']]))
    return out


def _labelme_shape(label, points, kind='point'):
    return dict(label=label, points=points, group_id=None, description='',
                shape_type=kind, flags={}, mask=None)


def _labelme(image_path, shapes, height=10, width=20):
    """labelme 5.x file (imageData null: the image is read from disk)."""
    return dict(version='5.4.1', flags={}, shapes=shapes,
                imagePath=image_path, imageData=None, imageHeight=height,
                imageWidth=width)


def test_labelme_folder_corner_origin(img_dir):
    # labelme stores the Qt canvas position: corner origin, as ours.
    _write(img_dir / 'a.json', _labelme('a.png', [
        _labelme_shape('cell', [[3.0, 4.0]]),
        _labelme_shape('nucleus', [[12.5, 7.25]]),
        _labelme_shape('cell', [[1, 1], [5, 1], [5, 5]], 'polygon'),
    ]))
    _write(img_dir / 'b.json', _labelme('b.png', [], 8, 8))
    _write(img_dir / 'points.json', dict(images=[]))  # an earlier output
    coco, counts = import_points('labelme', str(img_dir), str(img_dir),
                                 classes=['nucleus', 'cell'])
    assert coco['categories'] == [dict(id=1, name='nucleus'),
                                  dict(id=2, name='cell')]
    assert coco['images'] == [
        dict(id=1, file_name='a.png', height=10, width=20),
        dict(id=2, file_name='b.png', height=8, width=8)]
    assert [a['id'] for a in coco['annotations']] == [1, 2]
    assert _points(coco) == {'a.png': [(3.0, 4.0, 'cell'),
                                       (12.5, 7.25, 'nucleus')],
                             'b.png': []}
    assert counts['polygon shape ignored'] == 1
    assert counts['images without points'] == 1
    assert counts['.json without "shapes"/"imagePath" ignored'] == 1


def test_labelme_errors(img_dir, tmp_path):
    ann_dir = tmp_path / 'ann'
    ann_dir.mkdir()
    _write(ann_dir / 'a.json', _labelme('a.png', [
        _labelme_shape('dog', [[3.0, 4.0]])]))
    with pytest.raises(ValueError, match=r'a.json: shape #0.*unknown class '
                       r".dog.*\['cell'\]"):
        import_points('labelme', str(ann_dir), str(img_dir), ['cell'])
    _write(ann_dir / 'a.json', _labelme('a.png', [
        _labelme_shape('cell', [[20.5, 4.0]])]))
    with pytest.raises(ValueError, match=r'a.json: shape #0.*\(20.5, 4.0\) '
                       'of image a.png lies outside.*need 0 <= x <= 20, '
                       '0 <= y <= 10; a point on the far border is moved '
                       'inside'):
        import_points('labelme', str(ann_dir), str(img_dir))
    # exactly on the far border (tools allow x = W): moved inside
    _write(ann_dir / 'a.json', _labelme('a.png', [
        _labelme_shape('cell', [[20.0, 10.0]])]))
    coco, counts = import_points('labelme', str(ann_dir), str(img_dir))
    assert coco['annotations'][0]['point'] == [19.999, 9.999]
    assert counts['moved inside from the far border'] == 1
    _write(ann_dir / 'a.json', _labelme('a.png', [], height=20, width=10))
    with pytest.raises(ValueError, match=r'a.png is 20 x 10.*file is 10 x 20'
                       '.*EXIF rotation'):
        import_points('labelme', str(ann_dir), str(img_dir))
    _write(ann_dir / 'a.json', _labelme('missing.png', []))
    with pytest.raises(FileNotFoundError, match=r'a.json: its image '
                       ".missing.png. is not at .*missing.png nor "):
        import_points('labelme', str(ann_dir), str(img_dir))


CVAT_XML = '''<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta><task><id>1</id><name>cells</name><size>2</size></task></meta>
  <image id="0" name="a.png" width="20" height="10">
    <points label="cell" source="manual" occluded="0"
            points="3.50,4.50;19.99,0.01" z_order="0">
    </points>
    <box label="cell" source="manual" occluded="0" xtl="1.00" ytl="1.00"
         xbr="3.00" ybr="3.00" z_order="0">
    </box>
  </image>
  <image id="1" name="b.png" width="8" height="8">
    <points label="nucleus" source="manual" occluded="0" points="0.00,7.50"
            z_order="0">
    </points>
  </image>
</annotations>
'''


def test_cvat_xml(img_dir, tmp_path):
    # CVAT's canvas: the image spans [0, W] x [0, H], corner origin.
    path = _write(tmp_path / 'annotations.xml', CVAT_XML)
    coco, counts = import_points('cvat', path, str(img_dir))
    assert [c['name'] for c in coco['categories']] == ['cell', 'nucleus']
    assert _points(coco) == {
        'a.png': [(3.5, 4.5, 'cell'), (19.99, 0.01, 'cell')],
        'b.png': [(0.0, 7.5, 'nucleus')]}
    assert counts['<box> ignored'] == 1
    bad = _write(tmp_path / 'bad.xml', CVAT_XML.replace('name="b.png"',
                                                        'name="c.png"'))
    with pytest.raises(FileNotFoundError,
                       match=r'bad.xml: <image id="1" name="c.png">: image '
                       ".c.png. is not in --img-dir"):
        import_points('cvat', bad, str(img_dir))


def _coco_keypoints():
    return dict(
        images=[dict(id=1, file_name='a.png', width=20, height=10)],
        categories=[dict(id=1, name='cell', keypoints=['centre'],
                         skeleton=[])],
        annotations=[
            dict(id=1, image_id=1, category_id=1, keypoints=[3, 4, 2],
                 num_keypoints=1),
            dict(id=2, image_id=1, category_id=1, keypoints=[0, 0, 0],
                 num_keypoints=0)])


def test_coco_keypoints_both_conventions(img_dir, tmp_path):
    path = _write(tmp_path / 'person_keypoints.json', _coco_keypoints())
    # CVAT's COCO Keypoints export: canvas coordinates, as ours
    coco, counts = import_points('cvat', path, str(img_dir))
    assert _points(coco) == {'a.png': [(3.0, 4.0, 'cell')]}
    assert counts['annotation without a labelled keypoint ignored'] == 1
    # COCO dataset convention: integer pixel index (3, 4) = centre + 0.5
    coco, _ = import_points('coco-keypoints', path, str(img_dir),
                            coords='index')
    assert _points(coco) == {'a.png': [(3.5, 4.5, 'cell')]}
    doc = _coco_keypoints()
    doc['annotations'][0]['keypoints'] = [3, 4, 2, 5, 6, 1]
    path = _write(tmp_path / 'two.json', doc)
    with pytest.raises(ValueError, match='annotation id 1 has 2 labelled'):
        import_points('coco-keypoints', path, str(img_dir))


def _ls_result(x, y, label, rid):
    return dict(original_width=20, original_height=10, image_rotation=0,
                value=dict(x=x, y=y, width=0.5, keypointlabels=[label]),
                id=rid, from_name='kp', to_name='image',
                type='keypointlabels', origin='manual')


def test_labelstudio_percent(img_dir, tmp_path):
    # x, y in percent of original_width/height, corner origin.
    tasks = [
        dict(id=11, data=dict(image='/data/upload/1/1a2b3c4d-a.png'),
             annotations=[dict(id=5, was_cancelled=False, result=[
                 _ls_result(17.5, 45.0, 'cell', 'r1'),
                 _ls_result(0.0, 99.0, 'cell', 'r2'),
                 dict(type='rectanglelabels', value={}, id='r3')])]),
        dict(id=12, data=dict(image='/data/local-files/?d=imgs%2Fb.png'),
             annotations=[]),
    ]
    path = _write(tmp_path / 'project-1.json', tasks)
    coco, counts = import_points('labelstudio', path, str(img_dir))
    pts = _points(coco)
    assert pts['b.png'] == []
    assert [(x, round(y, 9), c) for x, y, c in pts['a.png']] == [
        (3.5, 4.5, 'cell'), (0.0, 9.9, 'cell')]
    assert counts['rectanglelabels result ignored'] == 1
    for result in tasks[0]['annotations'][0]['result'][:2]:
        result['original_width'] = 40
    path = _write(tmp_path / 'wrong_size.json', tasks)
    with pytest.raises(ValueError, match=r'task id 11: the export says a.png'
                       ' is 10 x 40'):
        import_points('labelstudio', path, str(img_dir))


@pytest.mark.parametrize('table, options, expected', [
    ('file,x,y,class\na.png,3.5,4.5,cell\nb.png,0,7.25,nucleus\n', {},
     {'a.png': [(3.5, 4.5, 'cell')], 'b.png': [(0.0, 7.25, 'nucleus')]}),
    # napari points layer: axis-0 = row (y), axis-1 = column (x), pixel
    # centres at integers
    ('index,axis-0,axis-1\n0,4.0,3.0\n1,9.0,19.0\n',
     dict(columns={'x': 'axis-1', 'y': 'axis-0'}, image='a.png',
          default_class='cell', coords='index'),
     {'a.png': [(3.5, 4.5, 'cell'), (19.5, 9.5, 'cell')]}),
    # Fiji Results table (pixel units; first column unnamed row number)
    (' ,X,Y\n1,3.5,4.5\n', dict(columns={'x': 'X', 'y': 'Y'},
                               image='a.png', default_class='cell'),
     {'a.png': [(3.5, 4.5, 'cell')]}),
    # tab-separated, own headers
    ('img\tcol\trow\tkind\nb.png\t1\t2\tnucleus\n',
     dict(columns={'file': 'img', 'x': 'col', 'y': 'row', 'class': 'kind'}),
     {'b.png': [(1.0, 2.0, 'nucleus')]}),
])
def test_csv_columns(img_dir, tmp_path, table, options, expected):
    path = _write(tmp_path / 'points.csv', table)
    coco, _ = import_points('csv', path, str(img_dir), **options)
    assert _points(coco) == expected


def test_csv_errors(img_dir, tmp_path):
    path = _write(tmp_path / 'p.csv', 'index,axis-0,axis-1\n0,4,3\n')
    with pytest.raises(ValueError, match=r"lack class \(column 'class'\), "
                       r"file \(column 'file'\), x \(column 'x'\)"):
        import_points('csv', path, str(img_dir))
    path = _write(tmp_path / 'p.csv', 'file,x,y,class\na.png,3,abc,cell\n')
    with pytest.raises(ValueError, match=r"p.csv, line 2: coordinate 'abc'"):
        import_points('csv', path, str(img_dir))
    path = _write(tmp_path / 'p.csv',
                  'file,x,y,class\na.png,3,4,cell\na.png,5,5,cell\n'
                  'c.png,1,1,cell\n')
    with pytest.raises(FileNotFoundError, match='image .c.png. is not in'):
        import_points('csv', path, str(img_dir))


def test_exif_sizes_are_upright(tmp_path):
    """A JPEG stored 10 x 20 with EXIF orientation 6 is 20 x 10 upright."""
    folder = tmp_path / 'imgs'
    folder.mkdir()
    img = Image.fromarray(np.full((10, 20, 3), 128, np.uint8))
    exif = img.getexif()
    exif[274] = 6
    img.save(folder / 'r.jpg', exif=exif)
    path = _write(tmp_path / 'p.csv', 'file,x,y,class\nr.jpg,9.5,19.5,c\n')
    coco, _ = import_points('csv', path, str(folder))
    assert coco['images'][0]['height'] == 20
    assert coco['images'][0]['width'] == 10


def test_cli_writes_json(img_dir, tmp_path, capsys):
    _write(img_dir / 'a.json', _labelme('a.png', [
        _labelme_shape('cell', [[3.0, 4.0]])]))
    out = tmp_path / 'out' / 'points.json'
    coco = tool.main(['--format', 'labelme', str(img_dir), '--img-dir',
                      str(img_dir), '--out', str(out)])
    assert json.loads(out.read_text()) == coco
    assert 'wrote' in capsys.readouterr().out
    with pytest.raises(SystemExit):
        tool.main(['--format', 'csv', 'p.csv', '--img-dir', '.', '--out',
                   'o.json', '--columns', 'x:axis-1'])
    # bad user data: one line naming the file and the fix, no traceback
    _write(img_dir / 'a.json', _labelme('a.png', [
        _labelme_shape('nucleus', [[3.0, 4.0]])]))
    with pytest.raises(SystemExit) as exit_info:
        tool.main(['--format', 'labelme', str(img_dir), '--img-dir',
                   str(img_dir), '--classes', 'cell', '--out', str(out)])
    assert str(exit_info.value).startswith('import_points: ')
    assert 'a.json' in str(exit_info.value)
    assert 'unknown class' in str(exit_info.value)


# --keep-masks. a.png is 10 x 20 (H x W). Expected masks by hand in our
# convention (integer corners: exactly the pixels inside).
def _keep_masks_shapes():
    return [
        _labelme_shape('cell', [[3.5, 2.5]]),  # #0, in #1
        # #1: corners given bottom-right first: x 2..6, y 1..4
        _labelme_shape('cell', [[6, 4], [2, 1]], 'rectangle'),
        # #2: an L, x 10..16 for y 1..3 and x 10..12 for y 3..8
        _labelme_shape('nucleus', [[10, 1], [16, 1], [16, 3], [12, 3],
                                   [12, 8], [10, 8]], 'polygon'),
        _labelme_shape('nucleus', [[10.5, 7.5]]),  # #3, in #2's leg
        # #4: a region without a point: skipped, counted
        _labelme_shape('cell', [[17, 5], [19, 5], [19, 9]], 'polygon'),
        _labelme_shape('cell', [[0, 0], [5, 5]], 'linestrip'),  # #5
        # #6, #7: one object in two parts (same label and group_id); its
        # point #8 (group_id 1) lies between them
        dict(_labelme_shape('cell', [[0, 6], [2, 9]], 'rectangle'),
             group_id=1),
        dict(_labelme_shape('cell', [[4, 6], [6, 9]], 'rectangle'),
             group_id=1),
        dict(_labelme_shape('cell', [[3.0, 7.0]]), group_id=1),
    ]


def _expected_masks():
    rect = np.zeros((10, 20), bool)
    rect[1:4, 2:6] = True
    ell = np.zeros((10, 20), bool)
    ell[1:3, 10:16] = True
    ell[3:8, 10:12] = True
    parts = np.zeros((10, 20), bool)
    parts[6:9, 0:2] = True
    parts[6:9, 4:6] = True
    return rect, ell, parts


def test_labelme_keep_masks(img_dir, tmp_path):
    from pycocotools.coco import COCO

    from p2seg_mm.evaluation.pseudo_quality import evaluate_pseudo_masks
    _write(img_dir / 'a.json', _labelme('a.png', _keep_masks_shapes()))
    # b.png (8 x 8): a circle, centre (4, 4), radius 3, and its point
    _write(img_dir / 'b.json', _labelme('b.png', [
        _labelme_shape('nucleus', [[4, 4], [7, 4]], 'circle'),
        _labelme_shape('nucleus', [[4.2, 4.7]])], 8, 8))
    coco, counts = import_points('labelme', str(img_dir), str(img_dir),
                                 classes=['cell', 'nucleus'],
                                 keep_masks=True)
    anns = coco['annotations']
    assert [(a['image_id'], a['point']) for a in anns] == [
        (1, [3.5, 2.5]), (1, [10.5, 7.5]), (1, [3.0, 7.0]), (2, [4.2, 4.7])]
    rect, ell, parts = _expected_masks()
    assert anns[0]['segmentation'] == [[2, 1, 6, 1, 6, 4, 2, 4]]
    assert (anns[0]['bbox'], anns[0]['area']) == ([2.0, 1.0, 4.0, 3.0], 12.0)
    assert (anns[1]['bbox'], anns[1]['area']) == ([10.0, 1.0, 6.0, 7.0],
                                                  22.0)
    assert len(anns[2]['segmentation']) == 2  # one polygon per part
    assert (anns[2]['bbox'], anns[2]['area']) == ([0.0, 6.0, 6.0, 3.0], 12.0)
    # circle: the pixels whose centre lies inside it, rows 1..6 of widths
    # 4, 6, 6, 6, 6, 4 (centre (4, 4), radius 3)
    assert anns[3]['bbox'] == [1.0, 1.0, 6.0, 6.0]
    assert anns[3]['area'] == 32.0
    assert counts['mask shape without a point of its label skipped'] == 1
    assert counts['point outside the mask of its group_id'] == 1
    assert counts['linestrip shape ignored'] == 1
    assert 'polygon shape ignored' not in counts
    # the written json is ground truth for pycocotools and our evaluation
    out = tmp_path / 'gt.json'
    out.write_text(json.dumps(coco))
    api = COCO(str(out))
    for ann, expected in zip(anns, (rect, ell, parts)):
        np.testing.assert_array_equal(api.annToMask(ann).astype(bool),
                                      expected)
    results = evaluate_pseudo_masks(str(out), str(out))
    assert results['point/mIoU'] == 1.0
    assert results['coco/segm_AP'] == pytest.approx(1.0)
    assert results['num_gt_instances'] == 4
    # without --keep-masks: points only, every non-point shape ignored
    coco, counts = import_points('labelme', str(img_dir), str(img_dir),
                                 classes=['cell', 'nucleus'])
    assert [sorted(a) for a in coco['annotations']] == [
        ['category_id', 'id', 'image_id', 'iscrowd', 'point']] * 4
    assert counts['polygon shape ignored'] == 2
    assert counts['rectangle shape ignored'] == 3
    assert counts['circle shape ignored'] == 1


@pytest.mark.parametrize('shapes, message', [
    # one point in two overlapping rectangles of its label
    ([_labelme_shape('cell', [[1, 1], [6, 6]], 'rectangle'),
      _labelme_shape('cell', [[4, 4], [9, 9]], 'rectangle'),
      _labelme_shape('cell', [[5.0, 5.0]])],
     r'a.json: shape #2 \(.cell.\): the point lies in several shapes of its '
     r'label \(#0, #1\)'),
    # two points of its label in one shape
    ([_labelme_shape('cell', [[1, 1], [9, 9]], 'rectangle'),
      _labelme_shape('cell', [[2.0, 2.0]]),
      _labelme_shape('nucleus', [[3.0, 3.0]]),
      _labelme_shape('cell', [[5.0, 5.0]])],
     r'a.json: shape #0 \(.cell.\), rectangle: holds points #1, #3 of its '
     'label'),
    # a point no shape pairs with (a shape of another label holds it)
    ([_labelme_shape('nucleus', [[1, 1], [9, 9]], 'rectangle'),
      _labelme_shape('cell', [[2.0, 2.0]])],
     r'a.json: shape #1 \(.cell.\): no mask shape pairs with this point'),
    # two points with the shape's label and group_id
    ([dict(_labelme_shape('cell', [[1, 1], [3, 3]], 'rectangle'),
           group_id=4),
      dict(_labelme_shape('cell', [[2.0, 2.0]]), group_id=4),
      dict(_labelme_shape('cell', [[12.0, 2.0]]), group_id=4)],
     r'a.json: shape #0 \(.cell., group_id 4\), rectangle: points #1, #2 '
     'have its label and group_id'),
    ([_labelme_shape('cell', [[1, 1], [5, 5], [9, 9]], 'polygon'),
      _labelme_shape('cell', [[2.0, 2.0]])],
     r'a.json: shape #0 \(.cell.\), polygon: its mask has no pixel'),
    ([_labelme_shape('cell', [[1, 1], [5, 5]], 'polygon')],
     r'a.json: shape #0 \(.cell.\), polygon: a polygon needs at least 3 '
     'vertices'),
])
def test_labelme_keep_masks_errors(img_dir, tmp_path, shapes, message):
    ann_dir = tmp_path / 'ann'
    ann_dir.mkdir()
    _write(ann_dir / 'a.json', _labelme('a.png', shapes))
    with pytest.raises(ValueError, match=message):
        import_points('labelme', str(ann_dir), str(img_dir), keep_masks=True)
    # without --keep-masks the same file imports (shapes ignored)
    import_points('labelme', str(ann_dir), str(img_dir))


def test_cli_keep_masks(img_dir, tmp_path, capsys):
    _write(img_dir / 'a.json', _labelme('a.png', _keep_masks_shapes()))
    out = tmp_path / 'gt.json'
    coco = tool.main(['--format', 'labelme', str(img_dir), '--img-dir',
                      str(img_dir), '--keep-masks', '--out', str(out)])
    assert [a['area'] for a in coco['annotations']] == [12.0, 22.0, 12.0]
    printed = capsys.readouterr().out
    assert '3 points with masks' in printed
    assert '  mask shape without a point of its label skipped: 1\n' in printed
    path = _write(tmp_path / 'p.csv', 'file,x,y,class\na.png,3,4,cell\n')
    with pytest.raises(SystemExit):
        tool.main(['--format', 'csv', path, '--img-dir', str(img_dir),
                   '--keep-masks', '--out', str(out)])
    assert '--keep-masks reads labelme' in capsys.readouterr().err
    with pytest.raises(ValueError, match='format .csv. has none'):
        import_points('csv', path, str(img_dir), keep_masks=True)
