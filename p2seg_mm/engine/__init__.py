# Copyright (c) p2seg_mm contributors. All rights reserved.
from . import hooks  # noqa: F401
