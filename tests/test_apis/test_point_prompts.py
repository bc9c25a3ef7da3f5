# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Point prompts of inference: JSON, CSV, command line, checks, errors."""
import json
import os.path as osp

import numpy as np
import pytest

from p2seg_mm.apis import point_prompts as prompts

CLASSES = ('ecoli', 'hela_nucleus', '7')


def write(path, text):
    path.write_text(text)
    return str(path)


def test_load_points_json(tmp_path):
    path = write(
        tmp_path / 'p.json',
        json.dumps({
            'a.png': [[1.5, 2.5, 'ecoli'], [3, 4, 1]],
            'sub/b.png': [[0.5, 0.5, '1']]
        }))
    points = prompts.load_points(path)
    assert points == {
        'a.png': [(1.5, 2.5, 'ecoli'), (3.0, 4.0, 1)],
        'sub/b.png': [(0.5, 0.5, '1')]
    }
    assert all(isinstance(p[0], float) for p in points['a.png'])


@pytest.mark.parametrize(
    'content, match',
    [('[1, 2]', 'expected an object'),
     ('{"a.png": [[1, 2]]}', r"image 'a.png', point #0.*\[x, y, class\]"),
     ('{"a.png": [[1, "y", "c"]]}', "'y' is not a number"),
     ('{"a.png": [[1, NaN, "c"]]}', 'not a finite'),
     ('{"a.png": [[1, 2, 1.5]]}', 'class name'),
     ('{"a.png": {"x": 1}}', 'must map to a list'),
     ('{"a.png": [[1, 2, "c"]', 'not valid JSON')])
def test_load_points_json_errors(tmp_path, content, match):
    path = write(tmp_path / 'bad.json', content)
    with pytest.raises(ValueError, match=match) as err:
        prompts.load_points(path)
    assert 'bad.json' in str(err.value)


def test_load_points_csv(tmp_path):
    with_header = write(tmp_path / 'h.csv', 'file,x,y,class\n'
                        'a.png, 1.5, 2.5 ,ecoli\n\n'
                        'b.png,3,4,0\n'
                        'a.png,5,6,hela_nucleus\n')
    expected = {
        'a.png': [(1.5, 2.5, 'ecoli'), (5.0, 6.0, 'hela_nucleus')],
        'b.png': [(3.0, 4.0, '0')]
    }
    assert prompts.load_points(with_header) == expected
    no_header = write(tmp_path / 'n.csv', 'a.png,1.5,2.5,ecoli\n'
                      'b.png,3,4,0\na.png,5,6,hela_nucleus\n')
    assert prompts.load_points(no_header) == expected


@pytest.mark.parametrize('content, match',
                         [('a.png,1,2\n', 'line 1.*file,x,y,class'),
                          ('file,x,y,class\na.png,1,2,c,d\n', 'line 2'),
                          ('a.png,one,2,c\n', "line 1: coordinate 'one'"),
                          (',1,2,c\n', 'line 1')])
def test_load_points_csv_errors(tmp_path, content, match):
    path = write(tmp_path / 'bad.csv', content)
    with pytest.raises(ValueError, match=match):
        prompts.load_points(path)


def test_load_points_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='missing.json'):
        prompts.load_points(str(tmp_path / 'missing.json'))
    with pytest.raises(FileNotFoundError, match='missing.csv'):
        prompts.load_points(str(tmp_path / 'missing.csv'))
    with pytest.raises(ValueError, match='.json or .csv'):
        prompts.load_points(write(tmp_path / 'p.txt', 'x'))


def test_points_from_cli():
    points = prompts.points_from_cli([['1', '2.5', 'ecoli'], ['3', '4', '1']],
                                   'img.png')
    assert points == {'img.png': [(1.0, 2.5, 'ecoli'), (3.0, 4.0, '1')]}
    with pytest.raises(ValueError, match=r'--point #1 \(3 y 1\)'):
        prompts.points_from_cli([['1', '2', 'c'], ['3', 'y', '1']], 'i.png')


def test_resolve_class():
    assert prompts.resolve_class('hela_nucleus', CLASSES, 'w') == 1
    assert prompts.resolve_class(0, CLASSES, 'w') == 0
    assert prompts.resolve_class('1', CLASSES, 'w') == 1
    # A class literally named '7' is a name, not the index 7.
    assert prompts.resolve_class('7', CLASSES, 'w') == 2
    with pytest.raises(ValueError) as err:
        prompts.resolve_class('dog', CLASSES, 'image a.png, point #0')
    msg = str(err.value)
    assert 'image a.png, point #0' in msg and "'dog'" in msg
    assert 'ecoli, hela_nucleus, 7' in msg
    with pytest.raises(ValueError, match='index 3 is out of range 0..2'):
        prompts.resolve_class(3, CLASSES, 'w')
    with pytest.raises(ValueError, match='out of range'):
        prompts.resolve_class('-1', CLASSES, 'w')


def test_unknown_class_is_one_message_not_chained_to_int():
    """New-user trial: the traceback showed int()'s "invalid literal"
    error first, then "During handling of the above exception, another
    exception occurred" before the real message."""
    import traceback
    with pytest.raises(ValueError) as err:
        prompts.resolve_class('dog', CLASSES, 'image a.png, point #0')
    assert err.value.__cause__ is None and err.value.__suppress_context__
    shown = ''.join(traceback.format_exception(err.type, err.value,
                                               err.tb))
    assert 'invalid literal' not in shown
    assert 'During handling' not in shown
    assert "unknown class 'dog'" in shown


def test_prepare_points():
    xy, labels = prompts.prepare_points([(0.0, 0.0, 'ecoli'),
                                       (9.99, 4.5, 1)], CLASSES, 'a.png',
                                      height=5, width=10)
    assert xy.dtype == np.float32 and xy.shape == (2, 2)
    np.testing.assert_allclose(xy, [[0, 0], [9.99, 4.5]], rtol=1e-6)
    assert labels.dtype == np.int64 and labels.tolist() == [0, 1]


@pytest.mark.parametrize('point', [(10.0, 1.0, 0), (1.0, 5.0, 0),
                                   (-0.1, 1.0, 0), (1.0, -2.0, 0)])
def test_prepare_points_outside(point):
    with pytest.raises(ValueError) as err:
        prompts.prepare_points([(1.0, 1.0, 0), point], CLASSES, 'cells/a.png',
                             height=5, width=10)
    msg = str(err.value)
    assert 'cells/a.png' in msg and 'point #1' in msg
    assert f'({point[0]}, {point[1]})' in msg and 'outside' in msg


def test_prepare_points_empty_and_unknown_class():
    with pytest.raises(ValueError, match='image a.png has no points'):
        prompts.prepare_points([], CLASSES, 'a.png', 5, 5)
    with pytest.raises(ValueError, match='unknown class .cat.'):
        prompts.prepare_points([(1, 1, 'cat')], CLASSES, 'a.png', 5, 5)


def test_match_images(tmp_path):
    (tmp_path / 'sub').mkdir()
    for name in ('a.png', 'sub/b.png', 'c.png'):
        (tmp_path / name).write_bytes(b'')
    folder = str(tmp_path)
    paths = prompts.match_images(folder, {'a.png': [], 'sub/b.png': []})
    assert paths == {
        'a.png': osp.join(folder, 'a.png'),
        'sub/b.png': osp.join(folder, 'sub/b.png')
    }
    with pytest.raises(FileNotFoundError, match="'d.png'.*" + folder):
        prompts.match_images(folder, {'a.png': [], 'd.png': []})
    single = osp.join(folder, 'a.png')
    assert prompts.match_images(single, {'a.png': []}) == {'a.png': single}
    with pytest.raises(FileNotFoundError, match='c.png'):
        prompts.match_images(single, {'a.png': [], 'c.png': []})
    with pytest.raises(FileNotFoundError, match='nothing.png'):
        prompts.match_images(str(tmp_path / 'nothing.png'), {'x': []})
    with pytest.raises(ValueError, match='no points'):
        prompts.match_images(single, {})


@pytest.mark.parametrize('ann, match', [
    (dict(image_id=9, category_id=1), r'annotation id 1: image_id 9 is not '
     r'in "images"\. Fix'),
    (dict(image_id=1, category_id=7), r'annotation id 1: category_id 7 is '
     r'not in "categories" \[1\]\. Fix the category_id')])
def test_coco_points_name_the_unknown_id(tmp_path, ann, match):
    """New-user trial: "unknown image_id 1 or category_id 7" although the
    image existed, and no fix; each id is named on its own."""
    import json
    coco = dict(images=[dict(id=1, file_name='a.png', height=8, width=8)],
                categories=[dict(id=1, name='ecoli')],
                annotations=[dict(id=1, point=[1.5, 1.5], iscrowd=0, **ann)])
    path = write(tmp_path / 'coco.json', json.dumps(coco))
    with pytest.raises(ValueError, match=match):
        prompts.load_points(path)
