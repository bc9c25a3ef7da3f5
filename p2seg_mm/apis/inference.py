# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Point-prompted inference with a trained P2Seg model (``tools/infer.py``).

``init_point_segmentor`` builds the model in point mode and loads its
weights; ``inference_points`` segments one image given its points (one mask
per point); ``instances_to_coco`` turns the result into COCO annotations.
"""
import logging
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.logging import print_log
from mmengine.model import revert_sync_batchnorm
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint
from mmengine.structures import InstanceData
from pycocotools import mask as mask_utils
from torch import nn

from mmdet.registry import MODELS
from ..datasets.categories import category_to_label, label_to_category_id
from ..structures.mask_codec import encode_mask
from ..datasets.image_io import (DEFAULT_PERCENTILES, check_percentiles,
                                 read_image_file)

#: Image loaders a test pipeline may start with; replaced by the rule's.
_IMAGE_LOADERS = ('LoadImageFromFile', 'mmdet.LoadImageFromFile',
                  'LoadP2SegImageFromFile')


def init_point_segmentor(
        config: str,
        checkpoint: str,
        device: str = 'cpu',
        cfg_options: Optional[dict] = None
) -> Tuple[nn.Module, Config, Tuple[str, ...]]:
    """Build P2Seg in point mode, load weights, find the class names.

    New images have no semantic pseudo-map, so ``test_cfg.semantic_source``
    becomes ``'network'`` unless ``cfg_options`` sets
    ``model.test_cfg.semantic_source`` itself.

    The model is built in ``test_cfg.mode='point'``; :func:`inference_center`
    switches an image without points to ``'center'`` (``tools/infer.py``
    picks the mode per image). A ``model.test_cfg.mode`` in
    ``cfg_options`` must be one of the grouping head's modes
    (:class:`~p2seg_mm.models.seg_heads.P2SegPointGroupingHead` checks
    it); ``'center'`` is logged as not used, since the points decide.

    Returns:
        tuple: ``(model, cfg, class_names)``; names come from the
        checkpoint's ``dataset_meta``, else from the config's dataset
        ``metainfo``.

    Raises:
        ValueError: ``model.test_cfg.mode`` in ``cfg_options`` is not a
            mode of the grouping head; the model is not P2Seg; no class
            names.
    """
    check_mode_option(cfg_options)
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if cfg.model.get('type') != 'P2Seg':
        raise ValueError(f'{config}: tools/infer.py runs P2Seg models in '
                         f'point mode, but model.type is '
                         f'{cfg.model.get("type")!r}.')
    if cfg.model.get('test_cfg') is None:
        cfg.model.test_cfg = dict()
    cfg.model.test_cfg.mode = 'point'
    if 'model.test_cfg.semantic_source' not in (cfg_options or {}):
        # new images have no pseudo-map: decode the network's semantic map
        # (a config may set 'pseudo_map' for its stage-B export)
        cfg.model.test_cfg.semantic_source = 'network'
    cfg.model.pop('init_cfg', None)
    if cfg.model.get('backbone') is not None:
        cfg.model.backbone.init_cfg = None  # weights come from checkpoint
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    model = revert_sync_batchnorm(MODELS.build(cfg.model))
    ckpt = load_checkpoint(
        model, checkpoint, map_location='cpu', strict=True)
    names = ckpt.get('meta', {}).get('dataset_meta', {}).get('classes')
    if not names:
        for key in ('test_dataloader', 'val_dataloader', 'train_dataloader'):
            meta = cfg.get(key, {}).get('dataset', {}).get('metainfo') or {}
            names = meta.get('classes')
            if names:
                break
    if not names:
        raise ValueError(f'{checkpoint} has no meta.dataset_meta.classes and '
                         f'{config} no dataset metainfo.classes: cannot name '
                         'the classes. Fix: add metainfo=dict(classes=(...)) '
                         'to test_dataloader.dataset.')
    model.dataset_meta = dict(classes=tuple(names))
    return model.to(device).eval(), cfg, tuple(names)


def check_mode_option(cfg_options: Optional[dict]) -> None:
    """Check a ``model.test_cfg.mode`` given in ``cfg_options``
    (``--cfg-options``) against the grouping head's modes.

    The head's own check decides (``P2SegPointGroupingHead`` accepts
    ``'point'`` and ``'center'``). A valid mode is logged as not used:
    inference picks it per image (``'point'`` for an image with points,
    ``'center'`` for one without).

    Args:
        cfg_options (dict, optional): The config overrides, ``key=value``.

    Raises:
        ValueError: The mode is not one of the head's, naming the option,
            the valid modes and the fix.
    """
    if not cfg_options or 'model.test_cfg.mode' not in cfg_options:
        return
    from ..models.seg_heads import P2SegPointGroupingHead
    mode = cfg_options['model.test_cfg.mode']
    try:
        P2SegPointGroupingHead(dict(mode=mode))
    except ValueError as err:
        raise ValueError(
            f'--cfg-options model.test_cfg.mode={mode!r}: {err} Fix: drop '
            'the option: tools/infer.py decodes an image with points in '
            "'point' mode and an image without points in 'center' mode "
            '(point-free; give no points for it).') from None
    if mode == 'point':
        return  # the mode the model is built in: it is used
    print_log(
        f"--cfg-options model.test_cfg.mode={mode!r} is not used: "
        "tools/infer.py decodes an image with points in 'point' mode and "
        "an image without points in 'center' mode. To decode an image "
        'point-free, give no points for it.',
        logger='current',
        level=logging.WARNING)


def build_pipeline(cfg: Config,
                   percentiles: Optional[Sequence[float]] = None,
                   channel: Optional[int] = None,
                   with_seg: bool = False) -> Compose:
    """The config's test pipeline; no semantic map is loaded unless
    ``with_seg`` (for ``test_cfg.semantic_source='pseudo_map'``).

    Its image loader becomes :class:`LoadP2SegImageFromFile` (the loading
    rule of :mod:`p2seg_mm.datasets.image_io`), keeping its
    ``backend_args``, ``percentiles`` and ``channel`` unless given here.

    Args:
        cfg (Config): Config of the model.
        percentiles (Sequence[float], optional): (low, high) of the stretch
            of non-8-bit images. Defaults to None (the config's, else
            (1.0, 99.8)).
        channel (int, optional): Plane of multi-plane images. Defaults to
            None (the config's).
        with_seg (bool): Load the pseudo-map given as ``seg_map_path``.
            Defaults to False.

    Returns:
        Compose: The pipeline.
    """
    dataset = (cfg.get('test_dataloader') or {}).get('dataset') or {}
    pipeline = dataset.get('pipeline') or cfg.get('test_pipeline')
    if not pipeline:
        raise ValueError('the config has neither test_dataloader.dataset.'
                         'pipeline nor test_pipeline.')
    steps = []
    for step in pipeline:
        step = dict(step)
        if step['type'] == 'LoadP2SegAnnotations':
            step['with_seg'] = with_seg
        if step['type'] in _IMAGE_LOADERS:
            step = image_loader_cfg(step, percentiles, channel)
        steps.append(step)
    return Compose(steps)


def image_loader_cfg(step: dict,
                     percentiles: Optional[Sequence[float]] = None,
                     channel: Optional[int] = None) -> dict:
    """``LoadP2SegImageFromFile`` config replacing an image-loading step.

    No json size check (inference has no json); ``to_float32``,
    ``color_type`` and ``backend_args`` are kept.
    """
    keep = ('to_float32', 'color_type', 'backend_args', 'percentiles',
            'channel', 'min_dynamic_range')
    out = {k: v for k, v in step.items() if k in keep}
    out.update(type='LoadP2SegImageFromFile', check_size=False)
    if percentiles is not None:
        out['percentiles'] = tuple(check_percentiles(percentiles))
    if channel is not None:
        out['channel'] = channel
    return out


def inference_points(model: nn.Module,
                     pipeline: Compose,
                     path: str,
                     img_id: int,
                     xy: np.ndarray,
                     labels: Sequence[int],
                     seg_map_path: Optional[str] = None) -> InstanceData:
    """Segment one image given its points (one mask per point).

    Args:
        model (nn.Module): From :func:`init_point_segmentor`.
        pipeline (Compose): From :func:`build_pipeline`.
        path (str): Image file.
        img_id (int): Id recorded in the data sample.
        xy (np.ndarray): (P, 2) continuous point coordinates.
        labels (Sequence[int]): (P, ) 0-based class of each point.
        seg_map_path (str, optional): The image's semantic pseudo-map, for
            a pipeline built ``with_seg``. Defaults to None.

    Returns:
        InstanceData: ``masks`` (P, H, W) bool at image size, ``labels``,
        ``scores``, ``bboxes`` (on CPU).
    """
    instances = [
        dict(point=[float(x), float(y)], bbox_label=int(c), ignore_flag=0)
        for (x, y), c in zip(xy, labels)
    ]
    data = pipeline(
        dict(img_path=path, img_id=img_id, seg_map_path=seg_map_path,
             instances=instances))
    with torch.no_grad():
        result = model.test_step(pseudo_collate([data]))[0]
    return result.pred_instances.cpu()


def center_head_trained(model: nn.Module) -> bool:
    """Whether the model's centre head was trained (weight > 0).

    Point-free decoding (``test_cfg.mode='center'``) finds instances at the
    centre heatmap's peaks; a head trained with
    ``center_offset_head.loss_center_weight=0`` never learnt them.
    """
    head = getattr(model, 'center_offset_head', None)
    return float(getattr(head, 'loss_center_weight', 0.0) or 0.0) > 0


def inference_center(model: nn.Module, pipeline: Compose, path: str,
                     img_id: int) -> InstanceData:
    """Segment one image without points (centre-peak decoding).

    Args:
        model (nn.Module): From :func:`init_point_segmentor`; its centre
            head must be trained (:func:`center_head_trained`).
        pipeline (Compose): From :func:`build_pipeline`.
        path (str): Image file.
        img_id (int): Id recorded in the data sample.

    Returns:
        InstanceData: ``masks`` (N, H, W) bool at image size, ``labels``,
        ``scores``, ``bboxes`` (on CPU); N found by the decoding. N = 0 is
        logged as a warning naming the image and the fix.

    Raises:
        ValueError: The centre head was not trained.
    """
    if not center_head_trained(model):
        raise ValueError(
            f'image {path} has no points, and this model cannot segment '
            'without them: its centre head was trained with center_offset_'
            'head.loss_center_weight=0. Fix: give the points of the image, '
            'or use a model trained with loss_center_weight > 0.')
    data = pipeline(
        dict(img_path=path, img_id=img_id, seg_map_path=None, instances=[]))
    mode = model.test_cfg['mode']
    model.test_cfg['mode'] = 'center'
    try:
        with torch.no_grad():
            result = model.test_step(pseudo_collate([data]))[0]
    finally:
        model.test_cfg['mode'] = mode
    pred = result.pred_instances.cpu()
    if len(pred) == 0:
        print_log(
            f"{path}: point-free decoding (test_cfg.mode='center') found no "
            'instance (no centre peak above test_cfg.center_threshold='
            f"{model.test_cfg.get('center_threshold')} on the predicted "
            'foreground, or none larger than test_cfg.min_area='
            f"{model.test_cfg.get('min_area')}). Fix: give the points of "
            'this image (--points/--point), or lower the threshold '
            '(--cfg-options model.test_cfg.center_threshold=...).',
            logger='current',
            level=logging.WARNING)
    return pred


def coco_categories(class_names: Sequence[str]) -> List[dict]:
    """Json ``categories`` of the predictions: ``id = label + 1``."""
    return [dict(id=k + 1, name=name) for k, name in enumerate(class_names)]


def instances_to_coco(pred: InstanceData,
                      img_id: int,
                      first_ann_id: int,
                      xy: np.ndarray,
                      categories: Optional[Sequence[dict]] = None,
                      class_names: Optional[Sequence[str]] = None
                      ) -> List[dict]:
    """COCO annotations (RLE masks) of one image's predictions.

    Label ``i`` is written as the ``category_id`` of ``class_names[i]`` in
    ``categories``: the inverse of the one category<->label rule
    (:func:`~p2seg_mm.datasets.categories.category_to_label`; the json
    order must be the class order, checked).

    Args:
        pred (InstanceData): ``masks`` (N, H, W), ``labels``, ``scores``.
        img_id (int): ``image_id`` of the annotations.
        first_ann_id (int): ``id`` of the first annotation.
        xy (np.ndarray): (P, 2) points; with P == N (point mode, one mask
            per point, in order) each annotation gets its ``point``.
        categories (Sequence[dict], optional): The json ``categories``
            (``id``, ``name``). None: :func:`coco_categories` of
            ``class_names`` (``category_id = label + 1``).
        class_names (Sequence[str], optional): Class names in label order.
            None: every category, in json order; with ``categories`` None
            too, ``category_id = label + 1``.

    Returns:
        list[dict]: The annotations.

    Raises:
        ValueError: Categories that disagree with the classes (see
            ``category_to_label``) or a label without a category.
    """
    if categories is None and class_names is not None:
        categories = coco_categories(class_names)
    if categories is None:
        label2cat = None
    else:
        label2cat = label_to_category_id(
            category_to_label(categories, class_names, 'categories'))
    masks = pred.masks.numpy()
    anns = []
    for k in range(len(masks)):
        label = int(pred.labels[k])
        if label2cat is None:
            cat_id = label + 1
        elif 0 <= label < len(label2cat):
            cat_id = label2cat[label]
        else:
            raise ValueError(
                f'image id {img_id}: predicted label {label} has no category'
                f' ({len(label2cat)} classes). Fix: pass the model\'s class '
                'names and categories.')
        rle = encode_mask(masks[k])
        ann = dict(
            id=first_ann_id + k,
            image_id=img_id,
            category_id=cat_id,
            segmentation=rle,
            area=float(mask_utils.area(rle)),
            bbox=[float(v) for v in mask_utils.toBbox(rle)],
            score=float(pred.scores[k]),
            iscrowd=0)
        if len(masks) == len(xy):  # point mode: one mask per point, in order
            ann['point'] = [float(v) for v in xy[k]]
        anns.append(ann)
    return anns


def read_image(path: str,
               percentiles: Sequence[float] = DEFAULT_PERCENTILES,
               channel: Optional[int] = None) -> np.ndarray:
    """Read an image by the loading rule as (H, W, 3) uint8 RGB.

    See :mod:`p2seg_mm.datasets.image_io` (EXIF orientation applied,
    16-bit/float stretched between ``percentiles``, ``channel`` of
    multi-plane TIFFs).

    Raises:
        FileNotFoundError: No such file.
        ValueError: Unreadable or truncated file (the message names it),
            multi-plane TIFF without ``channel``.
    """
    return read_image_file(
        path, 'rgb', percentiles=percentiles, channel=channel)
