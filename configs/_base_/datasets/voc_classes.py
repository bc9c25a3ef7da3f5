# Copyright (c) p2seg_mm contributors. All rights reserved.
# PASCAL VOC's 20 classes, the one place they are written: label i is the
# json category named classes[i] (datasets check the names and their order).
# Inherited by the stage-A VOC dataset (voc_instance_point.py) and the VOC
# second stage (voc_p2seg_pseudo.py). Leaves size their heads with
# num_classes (e.g. semantic_head=dict(num_classes=_base_.num_classes)).
metainfo = dict(
    classes=('aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car',
             'cat', 'chair', 'cow', 'diningtable', 'dog', 'horse', 'motorbike',
             'person', 'pottedplant', 'sheep', 'sofa', 'train', 'tvmonitor'))
num_classes = len(metainfo['classes'])
