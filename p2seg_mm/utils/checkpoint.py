# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Let ``torch >= 2.6`` load mmengine training checkpoints.

Since torch 2.6, ``torch.load`` defaults to ``weights_only=True`` and only
rebuilds tensors, containers and allow-listed globals. mmengine 0.10.7
calls ``torch.load`` without ``weights_only`` and its full checkpoints
(``iter_*.pth`` / ``epoch_*.pth`` / ``best_*.pth``) hold more than tensors:

- ``message_hub.log_scalars``: ``HistoryBuffer`` objects with ``np.ndarray``
  histories and their statistics methods (``HistoryBuffer.min`` ...,
  pickled as ``getattr(HistoryBuffer, 'min')``);
- ``message_hub.runtime_info`` and ``meta``: numpy scalars (validation
  metrics, best scores) and ``ConfigDict`` values of the dataset metainfo.

So ``--resume`` and ``load_from`` of our own checkpoints fail with
``UnpicklingError``. :func:`register_checkpoint_safe_globals` allow-lists
exactly those globals (found by saving a 2-iteration ``Runner`` checkpoint
and calling ``torch.serialization.get_unsafe_globals_in_checkpoint``), and
keeps ``weights_only=True`` for everything else. ``builtins.getattr`` is not
allow-listed as such: a restricted replacement that only returns statistics
methods of ``HistoryBuffer`` is registered under its name.
"""
import pickle
from typing import Any, Callable, List, Tuple, Union

import numpy as np
import torch

SafeGlobal = Union[Callable, Tuple[Callable, str]]

# Statistics methods mmengine's ``HistoryBuffer`` always registers.
_DEFAULT_STATISTICS = ('min', 'max', 'current', 'mean')

_registered = False


def _numpy_core_multiarray() -> Any:
    """Return numpy's ``multiarray`` module (``numpy._core`` in numpy 2)."""
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray
    return multiarray


def history_buffer_getattr(obj: Any, name: str) -> Callable:
    """Restricted ``getattr`` used to unpickle ``HistoryBuffer`` state.

    Pickle protocol 2 stores ``HistoryBuffer.min`` (a function whose
    qualified name contains a dot) as ``getattr(HistoryBuffer, 'min')``.
    This replacement only answers that question, so allow-listing it does
    not open arbitrary attribute access to the checkpoint.

    Args:
        obj (Any): Must be the ``HistoryBuffer`` class.
        name (str): A registered statistics method of ``HistoryBuffer``.

    Returns:
        Callable: ``HistoryBuffer.<name>``.

    Raises:
        pickle.UnpicklingError: For any other object or attribute.
    """
    from mmengine.logging import HistoryBuffer
    allowed = set(_DEFAULT_STATISTICS) | set(HistoryBuffer._statistics_methods)
    if obj is not HistoryBuffer or name not in allowed:
        raise pickle.UnpicklingError(
            f'Checkpoint asks for getattr({obj!r}, {name!r}); p2seg_mm only '
            'allows getattr(HistoryBuffer, <statistics method>) with '
            f'weights_only=True (allowed methods: {sorted(allowed)}). Load '
            'the file with torch.load(..., weights_only=False) only if you '
            'trust it.')
    return getattr(HistoryBuffer, name)


def _numpy_dtype_classes() -> List[type]:
    """Return numpy's concrete dtype classes (``numpy.dtypes.*DType``).

    Unpickling a dtype calls ``numpy.dtype(...)`` and then sets its state on
    an instance of the concrete class (e.g. ``Float64DType``), which torch's
    unpickler only does for allow-listed types.
    """
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is None:  # numpy < 1.25 has a single dtype class
        return []
    classes: List[type] = []
    for name in dir(dtypes):
        cls = getattr(dtypes, name)
        # Object arrays stay refused: their items are arbitrary objects.
        if (isinstance(cls, type) and issubclass(cls, np.dtype)
                and name.endswith('DType') and name != 'ObjectDType'
                and cls not in classes):  # aliases, e.g. LongDType
            classes.append(cls)
    return classes


def get_checkpoint_safe_globals() -> List[SafeGlobal]:
    """List the globals mmengine training checkpoints need.

    Returns:
        list: Callables and ``(callable, 'module.name')`` pairs accepted by
        ``torch.serialization.add_safe_globals``. Paired names let
        checkpoints pickled under numpy 1.x (``numpy.core.multiarray``) load
        under numpy 2.x and vice versa.
    """
    from mmengine.config import ConfigDict
    from mmengine.logging import HistoryBuffer

    multiarray = _numpy_core_multiarray()
    safe: List[SafeGlobal] = [
        np.ndarray,
        np.dtype,
        ConfigDict,
        HistoryBuffer,
        (history_buffer_getattr, 'builtins.getattr'),
    ]
    for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        safe.append((multiarray._reconstruct, f'{module}._reconstruct'))
        safe.append((multiarray.scalar, f'{module}.scalar'))
    safe.extend(_numpy_dtype_classes())
    return safe


def register_checkpoint_safe_globals() -> bool:
    """Allow-list the globals of mmengine checkpoints for ``torch.load``.

    Called once at ``import p2seg_mm``; later calls do nothing. Does nothing
    on torch versions without ``torch.serialization.add_safe_globals``
    (< 2.4), which load with ``weights_only=False`` anyway.

    Returns:
        bool: True if the globals are registered (now or before).
    """
    global _registered
    if _registered:
        return True
    add_safe_globals = getattr(torch.serialization, 'add_safe_globals', None)
    if add_safe_globals is None:
        return False
    add_safe_globals(get_checkpoint_safe_globals())
    _registered = True
    return True
