# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Pipeline step that makes the static S2I targets (docs/method.md §3.2)."""
from typing import Optional

import numpy as np
from mmcv.transforms import BaseTransform

from mmdet.registry import TRANSFORMS
from p2seg_mm.models.task_modules.geodesic_grouping import (
    DEFAULT_EDGE_WEIGHT, check_edge_weight)
from p2seg_mm.models.task_modules.target_generators.static_s2i import (
    GROUPINGS, OFFSET_TARGETS, make_center_heatmap, make_static_offsets)


@TRANSFORMS.register_module()
class GenerateS2ITargets(BaseTransform):
    """Make the centre heatmap and static offset targets of P2Seg.

    Implementation of the static S2I targets of `P2Seg
    <https://arxiv.org/abs/2401.09709>`_. They depend only on the
    annotations, so they are made on the CPU here, after every geometric
    transform (crop, flip, resize). Only non-ignored points are used: crowd
    points and points that left the image carry ``gt_ignore_flags=True``.

    Required Keys:

    - gt_points (np.float32) (N, 2), (x, y)
    - gt_points_labels (np.int64) (N,)
    - gt_ignore_flags (bool) (N,) (optional, all False if absent)
    - gt_seg_map (np.uint8) (H, W)
    - img_shape
    - img (H, W, 3), 0-255 (only with ``grouping='geodesic'``)

    Added Keys:

    - gt_center_heatmap (np.float32) (C, H, W)
    - gt_offset (np.float32) (2, H, W), (dx, dy) to the target point
    - gt_offset_weight (np.float32) (1, H, W)

    Args:
        num_classes (int, optional): Number of foreground classes C. None
            (the dataset configs): ``CocoPointDataset`` sets it from its
            ``metainfo['classes']``. Defaults to None.
        sigma (float): Gaussian sigma of the centre heatmap in pixels.
            Defaults to 6.0.
        min_area (int): Minimum component area for offset targets.
            Defaults to 50.
        dis_group (bool): Split multi-point components between their points
            by distance. Defaults to True.
        offset_to (str): Target of single-point components, ``'point'``
            (docs/method.md §0.2) or ``'centroid'`` (release). Defaults to
            'point'.
        grouping (str): How ``dis_group`` splits a component:
            ``'euclidean'`` (the paper: nearest point) or ``'geodesic'``
            (not in the paper: shortest path inside the component, steps
            across image edges cost more; docs/method.md §3.5). Defaults
            to 'euclidean'.
        edge_weight (float): Edge weight of ``'geodesic'``. Defaults to
            30.0 (``DEFAULT_EDGE_WEIGHT``).
    """

    def __init__(self,
                 num_classes: Optional[int] = None,
                 sigma: float = 6.0,
                 min_area: int = 50,
                 dis_group: bool = True,
                 offset_to: str = 'point',
                 grouping: str = 'euclidean',
                 edge_weight: float = DEFAULT_EDGE_WEIGHT) -> None:
        if num_classes is not None and num_classes < 1:
            raise ValueError(f'num_classes must be >= 1, got {num_classes}.')
        if sigma <= 0:
            raise ValueError(f'sigma must be > 0, got {sigma}.')
        if offset_to not in OFFSET_TARGETS:
            raise ValueError(f'offset_to must be one of {OFFSET_TARGETS}, '
                             f'got {offset_to!r}.')
        if grouping not in GROUPINGS:
            raise ValueError(f'grouping must be one of {GROUPINGS}, got '
                             f'{grouping!r}.')
        edge_weight = check_edge_weight(edge_weight)
        self.num_classes = num_classes
        self.sigma = sigma
        self.min_area = min_area
        self.dis_group = dis_group
        self.offset_to = offset_to
        self.grouping = grouping
        self.edge_weight = float(edge_weight)

    def transform(self, results: dict) -> Optional[dict]:
        """Add ``gt_center_heatmap``, ``gt_offset`` and ``gt_offset_weight``.

        Args:
            results (dict): Result dict of the pipeline.

        Returns:
            dict: The same dict with the three target keys added.
        """
        if self.num_classes is None:
            raise ValueError(
                'GenerateS2ITargets has no num_classes. Fix: use it in a '
                'CocoPointDataset pipeline (which sets it from '
                "metainfo['classes']) or give num_classes.")
        where = results.get('img_path', results.get('img_id', '<unknown>'))
        geodesic = self.grouping == 'geodesic' and self.dis_group
        for key in ('gt_points', 'gt_points_labels', 'gt_seg_map'):
            if results.get(key) is None:
                raise KeyError(f'GenerateS2ITargets needs results[{key!r}] '
                               f'(image {where}); load points with the '
                               'point loading transform and the semantic '
                               'map with seg=True before this step.')
        if geodesic and results.get('img') is None:
            raise KeyError(f"GenerateS2ITargets(grouping='geodesic') needs "
                           f"results['img'] (image {where}), 0-255 (H, W, "
                           '3): load the image first and keep this step '
                           'before PackP2SegInputs.')
        seg_map = np.asarray(results['gt_seg_map'])
        shape = tuple(results['img_shape'][:2])
        if seg_map.shape != shape:
            raise ValueError(f'gt_seg_map shape {seg_map.shape} differs from '
                             f'img_shape {shape} (image {where}); resize/crop '
                             'the semantic map together with the image.')
        points = np.asarray(
            results['gt_points'], dtype=np.float32).reshape(-1, 2)
        labels = np.asarray(
            results['gt_points_labels'], dtype=np.int64).reshape(-1)
        ignore = results.get('gt_ignore_flags')
        if ignore is None:
            ignore = np.zeros(len(points), dtype=bool)
        ignore = np.asarray(ignore, dtype=bool).reshape(-1)
        if not len(points) == len(labels) == len(ignore):
            raise ValueError(
                f'image {where}: gt_points ({len(points)}), gt_points_labels '
                f'({len(labels)}) and gt_ignore_flags ({len(ignore)}) must '
                'have the same length.')
        keep = ~ignore
        points, labels = points[keep], labels[keep]
        try:
            heatmap = make_center_heatmap(points, labels, self.num_classes,
                                          shape, self.sigma)
            offset, weight = make_static_offsets(
                seg_map,
                points,
                labels,
                min_area=self.min_area,
                dis_group=self.dis_group,
                offset_to=self.offset_to,
                grouping=self.grouping,
                image=results['img'] if geodesic else None,
                edge_weight=self.edge_weight)
        except ValueError as err:
            raise ValueError(f'image {where}: {err}') from err
        results['gt_center_heatmap'] = heatmap
        results['gt_offset'] = offset
        results['gt_offset_weight'] = weight
        return results

    def __repr__(self) -> str:
        repr_str = self.__class__.__name__
        repr_str += f'(num_classes={self.num_classes}, '
        repr_str += f'sigma={self.sigma}, '
        repr_str += f'min_area={self.min_area}, '
        repr_str += f'dis_group={self.dis_group}, '
        repr_str += f'offset_to={self.offset_to!r}, '
        repr_str += f'grouping={self.grouping!r}, '
        repr_str += f'edge_weight={self.edge_weight})'
        return repr_str
