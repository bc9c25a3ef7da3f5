# Copyright (c) p2seg_mm contributors. All rights reserved.
"""COCO-style dataset with one annotated point per instance.

Points are ``(x, y)`` in continuous pixel coordinates (pixel ``(i, j)``
covers ``[j, j + 1) x [i, i + 1)``), see ``docs/design.md``.
"""
import logging
import math
import os.path as osp
from collections import Counter
from numbers import Real
from typing import List

from mmengine.fileio import exists, get_local_path
from mmengine.logging import print_log

from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS


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
    """

    def load_data_list(self) -> List[dict]:
        """Load the json, map categories to labels and parse every image.

        Returns:
            list[dict]: One parsed ``data_info`` per image of the json.
        """
        with get_local_path(
                self.ann_file, backend_args=self.backend_args) as local_path:
            self.coco = self.COCOAPI(local_path)
        if not self.coco.dataset.get('images'):
            raise ValueError(
                f'{self.ann_file}: the json has no "images" (or an empty '
                'list). Fix: write one entry per image with "id", '
                '"file_name", "height" and "width".')
        self._init_categories()
        self.cat_img_map = dict(self.coco.cat_img_map)

        data_list, all_ann_ids = [], []
        for img_id in self.coco.get_img_ids():
            raw_img_info = dict(self.coco.load_imgs([img_id])[0])
            raw_img_info['img_id'] = img_id
            ann_ids = self.coco.get_ann_ids(img_ids=[img_id])
            all_ann_ids.extend(ann_ids)
            data_list.append(
                self.parse_data_info({
                    'raw_ann_info':
                    self.coco.load_anns(ann_ids),
                    'raw_img_info':
                    raw_img_info
                }))
        if len(set(all_ann_ids)) != len(all_ann_ids):
            repeated = sorted(i for i, n in Counter(all_ann_ids).items()
                              if n > 1)
            raise ValueError(
                f'{self.ann_file}: annotation ids {repeated[:10]} are used '
                'more than once. Fix: give every annotation a unique "id".')
        del self.coco
        return data_list

    def _init_categories(self) -> None:
        """Set ``cat_ids`` and ``cat2label`` from ``metainfo['classes']``."""
        classes = list(self.metainfo['classes'])
        cats = self.coco.dataset.get('categories', [])
        name2id = {cat['name']: cat['id'] for cat in cats}
        missing = [name for name in classes if name not in name2id]
        if missing:
            raise ValueError(
                f'{self.ann_file}: classes {missing} of the dataset metainfo '
                f'are not among the json categories {list(name2id)}. Fix: '
                'set metainfo=dict(classes=...) to the json category names.')
        # Same order as CocoMetric: the json's category order.
        self.cat_ids = self.coco.get_cat_ids(cat_names=classes)
        json_order = [cat['name'] for cat in cats if cat['name'] in classes]
        if json_order != classes:
            raise ValueError(
                f'{self.ann_file}: metainfo classes {classes} are not in the '
                f'order of the json categories {json_order}. Fix: list the '
                'classes in the json category order, so labels, class names '
                'and pseudo-map values agree.')
        self.cat2label = {cat_id: i for i, cat_id in enumerate(self.cat_ids)}

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
        if not (_is_number(width) and _is_number(height)) or min(
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
        if 'point' not in ann:
            raise ValueError(
                f'{where} has no "point". Fix: convert the json with a point '
                'per annotation ("point": [x, y] in image pixels).')
        point = ann['point']
        if not (isinstance(point, (list, tuple)) and len(point) == 2
                and all(_is_number(v) for v in point)):
            raise ValueError(
                f'{where}: "point" must be a list of 2 finite numbers [x, y], '
                f'got {point!r}. Fix the converter output.')
        x, y = float(point[0]), float(point[1])
        if not (0 <= x < width and 0 <= y < height):
            raise ValueError(
                f'{where}: point ({x}, {y}) lies outside the image of width '
                f'{width} and height {height} (need 0 <= x < width, '
                '0 <= y < height). Fix the point or the image size.')
        cat_id = ann.get('category_id')
        if cat_id not in self.cat2label:
            raise ValueError(
                f'{where}: category_id {cat_id!r} is not one of the dataset '
                f'categories {list(self.cat2label)} (metainfo classes '
                f'{list(self.metainfo["classes"])}). Fix the category_id or '
                'the metainfo classes.')
        return dict(
            point=[x, y],
            bbox_label=self.cat2label[cat_id],
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


def _is_number(value) -> bool:
    """Whether ``value`` is a finite real number (bools excluded)."""
    return (isinstance(value, Real) and not isinstance(value, bool)
            and math.isfinite(value))
