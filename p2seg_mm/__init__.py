# Copyright (c) p2seg_mm contributors. All rights reserved.
"""p2seg_mm: P2Seg (ICLR 2024) as an MMDetection 3.x plugin.

Importing this package registers every dataset, transform, model, metric
and hook into MMDetection's registries, so configs only need
``custom_imports = dict(imports=['p2seg_mm'], allow_failed_imports=False)``.
"""
from . import utils  # noqa: F401  (patches first: checkpoint loading)
from . import datasets, engine, evaluation, models, visualization  # noqa: F401
from .version import __version__

__all__ = ['__version__']
