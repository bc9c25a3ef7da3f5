# Copyright (c) p2seg_mm contributors. All rights reserved.
from . import (data_preprocessors, dense_heads, detectors, layers,  # noqa
               losses, necks, post_processing, seg_heads, task_modules)
