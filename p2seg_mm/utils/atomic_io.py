# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Atomic file output: a reader (or a killed run) never sees half a file.

Every writer of the project (jsons, PNG overlays, checkpoints converted
offline) goes through :func:`atomic_open`: the data is written to a hidden
temporary file in the target folder, flushed to disk, given the usual
permissions and renamed over the target with ``os.replace`` (atomic on
POSIX and Windows within one file system).
"""
import contextlib
import json
import os
import os.path as osp
import tempfile
from typing import IO, Iterator, Optional


@contextlib.contextmanager
def atomic_open(path: str, mode: str = 'wb', fsync: bool = True,
                **kwargs) -> Iterator[IO]:
    """Open a temporary file that replaces ``path`` when the block exits.

    Parent directories are created. If the block raises, the temporary
    file is removed and ``path`` is left as it was.

    Args:
        path (str): Final file path.
        mode (str): ``'wb'`` or ``'w'`` (text; ``kwargs`` go to ``open``,
            e.g. ``encoding``). Defaults to 'wb'.
        fsync (bool): Flush to disk before the rename. Defaults to True.

    Yields:
        IO: The open temporary file.
    """
    if mode not in ('w', 'wb'):
        raise ValueError(f"atomic_open writes whole files: mode must be 'w' "
                         f"or 'wb', got {mode!r}.")
    path = osp.abspath(path)
    folder = osp.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix='.' + osp.basename(path) + '.', suffix='.tmp', dir=folder)
    try:
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates files 0600
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def write_bytes_atomic(data: bytes, path: str) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_open`)."""
    with atomic_open(path, 'wb') as f:
        f.write(data)


def dump_json_atomic(obj: object,
                     path: str,
                     indent: Optional[int] = None) -> None:
    """Write ``obj`` as json (UTF-8) to ``path`` atomically."""
    with atomic_open(path, 'w', encoding='utf-8') as f:
        json.dump(obj, f, indent=indent)
