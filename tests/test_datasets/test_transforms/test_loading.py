# Copyright (c) p2seg_mm contributors. All rights reserved.
import numpy as np
import pytest
from PIL import Image

from mmdet.registry import TRANSFORMS
from p2seg_mm.datasets.transforms.loading import LoadP2SegAnnotations


def _results(seg_map_path=None, shape=(4, 5)):
    return dict(
        img_path='img.jpg',
        seg_map_path=seg_map_path,
        img_shape=shape,
        ori_shape=shape,
        instances=[
            dict(point=[0.5, 1.5], bbox_label=1, ignore_flag=0),
            dict(point=[4.0, 3.25], bbox_label=0, ignore_flag=1),
        ])


def _map(h=4, w=5):
    seg = np.zeros((h, w), np.uint8)
    seg[0, :] = 1
    seg[1, 1] = 2
    seg[3, 4] = 255
    return seg


def _save_palette(path, seg):
    img = Image.frombytes('P', seg.shape[::-1], seg.tobytes())
    palette = [0, 0, 0, 128, 0, 0, 0, 128, 0] + [7, 7, 7] * 253
    img.putpalette(palette)
    img.save(path)


def test_points_only():
    transform = TRANSFORMS.build(
        dict(type='LoadP2SegAnnotations', with_seg=False))
    assert isinstance(transform, LoadP2SegAnnotations)
    results = transform(_results())
    np.testing.assert_array_equal(results['gt_points'],
                                  [[0.5, 1.5], [4.0, 3.25]])
    assert results['gt_points'].dtype == np.float32
    np.testing.assert_array_equal(results['gt_points_labels'], [1, 0])
    assert results['gt_points_labels'].dtype == np.int64
    np.testing.assert_array_equal(results['gt_ignore_flags'], [False, True])
    assert results['gt_ignore_flags'].dtype == bool
    assert 'gt_seg_map' not in results and 'seg_fields' not in results


def test_no_instances_gives_empty_arrays():
    results = LoadP2SegAnnotations(with_seg=False)(dict(instances=[]))
    assert results['gt_points'].shape == (0, 2)
    assert results['gt_points'].dtype == np.float32
    assert results['gt_points_labels'].shape == (0, )
    assert results['gt_ignore_flags'].shape == (0, )


def test_instance_without_point():
    with pytest.raises(ValueError, match='img.jpg.*instance 0'):
        LoadP2SegAnnotations(with_seg=False)(
            dict(img_path='img.jpg', instances=[dict(bbox_label=0)]))


def test_palette_png_gives_indices(tmp_path):
    path = str(tmp_path / 'a.png')
    _save_palette(path, _map())
    assert Image.open(path).mode == 'P'
    results = LoadP2SegAnnotations(num_classes=2)(_results(path))
    np.testing.assert_array_equal(results['gt_seg_map'], _map())
    assert results['gt_seg_map'].dtype == np.uint8
    assert results['seg_fields'] == ['gt_seg_map']
    assert results['ignore_index'] == 255
    assert len(results['gt_points']) == 2


def test_grey_and_16bit_png(tmp_path):
    path = str(tmp_path / 'grey.png')
    Image.fromarray(_map()).save(path)
    results = LoadP2SegAnnotations()(_results(path))
    np.testing.assert_array_equal(results['gt_seg_map'], _map())
    path16 = str(tmp_path / 'sixteen.png')
    Image.fromarray(_map().astype(np.uint16)).save(path16)
    results = LoadP2SegAnnotations(num_classes=2)(_results(path16))
    np.testing.assert_array_equal(results['gt_seg_map'], _map())
    assert results['gt_seg_map'].dtype == np.uint8
    seg = _map().astype(np.uint16)
    seg[2, 2] = 300
    Image.fromarray(seg).save(path16)
    with pytest.raises(ValueError, match=r'\[300\]') as err:
        LoadP2SegAnnotations()(_results(path16))
    assert path16 in str(err.value)


def test_rgb_map_is_rejected(tmp_path):
    path = str(tmp_path / 'rgb.png')
    Image.fromarray(np.zeros((4, 5, 3), np.uint8)).save(path)
    with pytest.raises(ValueError, match='single-channel index PNG') as err:
        LoadP2SegAnnotations()(_results(path))
    assert path in str(err.value) and "'RGB'" in str(err.value)


def test_float_map_is_rejected(tmp_path):
    path = str(tmp_path / 'float.tif')
    Image.fromarray(np.full((4, 5), 0.5, np.float32)).save(path)
    with pytest.raises(ValueError, match='single-channel index') as err:
        LoadP2SegAnnotations()(_results(path))
    assert path in str(err.value)


def test_missing_map(tmp_path):
    path = str(tmp_path / 'missing.png')
    with pytest.raises(FileNotFoundError, match='missing.png'):
        LoadP2SegAnnotations()(_results(path))
    with pytest.raises(ValueError, match='no seg_map_path'):
        LoadP2SegAnnotations()(_results(None))


def test_size_mismatch(tmp_path):
    path = str(tmp_path / 'a.png')
    _save_palette(path, _map(4, 6))
    with pytest.raises(ValueError, match=r'\(4, 6\).*\(4, 5\)') as err:
        LoadP2SegAnnotations()(_results(path))
    assert path in str(err.value) and 'img.jpg' in str(err.value)
    # falls back on ori_shape, then on the data_info height/width
    results = _results(path)
    del results['img_shape']
    results['ori_shape'] = (4, 6)
    assert LoadP2SegAnnotations()(results)['gt_seg_map'].shape == (4, 6)
    results = _results(path)
    del results['img_shape'], results['ori_shape']
    results.update(height=5, width=6)
    with pytest.raises(ValueError, match='size'):
        LoadP2SegAnnotations()(results)


def test_values_out_of_range(tmp_path):
    path = str(tmp_path / 'a.png')
    seg = _map()
    seg[2, 3] = 3
    seg[2, 4] = 254
    _save_palette(path, seg)
    with pytest.raises(ValueError, match=r'\[3, 254\]') as err:
        LoadP2SegAnnotations(num_classes=2)(_results(path))
    assert path in str(err.value) and '1..2' in str(err.value)
    # unchecked without num_classes, accepted with enough classes
    assert LoadP2SegAnnotations()(_results(path))['gt_seg_map'][2, 3] == 3
    with pytest.raises(ValueError, match='254'):
        LoadP2SegAnnotations(num_classes=20)(_results(path))
    with pytest.raises(ValueError, match='num_classes'):
        LoadP2SegAnnotations(num_classes=0)


def test_repr():
    text = repr(LoadP2SegAnnotations(with_seg=False, num_classes=20))
    assert text == ('LoadP2SegAnnotations(with_seg=False, num_classes=20, '
                    'backend_args=None)')


# ---------------------------------------------------- LoadP2SegImageFromFile
def _image_results(path, **extra):
    return dict(img_path=str(path), img_id=3, **extra)


def test_image_loader_matches_mmcv_on_8bit(tmp_path):
    """Drop-in for mmcv's LoadImageFromFile: same array on 8-bit files."""
    from mmcv.transforms import LoadImageFromFile
    rgb = np.random.RandomState(0).randint(0, 256, (5, 7, 3)).astype(
        np.uint8)
    Image.fromarray(rgb).save(tmp_path / 'a.png')
    ours = TRANSFORMS.build(dict(type='LoadP2SegImageFromFile'))(
        _image_results(tmp_path / 'a.png', height=5, width=7))
    theirs = LoadImageFromFile()(_image_results(tmp_path / 'a.png'))
    np.testing.assert_array_equal(ours['img'], theirs['img'])
    assert ours['img_shape'] == ours['ori_shape'] == (5, 7)
    assert ours['exif_orientation'] == 1
    grey = TRANSFORMS.build(
        dict(type='LoadP2SegImageFromFile', color_type='grayscale',
             to_float32=True))(_image_results(tmp_path / 'a.png'))
    assert grey['img'].shape == (5, 7) and grey['img'].dtype == np.float32


def test_demo_config_loader_gives_mmcv_arrays_on_demo_images():
    """The demo config's loader (now LoadP2SegImageFromFile) reads the
    demo's 8-bit PNGs exactly as mmcv's LoadImageFromFile did."""
    import glob
    import os.path as osp
    from mmcv.transforms import LoadImageFromFile
    from mmengine.config import Config
    root = osp.join(osp.dirname(__file__), '..', '..', '..')
    paths = sorted(glob.glob(osp.join(root, 'data', 'demo_cells', 'images',
                                      '*.png')))
    if not paths:
        pytest.skip('demo data not prepared (make demo-data)')
    cfg = Config.fromfile(
        osp.join(root, 'configs', '_base_', 'datasets',
                 'demo_cells_point.py'))
    for pipeline in (cfg.train_pipeline, cfg.test_pipeline):
        assert pipeline[0].type == 'LoadP2SegImageFromFile'
    ours = TRANSFORMS.build(cfg.train_pipeline[0])
    for path in paths[:1] + paths[-1:]:  # one image of each cell type
        new = ours(_image_results(path))
        old = LoadImageFromFile()(_image_results(path))
        assert new['img'].dtype == old['img'].dtype == np.uint8
        np.testing.assert_array_equal(new['img'], old['img'])
        assert new['img_shape'] == old['img_shape']


def test_image_loader_16bit_and_options(tmp_path):
    import tifffile
    values = (np.arange(35).reshape(5, 7) * 7).astype(np.uint16)
    tifffile.imwrite(tmp_path / 'a.tif', np.stack([values, values * 2]),
                     metadata={'axes': 'CYX'})
    with pytest.raises(ValueError, match='holds 2 planes'):
        TRANSFORMS.build(dict(type='LoadP2SegImageFromFile'))(
            _image_results(tmp_path / 'a.tif'))
    loader = TRANSFORMS.build(
        dict(type='LoadP2SegImageFromFile', channel=1, percentiles=(0, 100)))
    img = loader(_image_results(tmp_path / 'a.tif'))['img']
    expected = np.round(values / values.max() * 255).astype(np.uint8)
    np.testing.assert_array_equal(img[..., 0], expected)
    assert repr(loader) == (
        "LoadP2SegImageFromFile(to_float32=False, color_type='color', "
        'percentiles=(0.0, 100.0), channel=1, min_dynamic_range=8, '
        'check_size=True, ignore_empty=False, backend_args=None)')
    (tmp_path / 'bad.png').write_bytes(b'not an image')
    assert TRANSFORMS.build(
        dict(type='LoadP2SegImageFromFile', ignore_empty=True))(
            _image_results(tmp_path / 'bad.png')) is None
    with pytest.raises(ValueError, match='percentiles'):
        TRANSFORMS.build(
            dict(type='LoadP2SegImageFromFile', percentiles=(99, 1)))


def _exif_jpeg(path, orientation, shape=(4, 6)):
    img = Image.fromarray(np.full(shape + (3, ), 128, np.uint8))
    exif = img.getexif()
    exif[274] = orientation
    img.save(path, exif=exif)


def test_image_loader_checks_json_size_and_names_exif(tmp_path):
    """Issue 10, fault 4: a rotated JPEG must not load silently against
    a json/map made in the stored frame."""
    path = tmp_path / 'r.jpg'
    _exif_jpeg(path, 6)  # stored 4 x 6 (H x W), upright 6 x 4
    loader = TRANSFORMS.build(dict(type='LoadP2SegImageFromFile'))
    assert loader(_image_results(path, height=6, width=4))['img'].shape == (
        6, 4, 3)
    with pytest.raises(ValueError, match=r'r.jpg is 6 x 4 .*json entry \(image'
                       r' id 3\) says 4 x 6. The file carries EXIF '
                       'orientation 6'):
        loader(_image_results(path, height=4, width=6))
    with pytest.raises(ValueError, match=r'says 5 x 5. Fix: correct'):
        loader(_image_results(path, height=5, width=5))
    assert TRANSFORMS.build(
        dict(type='LoadP2SegImageFromFile', check_size=False))(
            _image_results(path, height=5, width=5))['img_shape'] == (6, 4)
    # the pseudo-map made in the stored frame: the error names EXIF too
    map_path = str(tmp_path / 'r.png')
    _save_palette(map_path, _map(4, 6))
    results = loader(_image_results(path, height=6, width=4))
    results.update(seg_map_path=map_path, instances=[])
    with pytest.raises(ValueError, match='EXIF orientation 6'):
        LoadP2SegAnnotations()(results)


def test_seg_map_exif_orientation_is_applied(tmp_path):
    seg = _map(4, 5)
    img = Image.fromarray(seg, 'L')
    exif = img.getexif()
    exif[274] = 8
    img.save(tmp_path / 'm.png', exif=exif)
    results = _results(str(tmp_path / 'm.png'), shape=(5, 4))
    out = LoadP2SegAnnotations()(results)['gt_seg_map']
    np.testing.assert_array_equal(out, np.rot90(seg, 1))
