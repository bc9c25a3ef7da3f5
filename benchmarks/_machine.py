# Copyright (c) p2seg_mm contributors. All rights reserved.
"""What the benchmarks read about the machine and their own process."""
import platform


def proc_status_kib(key: str) -> int:
    """A ``/proc/self/status`` field in KiB (e.g. VmRSS, VmHWM, VmSize)."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1])
    raise RuntimeError(f'{key} not found in /proc/self/status')


def cpu_model() -> str:
    """The CPU's model name, for the header of a results table."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or 'unknown CPU'
