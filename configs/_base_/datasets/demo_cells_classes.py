# Copyright (c) p2seg_mm contributors. All rights reserved.
# The demo cells' 2 classes, the one place they are written: label i is the
# json category named classes[i] (datasets check the names and their order).
# Inherited by the stage-A demo dataset (demo_cells_point.py) and the demo
# second stage. Leaves size their heads with num_classes (e.g.
# semantic_head=dict(num_classes=_base_.num_classes)).
metainfo = dict(classes=('ecoli', 'hela_nucleus'))
num_classes = len(metainfo['classes'])
