# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Shared test probe: the largest tensor any aten op produces."""
import torch
from torch.utils._python_dispatch import TorchDispatchMode


class LargestTensor(TorchDispatchMode):
    """Record the largest tensor any aten op produces (``max_numel``)."""

    def __init__(self):
        super().__init__()
        self.max_numel = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        flat = out if isinstance(out, (tuple, list)) else [out]
        for item in flat:
            if isinstance(item, torch.Tensor):
                self.max_numel = max(self.max_numel, item.numel())
        return out
