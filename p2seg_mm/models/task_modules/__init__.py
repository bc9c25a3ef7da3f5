# Copyright (c) p2seg_mm contributors. All rights reserved.
from . import target_generators  # noqa: F401
