# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Packaging for p2seg_mm; dependency pins live in ``requirements/``."""
import os.path as osp
import re

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def parse_requirements(fname: str) -> list:
    """Read one requirements file, skipping comments and blank lines."""
    reqs = []
    with open(osp.join(HERE, 'requirements', fname)) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if line and not line.startswith('-'):
                reqs.append(line)
    return reqs


def get_version() -> str:
    with open(osp.join(HERE, 'p2seg_mm', 'version.py')) as f:
        return re.search(r"__version__ = '([^']+)'", f.read()).group(1)


setup(
    name='p2seg_mm',
    version=get_version(),
    description='P2Seg point-supervised instance segmentation '
    'as an MMDetection 3.x plugin',
    long_description=open(osp.join(HERE, 'README.md')).read(),
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('configs', 'tools', 'tests',
                                    'benchmarks')),
    python_requires='>=3.8',
    license='MIT',
    install_requires=parse_requirements('torch.txt') +
    parse_requirements('mminstall.txt') + parse_requirements('runtime.txt'),
    extras_require={
        'tests': parse_requirements('tests.txt'),
        'optional': parse_requirements('optional.txt'),
        'build': parse_requirements('build.txt'),
    },
    zip_safe=False)
