# Copyright (c) p2seg_mm contributors. All rights reserved.
"""COCO-style dataset with one annotated point per instance.

Points are ``(x, y)`` in continuous pixel coordinates (pixel ``(i, j)``
covers ``[j, j + 1) x [i, i + 1)``), see ``docs/design.md``.
"""
import logging
import os.path as osp
from numbers import Real
from typing import List, Optional

from mmengine.fileio import exists, get_local_path
from mmengine.logging import print_log

from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS
from .categories import category_to_label
from .config_checks import check_train_scale
from .data_checks import (DataCheckError, DataProblem, category_problem,
                          check_coco_structure, errors_of, is_number,
                          point_problem, point_records)
from .file_checks import check_data_files, image_loader_of


@DATASETS.register_module()
class CocoPointDataset(CocoDataset):
    """COCO-format dataset whose annotations are points, for `P2Seg
    <https://arxiv.org/abs/2401.09709>`_.

    Every annotation must carry ``"point": [x, y]`` (continuous image pixels)
    and ``category_id``. ``bbox`` and ``segmentation`` may be present (they
    are used by evaluation metrics reading the json directly) but are never
    loaded as training targets. ``iscrowd: 1`` annotations become ignored
    points; ``ignore: 1`` annotations are skipped, as in mmdet.

    Each ``data_info`` holds ``img_path``, ``img_id``, ``seg_map_path`` (the
    semantic pseudo-map ``data_prefix['seg']/<file stem><seg_map_suffix>``,
    or ``None`` without a ``'seg'`` prefix), ``height``, ``width`` and
    ``instances``: a list of ``dict(point=[x, y], bbox_label=int,
    ignore_flag=0 | 1)`` with 0-based contiguous labels.

    Labels follow the order of ``metainfo['classes']``, which must equal the
    order of those categories in the json (the order mmdet's ``CocoMetric``
    uses to map labels back to ``category_id``).

    With ``filter_cfg=dict(filter_empty_gt=True)`` (training), images without
    any non-ignored point are dropped and their number is logged as a
    warning; in ``test_mode`` every image is kept.

    All bad input raises ``ValueError`` (``FileNotFoundError`` for missing
    images) naming the annotation file, the image and the annotation.

    Data checks at build time (so bad data fails before the first
    iteration; ``tools/analysis_tools/check_dataset.py`` runs the same ones
    and lists every problem): the json's structure (unique image /
    annotation / category ids, known references), the categories against
    ``metainfo['classes']`` (:func:`~p2seg_mm.datasets.categories.
    category_to_label`), every point, and, with ``check_files``, the header
    of every image (readable, size equal to the json's, EXIF orientation,
    bit depth) and pseudo-map (present, index PNG, image size) plus the
    pixels of ``max_decode_checks`` images and pseudo-maps (values only
    ``0..C`` and 255; a warning for each non-crowd point whose pixel is
    neither its class ``label + 1`` nor 255, the first 10 listed).
    Pseudo-maps are checked only when the pipeline loads them
    (``LoadP2SegAnnotations(with_seg=True)``). Out of ``test_mode``, images
    upsampled more than 2x by the pipeline's resize step are a warning
    (:func:`~p2seg_mm.datasets.config_checks.check_train_scale`). The
    pipeline's ``LoadP2SegAnnotations`` and ``GenerateS2ITargets`` get
    ``num_classes=len(classes)`` (another value raises), so a map outside
    the checked sample still fails with its path when it is first loaded.

    Args:
        check_files (bool): Check the image and pseudo-map files when the
            dataset is built. Defaults to True.
        max_decode_checks (int, optional): Images (and pseudo-maps) decoded
            in full by those checks, evenly spread over the dataset; None
            decodes all. Defaults to 1000.
        **kwargs: Those of mmdet ``CocoDataset``.
    """

    def __init__(self,
                 *args,
                 check_files: bool = True,
                 max_decode_checks: Optional[int] = 1000,
                 **kwargs) -> None:
        self.check_files = check_files
        self.max_decode_checks = max_decode_checks
        metainfo = kwargs.get('metainfo') or {}
        classes = metainfo.get('classes', self.METAINFO['classes'])
        self._loads_seg = False
        self._image_loader = image_loader_of(kwargs.get('pipeline'))
        self._pipeline_cfg = kwargs.get('pipeline')
        if isinstance(kwargs.get('pipeline'), (list, tuple)):
            kwargs['pipeline'], self._loads_seg = _with_num_classes(
                kwargs['pipeline'], len(classes))
        super().__init__(*args, **kwargs)

    def load_data_list(self) -> List[dict]:
        """Load and check the json, map categories to labels, parse every
        image and check the files (see the class docstring).

        Returns:
            list[dict]: One parsed ``data_info`` per image of the json.

        Raises:
            DataCheckError: Listing every structural or file problem.
        """
        with get_local_path(
                self.ann_file, backend_args=self.backend_args) as local_path:
            self.coco = self.COCOAPI(local_path)
        problems = check_coco_structure(self.coco.dataset, self.ann_file)
        if errors_of(problems):
            raise DataCheckError(problems, self.ann_file)
        self._init_categories()
        self.cat_img_map = dict(self.coco.cat_img_map)

        data_list, points = [], []
        for img_id in self.coco.get_img_ids():
            raw_img_info = dict(self.coco.load_imgs([img_id])[0])
            raw_img_info['img_id'] = img_id
            ann_ids = self.coco.get_ann_ids(img_ids=[img_id])
            raw_ann_info = self.coco.load_anns(ann_ids)
            data_list.append(
                self.parse_data_info({
                    'raw_ann_info': raw_ann_info,
                    'raw_img_info': raw_img_info
                }))
            if self.check_files:  # the points on the pseudo-maps
                points.append(
                    point_records(raw_ann_info, self.cat2label,
                                  data_list[-1]['height'],
                                  data_list[-1]['width']))
        del self.coco
        problems = []
        if not self.test_mode:
            # no file needed: the json sizes against the pipeline's scale
            problems += check_train_scale(data_list, self._pipeline_cfg,
                                          self.ann_file)
        if self.check_files:
            problems += self._check_files(
                [dict(info, points=p) for info, p in zip(data_list, points)])
        self._report(problems)
        return data_list

    def _check_files(self, data_list: List[dict]) -> List[DataProblem]:
        """The problems of the image and pseudo-map files (and of the
        points on the decoded pseudo-maps)."""
        return check_data_files(
            data_list,
            self.ann_file,
            num_classes=len(self.metainfo['classes']),
            check_seg=self._loads_seg,
            max_decode=self.max_decode_checks,
            backend_args=self.backend_args,
            loader=self._image_loader,
            classes=self.metainfo['classes'])

    def _report(self, problems: List[DataProblem]) -> None:
        """Log the first warnings; raise on any error."""
        warnings = [p for p in problems if p.level == 'warning']
        for problem in warnings[:10]:
            print_log(problem.message, logger='current',
                      level=logging.WARNING)
        if len(warnings) > 10:
            print_log(
                f'{self.ann_file}: {len(warnings) - 10} more data warnings; '
                'run tools/analysis_tools/check_dataset.py CONFIG to list '
                'them.',
                logger='current',
                level=logging.WARNING)
        if errors_of(problems):
            raise DataCheckError(problems, self.ann_file)

    def _init_categories(self) -> None:
        """Set ``cat_ids`` and ``cat2label`` from ``metainfo['classes']``
        (by name, json order checked: :func:`category_to_label`)."""
        self.cat2label = category_to_label(
            self.coco.dataset.get('categories', []),
            list(self.metainfo['classes']), self.ann_file)
        self.cat_ids = list(self.cat2label)

    def parse_data_info(self, raw_data_info: dict) -> dict:
        """Parse one image and its point annotations.

        Args:
            raw_data_info (dict): ``raw_img_info`` (json image entry plus
                ``img_id``) and ``raw_ann_info`` (its annotations).

        Returns:
            dict: The ``data_info`` described in the class docstring.
        """
        img_info = raw_data_info['raw_img_info']
        img_id = img_info['img_id']
        file_name = img_info.get('file_name')
        where = f'{self.ann_file}: image id {img_id} ({file_name!r})'
        if not file_name:
            raise ValueError(f'{where} has no "file_name". Fix: add it.')
        width, height = img_info.get('width'), img_info.get('height')
        if not (is_number(width) and is_number(height)) or min(
                width, height) <= 0:
            raise ValueError(
                f'{where} has no valid "width"/"height" (got {width!r}, '
                f'{height!r}). Fix: write the image size in the json.')

        img_prefix = self.data_prefix.get('img',
                                          self.data_prefix.get('img_path', ''))
        img_path = osp.join(img_prefix, file_name)
        if not exists(img_path, backend_args=self.backend_args):
            raise FileNotFoundError(
                f'{where}: image file {img_path} does not exist. Fix: check '
                'data_root and data_prefix["img"].')
        seg_map_path = None
        if self.data_prefix.get('seg', None):
            seg_map_path = osp.join(
                self.data_prefix['seg'],
                file_name.rsplit('.', 1)[0] + self.seg_map_suffix)

        instances = []
        for ann in raw_data_info['raw_ann_info']:
            if ann.get('ignore', False):
                continue
            instances.append(self._parse_point_ann(ann, where, width, height))
        return dict(
            img_path=img_path,
            img_id=img_id,
            seg_map_path=seg_map_path,
            height=height,
            width=width,
            instances=instances)

    def _parse_point_ann(self, ann: dict, where: str, width: Real,
                         height: Real) -> dict:
        """Validate one annotation and turn it into an instance dict."""
        where = f'{where}, annotation id {ann.get("id")}'
        reason = point_problem(ann, height, width)
        if reason is not None:
            raise ValueError(f'{where}: {reason}')
        x, y = float(ann['point'][0]), float(ann['point'][1])
        reason = category_problem(ann, self.cat2label,
                                  self.metainfo['classes'])
        if reason is not None:
            raise ValueError(f'{where}: {reason}')
        return dict(
            point=[x, y],
            bbox_label=self.cat2label[ann['category_id']],
            ignore_flag=1 if ann.get('iscrowd', False) else 0)

    def filter_data(self) -> List[dict]:
        """Drop images without points (training only) and small images.

        ``filter_cfg`` keys: ``filter_empty_gt`` (drop images without a
        non-ignored point) and ``min_size`` (drop images whose shorter side
        is smaller). Nothing is filtered in ``test_mode``.

        Returns:
            list[dict]: The kept ``data_info`` dicts.
        """
        if self.test_mode or self.filter_cfg is None:
            return self.data_list
        filter_empty_gt = self.filter_cfg.get('filter_empty_gt', False)
        min_size = self.filter_cfg.get('min_size', 0)
        valid, num_empty, num_small = [], 0, 0
        for data_info in self.data_list:
            if filter_empty_gt and not any(not inst['ignore_flag']
                                           for inst in data_info['instances']):
                num_empty += 1
                continue
            if min(data_info['width'], data_info['height']) < min_size:
                num_small += 1
                continue
            valid.append(data_info)
        if num_empty or num_small:
            print_log(
                f'{self.ann_file}: filtered out {num_empty} images without '
                f'points and {num_small} images smaller than {min_size} px '
                f'(filter_cfg={self.filter_cfg}); {len(valid)} images '
                'remain.',
                logger='current',
                level=logging.WARNING)
        if not valid:
            raise ValueError(
                f'{self.ann_file}: no image is left after filtering '
                f'({len(self.data_list)} images, filter_cfg='
                f'{self.filter_cfg}). Training images need at least one '
                'non-crowd point; check the annotations and filter_cfg.')
        return valid


#: Transforms whose ``num_classes`` is the dataset's class count.
CLASS_COUNT_TRANSFORMS = ('LoadP2SegAnnotations', 'GenerateS2ITargets')


def _with_num_classes(pipeline: list, num_classes: int) -> tuple:
    """Copy of ``pipeline`` whose class-counting transforms
    (:data:`CLASS_COUNT_TRANSFORMS`) get ``num_classes`` (one source: the
    dataset's ``metainfo['classes']``); and whether a transform loads
    pseudo-maps.

    Returns:
        tuple[list, bool]: The pipeline and whether it loads pseudo-maps
        (non-dict transforms are assumed not to).

    Raises:
        ValueError: A transform states another ``num_classes``.
    """
    out, loads_seg = [], False
    for transform in pipeline:
        name = str(transform.get('type', '')).split('.')[-1] \
            if isinstance(transform, dict) else ''
        if name == 'LoadP2SegAnnotations' and transform.get('with_seg', True):
            loads_seg = True
        if name in CLASS_COUNT_TRANSFORMS:
            given = transform.get('num_classes')
            if given is not None and int(given) != num_classes:
                raise ValueError(
                    f'{name}(num_classes={given}) but the dataset has '
                    f"{num_classes} classes (metainfo['classes']). Fix: "
                    'drop num_classes from the transform; the dataset sets '
                    'it from its classes.')
            transform = dict(transform, num_classes=num_classes)
        out.append(transform)
    return out, loads_seg
