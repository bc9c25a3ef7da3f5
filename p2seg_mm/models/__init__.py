# Copyright (c) p2seg_mm contributors. All rights reserved.
from . import (data_preprocessors, dense_heads, detectors, layers, necks,  # noqa
               post_processing, task_modules)
