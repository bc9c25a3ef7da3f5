# Copyright (c) p2seg_mm contributors. All rights reserved.
from .checkpoint import (get_checkpoint_safe_globals, history_buffer_getattr,
                         register_checkpoint_safe_globals)

# torch >= 2.6 loads with weights_only=True: allow-list what mmengine's
# training checkpoints hold (numpy, ConfigDict, HistoryBuffer) so --resume and
# load_from work as soon as p2seg_mm is imported.
register_checkpoint_safe_globals()

__all__ = [
    'get_checkpoint_safe_globals', 'history_buffer_getattr',
    'register_checkpoint_safe_globals'
]
