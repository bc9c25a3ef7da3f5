# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Data checks of a whole config: its datasets and its evaluators' jsons.

:func:`check_config_data` is what ``tools/analysis_tools/check_dataset.py``
runs (every check, every problem listed); :func:`preflight_check` is the
fast part that ``tools/train.py`` and ``tools/test.py`` run before the
runner is built, for the jsons no ``CocoPointDataset`` checks itself: stock
mmdet datasets (second stage) and the ground-truth jsons of the metrics
(``CocoMetric``, ``VOCInstanceMetric``), whose categories must follow the
config classes in order and whose masks must be decodable.
:func:`check_train_scale` (image sizes against the train pipeline's resize
scale) is also run by ``CocoPointDataset`` when a training dataset is
built.
"""
import json
import os
import os.path as osp
from typing import Iterator, List, Optional, Sequence, Tuple

from mmengine.config import Config, ConfigDict

from .categories import category_to_label
from .data_checks import (DataCheckError, DataProblem, check_categories,
                          check_coco_structure, check_point_categories,
                          check_points, check_segmentations, errors_of,
                          is_number, point_records, warning)
from .file_checks import check_data_files, image_loader_of

POINT_DATASETS = ('CocoPointDataset', )
SPLITS = ('train', 'val', 'test')


def _plain(value):
    return value.to_dict() if isinstance(value, ConfigDict) else value


def _type_name(cfg: dict) -> str:
    return str(cfg.get('type', '')).split('.')[-1]


def _inner_dataset(dataset: dict) -> dict:
    """Unwrap ``RepeatDataset`` / ``ClassBalancedDataset`` & co."""
    while 'ann_file' not in dataset and isinstance(
            dataset.get('dataset'), dict):
        dataset = dataset['dataset']
    return dataset


def _join(root: Optional[str], path: str) -> str:
    if not root or osp.isabs(path) or '://' in path:
        return path
    return osp.join(root, path)


def dataset_classes(dataset: dict) -> Optional[List[str]]:
    """``metainfo['classes']`` of a dataset config, else its class's."""
    metainfo = dataset.get('metainfo') or {}
    if metainfo.get('classes'):
        return list(metainfo['classes'])
    try:
        from mmdet.registry import DATASETS
        cls = DATASETS.get(_type_name(dataset))
    except Exception:  # noqa: BLE001 (unknown type: no classes)
        cls = None
    meta = getattr(cls, 'METAINFO', None) or {}
    return list(meta['classes']) if meta.get('classes') else None


def split_datasets(cfg: Config,
                   splits: Sequence[str] = SPLITS
                   ) -> Iterator[Tuple[str, dict]]:
    """``(split, dataset config)`` of each split's dataloader, unwrapped;
    a dataset shared by two splits (``test = val``) is given once."""
    seen = []
    for split in splits:
        loader = cfg.get(f'{split}_dataloader')
        if not loader or not loader.get('dataset'):
            continue
        dataset = _inner_dataset(_plain(loader['dataset']))
        if 'ann_file' not in dataset or dataset in seen:
            continue
        seen.append(dataset)
        yield split, dataset


def evaluator_ann_files(cfg: Config,
                        splits: Sequence[str] = SPLITS
                        ) -> Iterator[Tuple[str, str, Optional[List[str]]]]:
    """``(split, ann_file, classes)`` of every metric with an ``ann_file``;
    ``classes`` are those of the split's dataset."""
    seen = set()
    for split in splits:
        evaluator = _plain(cfg.get(f'{split}_evaluator'))
        if not evaluator:
            continue
        if isinstance(evaluator, dict) and 'metrics' in evaluator:
            evaluator = evaluator['metrics']
        metrics = evaluator if isinstance(evaluator, list) else [evaluator]
        loader = cfg.get(f'{split}_dataloader') or {}
        classes = None
        if loader.get('dataset'):
            classes = dataset_classes(
                _inner_dataset(_plain(loader['dataset'])))
        for metric in metrics:
            ann_file = metric.get('ann_file') if isinstance(metric,
                                                            dict) else None
            if ann_file and (ann_file, str(classes)) not in seen:
                seen.add((ann_file, str(classes)))
                yield split, ann_file, classes


def _load_json(path: str, what: str) -> Tuple[Optional[dict],
                                              List[DataProblem]]:
    if not osp.isfile(path):
        return None, [DataProblem(
            'error', f'{what} {path} does not exist. Fix: check the path '
            '(and data_root) in the config'
            + ('' if osp.isabs(path) else
               f'; a relative path is read from the current folder '
               f'{os.getcwd()}: run from the project root (the folder '
               'that holds configs/) or set data_root with --cfg-options')
            + '.')]
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f), []
    except (OSError, ValueError) as err:
        return None, [DataProblem(
            'error', f'{what} {path} is not a readable json ({err}). Fix: '
            're-write it.')]


def _data_list(coco: dict, dataset: dict, img_root: str,
               seg_root: Optional[str],
               classes: Optional[Sequence[str]]) -> List[dict]:
    """The ``data_info`` fields :func:`check_data_files` needs, with the
    training ``points`` of each image (none if the categories do not fit
    the classes: :func:`check_categories` reports it)."""
    suffix = dataset.get('seg_map_suffix', '.png')
    try:
        cat2label = category_to_label(coco.get('categories') or [], classes)
    except ValueError:
        cat2label = {}
    anns = {}
    for ann in coco.get('annotations') or []:
        anns.setdefault(ann.get('image_id'), []).append(ann)
    out = []
    for img in coco.get('images') or []:
        name = img.get('file_name')
        if not name or not (is_number(img.get('height'))
                            and is_number(img.get('width'))):
            continue  # reported by check_coco_structure
        out.append(
            dict(
                img_id=img.get('id'),
                img_path=osp.join(img_root, name),
                height=img.get('height'),
                width=img.get('width'),
                seg_map_path=(osp.join(seg_root,
                                       name.rsplit('.', 1)[0] + suffix)
                              if seg_root else None),
                points=point_records(
                    anns.get(img.get('id'), []), cat2label,
                    img['height'], img['width'])))
    return out


def _loads_seg(dataset: dict) -> bool:
    return any(
        isinstance(t, dict) and _type_name(t) == 'LoadP2SegAnnotations'
        and t.get('with_seg', True) for t in dataset.get('pipeline') or [])


#: Training upsampling above which an image is reported (a square scale:
#: the image's longer side is under half of it).
UPSAMPLE_WARN_FACTOR = 2.0
#: Resize steps of a point pipeline that :func:`check_train_scale` reads.
RESIZE_TYPES = ('PointResize', 'PointRandomResize', 'PointRandomChoiceResize')
#: Images named by the warning of :func:`check_train_scale`.
MAX_LISTED_IMAGES = 5


def _scale_wh(scale) -> Optional[Tuple[float, float]]:
    """``(w, h)`` of an mmcv resize scale (an int is square); None if
    ``scale`` is not one number or two."""
    if is_number(scale):
        return float(scale), float(scale)
    if isinstance(scale, (list, tuple)) and len(scale) == 2 and all(
            is_number(v) for v in scale):
        return float(scale[0]), float(scale[1])
    return None


def resize_factor(height: float, width: float, scale: Tuple[float, float],
                  keep_ratio: bool) -> float:
    """The factor mmdet ``Resize(scale, keep_ratio)`` applies to an image.

    ``keep_ratio``: the largest factor that fits the longer side in
    ``max(scale)`` and the shorter in ``min(scale)`` (mmcv
    ``rescale_size``); otherwise the image is stretched to ``scale``
    ``(w, h)`` and the smaller of the two axis factors is returned.
    """
    scale_w, scale_h = scale
    if keep_ratio:
        return min(max(scale_w, scale_h) / max(height, width),
                   min(scale_w, scale_h) / min(height, width))
    return min(scale_w / width, scale_h / height)


def _resize_factors(step: dict, height: float,
                    width: float) -> Optional[Tuple[float, float, float]]:
    """``(nominal, smallest, largest)`` factor of a resize step of
    :data:`RESIZE_TYPES` on an image; None for a step without a scale
    (``scale_factor`` only) or one it cannot read.

    Nominal: ``scale`` itself (``PointResize``; ``PointRandomResize`` with
    one scale, whose ``ratio_range`` gives the smallest and largest), the
    middle of a ``PointRandomResize`` scale range, the median of the
    ``PointRandomChoiceResize`` choices.
    """
    name = _type_name(step)
    keep = bool(step.get('keep_ratio', False))
    if name == 'PointRandomChoiceResize':
        scales = [_scale_wh(s) for s in step.get('scales') or []]
        if not scales or None in scales:
            return None
        factors = sorted(
            resize_factor(height, width, s, keep) for s in scales)
        return factors[len(factors) // 2], factors[0], factors[-1]
    scale = step.get('scale')
    wh = _scale_wh(scale)
    if wh is None:
        if name != 'PointRandomResize' or not isinstance(
                scale, (list, tuple)) or len(scale) != 2:
            return None
        bounds = [_scale_wh(s) for s in scale]
        if None in bounds:
            return None
        low = (min(b[0] for b in bounds), min(b[1] for b in bounds))
        high = (max(b[0] for b in bounds), max(b[1] for b in bounds))
        middle = ((low[0] + high[0]) / 2, (low[1] + high[1]) / 2)
        return tuple(
            resize_factor(height, width, s, keep)
            for s in (middle, low, high))
    factor = resize_factor(height, width, wh, keep)
    ratios = step.get('ratio_range') if name == 'PointRandomResize' else None
    if not (isinstance(ratios, (list, tuple)) and len(ratios) == 2
            and all(is_number(r) for r in ratios)):
        ratios = (1.0, 1.0)
    return factor, factor * min(ratios), factor * max(ratios)


def _step_text(step: dict) -> str:
    """``Type(key=value, ...)`` of a step's size keys, for messages."""
    keys = ('scale', 'scales', 'ratio_range', 'keep_ratio', 'crop_size',
            'size')
    args = ', '.join(f'{k}={_plain(step[k])!r}' for k in keys if k in step)
    return f'{_type_name(step)}({args})'


def check_train_scale(data_list: Sequence[dict], pipeline,
                      source: str) -> List[DataProblem]:
    """Images much smaller than the train pipeline's resize scale.

    The first resize step of the pipeline (:data:`RESIZE_TYPES`, config
    dicts) gives each image a nominal factor (:func:`resize_factor` at the
    step's ``scale``, ratio 1 of ``ratio_range``); images upsampled more
    than :data:`UPSAMPLE_WARN_FACTOR` times (for a square scale with
    ``keep_ratio``: the longer side under half of the scale) are learnt at
    a scale inference at full resolution does not show them, from blurred
    pixels. Sizes are the json's (upright). Meant for training datasets
    (the callers skip ``test_mode``).

    Args:
        data_list (Sequence[dict]): ``img_path``, ``height`` and
            ``width`` per image.
        pipeline (list, optional): The dataset's pipeline (config dicts;
            other steps are skipped).
        source (str): The json, for the message.

    Returns:
        list[DataProblem]: At most one warning for the dataset: how many
        images, the first :data:`MAX_LISTED_IMAGES` with their size and
        factor, the factor range, and the fix (the scale at the data's
        median longer side; the crop no larger).
    """
    steps = [s for s in pipeline or [] if isinstance(s, dict)]
    resize = next((s for s in steps if _type_name(s) in RESIZE_TYPES), None)
    if resize is None or not data_list:
        return []
    small = []
    for info in data_list:
        height, width = info['height'], info['width']
        if not (is_number(height) and is_number(width)) or min(
                height, width) <= 0:
            continue
        factors = _resize_factors(resize, height, width)
        if factors is None:
            return []
        if factors[0] > UPSAMPLE_WARN_FACTOR:
            small.append((info, factors))
    if not small:
        return []
    longer = sorted(max(i['height'], i['width']) for i in data_list
                    if is_number(i['height']) and is_number(i['width']))
    median = int(round(longer[len(longer) // 2]))
    examples = ', '.join(
        f'{info["img_path"]} ({info["height"]} x {info["width"]}, '
        f'x{factors[0]:.1f})' for info, factors in small[:MAX_LISTED_IMAGES])
    more = len(small) - MAX_LISTED_IMAGES
    nominal = [factors[0] for _, factors in small]
    lowest = min(factors[1] for _, factors in small)
    highest = max(factors[2] for _, factors in small)
    span = (f'x{min(nominal):.1f}' if max(nominal) - min(nominal) < 0.05
            else f'x{min(nominal):.1f} to x{max(nominal):.1f}')
    if highest - lowest > 0.05:
        span += (f' (x{lowest:.1f} to x{highest:.1f} over the random '
                 'ratio)')
    crop = next((s for s in steps if 'crop_size' in s), None)
    crop_fix = ''
    if crop is not None:
        crop_wh = _scale_wh(_plain(crop['crop_size']))
        if crop_wh is not None and max(crop_wh) > median:
            crop_fix = (f', and {_step_text(crop)} (and the pad size) no '
                        'larger than that')
    return [warning(
        f'{source}: {len(small)} of {len(data_list)} images are much smaller '
        f'than the resize scale of the train pipeline, {_step_text(resize)}:'
        f' {examples}{f" and {more} more" if more > 0 else ""} (H x W, '
        f'factor). Training upsamples them {span}, so the model learns '
        'their objects that much larger than inference at full resolution '
        'shows them, and from blurred pixels. Fix: set the scale to the '
        f"data's size, e.g. scale=({median}, {median}) for the dataset's "
        f'median longer side of {median} px{crop_fix}; if the upsampling is '
        'intended, ignore this warning.')]


def check_dataset_cfg(dataset: dict,
                      split: str,
                      files: bool = True,
                      max_decode: Optional[int] = None
                      ) -> List[DataProblem]:
    """Every check of one dataset config (see the module docstring).

    Json checks; for a ``CocoPointDataset`` the points and their categories
    and, unless ``test_mode``, the image sizes against the train
    pipeline's resize scale (:func:`check_train_scale`, a warning); with
    ``files``, the image and pseudo-map files, and the training points on
    the decoded pseudo-maps (:func:`~.file_checks.check_data_files`: a
    point on background or another class is a warning).

    Args:
        dataset (dict): Dataset config (``ann_file``, ``data_root``,
            ``data_prefix``, ``metainfo``, ``pipeline`` ...).
        split (str): Split name, for messages.
        files (bool): Check the image and pseudo-map files too.
            Defaults to True.
        max_decode (int, optional): Files decoded in full (None: all).

    Returns:
        list[DataProblem]: Every problem found.
    """
    root = dataset.get('data_root') or ''
    ann_file = _join(root, dataset['ann_file'])
    coco, problems = _load_json(ann_file, f'{split} annotation file')
    if coco is None:
        return problems
    problems += check_coco_structure(coco, ann_file)
    classes = dataset_classes(dataset)
    problems += check_categories(coco, classes, ann_file)
    is_point = _type_name(dataset) in POINT_DATASETS
    if is_point:
        problems += check_points(coco, ann_file)
        # a json category that is not a class: CocoPointDataset refuses it
        problems += check_point_categories(coco, classes, ann_file)
        with_point = {
            a.get('image_id')
            for a in coco.get('annotations') or []
            if 'point' in a and not a.get('iscrowd') and not a.get('ignore')
        }
        empty = [i.get('id') for i in coco.get('images') or []
                 if i.get('id') not in with_point]
        if empty and not dataset.get('test_mode', False):
            problems.append(DataProblem(
                'warning', f'{ann_file}: {len(empty)} images have no '
                f'non-crowd point (e.g. image ids {empty[:5]}); training '
                'skips them.'))
    elif any('segmentation' in a for a in coco.get('annotations') or []):
        # mmdet's loader drops bad polygons: suspicious, not fatal
        problems += [
            DataProblem('warning', p.message)
            for p in check_segmentations(coco, ann_file)
        ]
    prefix = dataset.get('data_prefix') or {}
    img_root = _join(root, prefix.get('img', prefix.get('img_path', '')))
    seg_root = None
    if is_point and prefix.get('seg') and _loads_seg(dataset):
        seg_root = _join(root, prefix['seg'])
    data_list = _data_list(coco, dataset, img_root, seg_root, classes)
    if is_point and not dataset.get('test_mode', False):
        problems += check_train_scale(data_list, dataset.get('pipeline'),
                                      ann_file)
    if files:
        problems += check_data_files(
            data_list,
            ann_file,
            num_classes=len(classes) if classes else None,
            check_seg=seg_root is not None,
            max_decode=max_decode,
            backend_args=dataset.get('backend_args'),
            loader=image_loader_of(dataset.get('pipeline')),
            classes=classes)
    return problems


def check_evaluator_json(ann_file: str, classes: Optional[Sequence[str]],
                         split: str) -> List[DataProblem]:
    """Structure, categories (config order) and decodable masks of a
    metric's ground-truth json."""
    coco, problems = _load_json(ann_file, f'{split} evaluator ann_file')
    if coco is None:
        return problems
    problems += check_coco_structure(coco, ann_file)
    problems += check_categories(coco, classes, ann_file)
    problems += check_segmentations(coco, ann_file)
    return problems


def check_config_data(cfg: Config,
                      splits: Sequence[str] = SPLITS,
                      files: bool = True,
                      max_decode: Optional[int] = None,
                      skip_point_datasets: bool = False
                      ) -> List[DataProblem]:
    """Every data problem of a config's datasets and evaluator jsons.

    Args:
        cfg (Config): The full config.
        splits (Sequence[str]): Splits to check. Defaults to all.
        files (bool): Check image / pseudo-map files. Defaults to True.
        max_decode (int, optional): Files decoded in full (None: all).
        skip_point_datasets (bool): Skip ``CocoPointDataset`` datasets
            (they check themselves when built). Defaults to False.

    Returns:
        list[DataProblem]: Every problem found, in config order.
    """
    problems = []
    for split, dataset in split_datasets(cfg, splits):
        if skip_point_datasets and _type_name(dataset) in POINT_DATASETS:
            continue
        problems += check_dataset_cfg(dataset, split, files, max_decode)
    for split, ann_file, classes in evaluator_ann_files(cfg, splits):
        problems += check_evaluator_json(ann_file, classes, split)
    problems += check_model_classes(cfg, splits)
    # a json read as a dataset and by a metric reports a problem once
    return list(dict.fromkeys(problems))


def check_model_classes(cfg: Config,
                        splits: Sequence[str] = SPLITS) -> List[DataProblem]:
    """The class count of P2Seg's heads against the datasets' classes.

    ``num_classes`` of ``model.semantic_head`` and
    ``model.center_offset_head`` must be the number of
    ``metainfo['classes']`` of every point dataset of ``splits`` (the
    pipeline's class counts follow the dataset by themselves), and
    ``semantic_head.class_weight`` must hold C + 1 values.
    """
    model = cfg.get('model') or {}
    heads = {
        name: (model.get(name) or {}).get('num_classes')
        for name in ('semantic_head', 'center_offset_head')
    }
    weight = (model.get('semantic_head') or {}).get('class_weight')
    problems = []
    if weight is not None and heads['semantic_head'] is not None and \
            len(weight) != int(heads['semantic_head']) + 1:
        problems.append(DataProblem(
            'error',
            f'model.semantic_head.class_weight has {len(weight)} values but '
            f'num_classes={heads["semantic_head"]} needs '
            f'{int(heads["semantic_head"]) + 1} (background first). Fix: '
            'give C + 1 weights or class_weight=None.'))
    for split, dataset in split_datasets(cfg, splits):
        if _type_name(dataset) not in POINT_DATASETS:
            continue
        classes = dataset_classes(dataset)
        for name, count in heads.items():
            if classes and count is not None and int(count) != len(classes):
                problems.append(DataProblem(
                    'error',
                    f'model.{name}.num_classes={count} but the {split} '
                    f"dataset has {len(classes)} classes {list(classes)} "
                    "(metainfo['classes']). Fix: set num_classes = "
                    f'{len(classes)} in the heads (and '
                    'semantic_head.class_weight to C + 1 values or None).'))
    return list(dict.fromkeys(problems))


def preflight_check(cfg: Config, splits: Sequence[str]) -> None:
    """Fast json checks before a runner is built (``tools/train.py``,
    ``tools/test.py``): stock datasets' and metrics' jsons, and a P2Seg
    model's ``test_cfg`` (so that a bad option stops the run before the
    runner logs its environment and config).

    Raises:
        DataCheckError: Listing every error found.
        ValueError: A bad P2Seg ``model.test_cfg`` (unknown key or value).
    """
    model = cfg.get('model') or {}
    if _type_name(model) == 'P2Seg':
        from ..models.seg_heads import P2SegPointGroupingHead
        P2SegPointGroupingHead(_plain(model.get('test_cfg')))
    problems = check_config_data(
        cfg, splits, files=False, skip_point_datasets=True)
    if errors_of(problems):
        raise DataCheckError(
            problems, f'the data of the {"/".join(splits)} split(s)')
