# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Load a script of ``tools/`` (or ``benchmarks/``) as a module, as ``python
tools/...`` runs it.

A script imports the helper modules next to it (``tools/dataset_converters/
demo_cells.py``, ``tools/pipeline_stages.py``, ...) by their plain names,
because Python puts a script's own folder on ``sys.path``. :func:`load_tool`
does the same for the script's folder (appended, so nothing of the standard
library or the environment is shadowed) and runs the script under a name of
its own (its ``main()`` does not run).
"""
import importlib.util
import os.path as osp
import sys
from types import ModuleType
from typing import Optional

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def tool_path(path: str) -> str:
    """Absolute path of ``path`` (relative to the repository root, e.g.
    ``'tools/dataset_converters/import_points.py'``)."""
    return osp.join(REPO, path)


def add_tool_dir(path: str) -> str:
    """Put the folder of the script ``path`` on ``sys.path``; return it."""
    folder = osp.dirname(tool_path(path))
    if folder not in sys.path:
        sys.path.append(folder)
    return folder


def load_tool(path: str, name: Optional[str] = None) -> ModuleType:
    """A fresh module of the script ``path`` (relative to the repository
    root), its folder on ``sys.path`` for its sibling imports.

    Args:
        path (str): e.g. ``'tools/run_pipeline.py'``.
        name (str, optional): Module name. Defaults to ``p2seg_`` + the
            path with ``/`` and ``.`` as ``_``.
    """
    add_tool_dir(path)
    name = name or 'p2seg_' + osp.splitext(path)[0].replace('/', '_').replace(
        '.', '_')
    spec = importlib.util.spec_from_file_location(name, tool_path(path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
