# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Stage-2 configs: stock mmdet models, only classes and data swapped."""
import ast
import glob
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CFG_DIR = osp.join(REPO_ROOT, 'configs', 'p2seg_second_stage')
VOC_CLASSES = ('aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car',
               'cat', 'chair', 'cow', 'diningtable', 'dog', 'horse',
               'motorbike', 'person', 'pottedplant', 'sheep', 'sofa', 'train',
               'tvmonitor')
DEMO = 'mask-rcnn_r18_fpn_demo-cells-p2seg-pseudo.py'
# name: (model type, num classes, data_root, train ann, val ann, classes)
EXPECTED = {
    'mask-rcnn_r50_fpn_1x_voc-p2seg-pseudo.py':
    ('MaskRCNN', 20, 'data/voc/',
     'annotations/voc_2012_train_aug_p2seg_pseudo.json',
     'annotations/voc_2012_val.json', VOC_CLASSES),
    'mask-rcnn_r50_fpn_1x_coco-p2seg-pseudo.py':
    ('MaskRCNN', 80, 'data/coco/',
     'annotations/instances_train2017_p2seg_pseudo.json',
     'annotations/instances_val2017.json', None),
    'solov2_r50_fpn_1x_voc-p2seg-pseudo.py':
    ('SOLOv2', 20, 'data/voc/',
     'annotations/voc_2012_train_aug_p2seg_pseudo.json',
     'annotations/voc_2012_val.json', VOC_CLASSES),
    DEMO: ('MaskRCNN', 2, 'data/demo_cells/',
           'annotations/train_p2seg_pseudo.json', 'annotations/val_gt.json',
           ('ecoli', 'hela_nucleus')),
}


def load(name):
    return Config.fromfile(osp.join(CFG_DIR, name))


def stock_and_data_bases(text):
    """The ``_base_`` entries of a config's source, as a list."""
    for node in ast.parse(text).body:
        if isinstance(node, ast.Assign) and node.targets[0].id == '_base_':
            bases = ast.literal_eval(node.value)
            return [bases] if isinstance(bases, str) else list(bases)
    raise AssertionError('no _base_')


@pytest.mark.parametrize(
    'path', sorted(glob.glob(osp.join(CFG_DIR, '*.py'))),
    ids=osp.basename)
def test_every_second_stage_config_trains_on_pseudo_json(path):
    """Leaf configs added later (e.g. other backbones) keep the data swap."""
    cfg = Config.fromfile(path)
    assert 'p2seg_mm' in cfg.custom_imports.imports
    assert cfg.train_dataloader.dataset.type == 'CocoDataset'
    assert cfg.train_dataloader.dataset.ann_file.endswith(
        '_p2seg_pseudo.json')
    assert set(EXPECTED) <= {
        osp.basename(p)
        for p in glob.glob(osp.join(CFG_DIR, '*.py'))
    }


@pytest.mark.parametrize('name', sorted(EXPECTED))
def test_config_resolves_stock_base(name):
    model_type, num_classes, root, train_ann, val_ann, classes = \
        EXPECTED[name]
    with open(osp.join(CFG_DIR, name)) as f:
        text = f.read()
    code = [ln for ln in text.splitlines() if not ln.startswith('#')]
    assert code[0] == ("custom_imports = dict(imports=['p2seg_mm'], "
                       'allow_failed_imports=False)')
    assert code[1].startswith('_base_ = ')
    # a stock mmdet config first; other bases only bring data (no model)
    bases = stock_and_data_bases(text)
    assert bases[0].startswith('mmdet::')
    for base in bases[1:]:
        assert base.startswith('../_base_/datasets/'), base
        assert 'model' not in Config.fromfile(osp.join(CFG_DIR, base))

    cfg = load(name)
    assert cfg.default_scope == 'mmdet'
    assert cfg.model.type == model_type
    if model_type == 'MaskRCNN':
        assert cfg.model.roi_head.bbox_head.num_classes == num_classes
        assert cfg.model.roi_head.mask_head.num_classes == num_classes
    else:
        assert cfg.model.mask_head.num_classes == num_classes

    train = cfg.train_dataloader.dataset
    assert train.type == 'CocoDataset'  # pseudo json has masks: plain COCO
    assert train.ann_file == train_ann and train.ann_file.endswith(
        '_p2seg_pseudo.json')
    assert train.data_root == root
    with_mask = [
        t for t in train.pipeline if t.type == 'LoadAnnotations'
    ][0].with_mask
    assert with_mask is True
    for loader in (cfg.val_dataloader, cfg.test_dataloader):
        assert loader.dataset.ann_file == val_ann
        assert loader.dataset.data_root == root
        assert loader.dataset.test_mode is True
    if classes is not None:
        for loader in ('train', 'val', 'test'):
            meta = cfg[f'{loader}_dataloader'].dataset.metainfo
            assert tuple(meta.classes) == classes
    assert cfg.auto_scale_lr.base_batch_size > 0
    assert cfg.auto_scale_lr.enable is False


@pytest.mark.parametrize('name', [n for n in EXPECTED if 'voc' in n] + [DEMO])
def test_voc_style_evaluators(name):
    cfg = load(name)
    root, val_ann = EXPECTED[name][2], EXPECTED[name][4]
    for evaluators in (cfg.val_evaluator, cfg.test_evaluator):
        assert [e.type for e in evaluators] == [
            'CocoMetric', 'VOCInstanceMetric'
        ]
        assert evaluators[0].metric == 'segm'
        assert evaluators[1].iou_thrs == [0.25, 0.5, 0.7, 0.75]
        assert all(e.ann_file == root + val_ann for e in evaluators)
    # Same models as stock: the pretrained backbone stays for real data.
    if name != DEMO:
        assert cfg.model.backbone.init_cfg.checkpoint == \
            'torchvision://resnet50'


def test_coco_config_only_swaps_train_json(tmp_path):
    cfg = load('mask-rcnn_r50_fpn_1x_coco-p2seg-pseudo.py')
    stock_path = tmp_path / 'stock.py'
    stock_path.write_text(
        "_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'\n")
    stock = Config.fromfile(str(stock_path))
    assert cfg.model == stock.model
    assert cfg.val_evaluator == stock.val_evaluator
    assert cfg.train_cfg == stock.train_cfg
    stock.train_dataloader.dataset.ann_file = \
        cfg.train_dataloader.dataset.ann_file
    assert cfg.train_dataloader == stock.train_dataloader


def test_demo_config_is_small_and_offline():
    cfg = load(DEMO)
    assert cfg.model.backbone.depth == 18
    assert cfg.model.backbone.init_cfg is None
    assert cfg.model.neck.in_channels == [64, 128, 256, 512]
    assert cfg.train_cfg.type == 'IterBasedTrainLoop'
    assert cfg.train_cfg.max_iters == cfg.train_cfg.val_interval == 80
    assert 'max_epochs' not in cfg.train_cfg
    assert cfg.train_dataloader.batch_size == 2
    assert cfg.train_dataloader.num_workers == 2
    assert cfg.train_dataloader.sampler.type == 'InfiniteSampler'
    for step in cfg.train_dataloader.dataset.pipeline:
        if step.type == 'Resize':
            assert step.scale == (512, 512)
    assert all(not s.by_epoch for s in cfg.param_scheduler)
    assert cfg.default_hooks.checkpoint.by_epoch is False


def make_pseudo_dataset(root, num_images=2, size=(48, 64)):
    """Tiny images plus a pseudo json with RLE masks (as exported)."""
    import cv2
    from pycocotools import mask as mask_utils
    (root / 'images').mkdir(parents=True)
    (root / 'annotations').mkdir()
    rng = np.random.default_rng(0)
    images, anns = [], []
    for i in range(num_images):
        img = rng.integers(0, 255, size + (3, ), dtype=np.uint8)
        cv2.imwrite(str(root / 'images' / f'{i}.png'), img)
        images.append(
            dict(id=i, file_name=f'{i}.png', height=size[0], width=size[1]))
        for k, (y0, x0) in enumerate([(4, 6), (20, 30)]):
            mask = np.zeros(size, dtype=np.uint8)
            mask[y0:y0 + 12, x0:x0 + 16] = 1
            rle = mask_utils.encode(np.asfortranarray(mask))
            rle['counts'] = rle['counts'].decode('ascii')
            anns.append(
                dict(
                    id=len(anns) + 1,
                    image_id=i,
                    category_id=k + 1,
                    segmentation=rle,
                    bbox=[float(x0), float(y0), 16.0, 12.0],
                    area=192.0,
                    score=0.9,
                    iscrowd=0))
    cats = [dict(id=1, name='ecoli'), dict(id=2, name='hela_nucleus')]
    with open(root / 'annotations' / 'train_p2seg_pseudo.json', 'w') as f:
        json.dump(dict(images=images, annotations=anns, categories=cats), f)


def test_demo_train_dataset_reads_pseudo_json(tmp_path):
    from mmdet.registry import DATASETS
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')
    make_pseudo_dataset(tmp_path)
    cfg = load(DEMO)
    ds_cfg = cfg.train_dataloader.dataset
    ds_cfg.data_root = str(tmp_path) + '/'
    ds_cfg.filter_cfg = dict(filter_empty_gt=True, min_size=8)
    dataset = DATASETS.build(ds_cfg)
    assert len(dataset) == 2
    sample = dataset[0]['data_samples']
    assert sample.gt_instances.masks.masks.shape[0] == 2
    assert sorted(sample.gt_instances.labels.tolist()) == [0, 1]
    # 48 x 64 resized to fit 512 x 512 with the aspect ratio kept.
    assert sample.img_shape == (384, 512)


def test_demo_model_loss_forward():
    from mmdet.registry import MODELS
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.registry import init_default_scope
    from mmengine.structures import InstanceData
    init_default_scope('mmdet')
    torch.manual_seed(0)
    model = MODELS.build(load(DEMO).model)
    model.train()
    inputs, samples = [], []
    for i in range(2):
        inputs.append(torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8))
        masks = np.zeros((2, 64, 64), dtype=np.uint8)
        masks[0, 8:30, 10:40] = 1
        masks[1, 36:60, 20:50] = 1
        sample = DetDataSample(
            metainfo=dict(
                img_shape=(64, 64),
                ori_shape=(64, 64),
                scale_factor=(1.0, 1.0),
                batch_input_shape=(64, 64)))
        sample.gt_instances = InstanceData(
            bboxes=torch.tensor([[10., 8., 40., 30.], [20., 36., 50., 60.]]),
            labels=torch.tensor([0, 1]),
            masks=BitmapMasks(masks, 64, 64))
        samples.append(sample)
    data = model.data_preprocessor(
        dict(inputs=inputs, data_samples=samples), True)
    losses = model(**data, mode='loss')
    for key in ('loss_rpn_cls', 'loss_cls', 'loss_mask'):
        assert key in losses
    total = sum(v.sum() if isinstance(v, torch.Tensor) else sum(v)
                for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()


def test_voc_configs_share_their_data():
    """The two VOC leaves differ only in their stock model: same data,
    classes and metrics, from configs/_base_/datasets/voc_p2seg_pseudo.py,
    and the same classes as the stage-A VOC dataset."""
    names = sorted(n for n in EXPECTED if 'voc' in n)
    cfgs = [load(n) for n in names]
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader',
                'val_evaluator', 'test_evaluator', 'auto_scale_lr'):
        assert cfgs[0][key] == cfgs[1][key], key
    for cfg in cfgs:
        assert cfg.data_root == 'data/voc/'
    stage_a = Config.fromfile(
        osp.join(REPO_ROOT, 'configs', 'p2seg', 'p2seg_r50_voc.py'))
    assert stage_a.train_dataloader.dataset.metainfo == \
        cfgs[0].train_dataloader.dataset.metainfo
