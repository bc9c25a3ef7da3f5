# Copyright (c) p2seg_mm contributors. All rights reserved.
from .pseudo_mask_dumper import PseudoMaskDumper, load_done_image_ids
from .voc_instance_metric import VOCInstanceMetric

__all__ = ['PseudoMaskDumper', 'load_done_image_ids', 'VOCInstanceMetric']
