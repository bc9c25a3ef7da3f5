# Copyright (c) p2seg_mm contributors. All rights reserved.
from . import metrics  # noqa: F401
