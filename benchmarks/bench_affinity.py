# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Benchmark the affinity part of a P2Seg training step: dense, block-wise,
and block-wise fused (losses and walk sharing their passes).

For one image at stride 4 (N = (crop / 4)^2 pixels), with E (256, N)
requiring grad, one step is::

    loss_aff(E, T1: 3 classes) + loss_aff(E, T2: 8 instances)
    + sum(w * random_walk(E, softmax(logits over 4 channels)))

forward + backward. ``dense`` materialises A = sigmoid(E^T E), ``block``
streams each loss and the walk in its own passes, ``fused`` runs all three in
one :func:`affinity_step_blockwise` (the path the model trains with).
Every (method, crop) runs in a fresh child process
(this script with ``--child``) whose address space is limited with
``RLIMIT_AS`` to its size after set-up plus ``--budget-gib``. Peak memory is
the child's ``VmHWM`` minus its ``VmRSS`` after imports and input set-up.
Dense runs whose estimated need (9 * N^2 * 4 bytes, measured) exceeds the
budget are not attempted. Time is the median of ``--repeats`` steps after
``--warmup`` steps; the process CPU time is reported too.

Example::

    python benchmarks/bench_affinity.py --crops 320 416 512 --threads 1
    python benchmarks/bench_affinity.py --crops 1024 --methods block fused \
        --repeats 1 --warmup 0 --threads 1
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

from _machine import cpu_model, proc_status_kib

GIB = 1024**3
MIB = 1024**2


def _estimate_bytes(method, num, dim, block_size):
    if method == 'dense':  # measured: 8.6-8.8 N^2 floats at 320-512 crops
        return 9 * num * num * 4
    return (4 * min(block_size, num) * num + 8 * dim * num) * 4


def _make_inputs(torch, crop, dim, dtype):
    """Synthetic stride-4 targets: 8 discs of 3 classes, 2 touching pairs."""
    side = crop // 4
    num = side * side
    gen = torch.Generator().manual_seed(0)
    embed = (0.05 * torch.randn(dim, num, generator=gen, dtype=dtype))
    ys, xs = torch.meshgrid(
        torch.arange(side), torch.arange(side), indexing='ij')
    centres = torch.rand(8, 2, generator=gen) * 0.7 + 0.15
    centres[1] = centres[0] + torch.tensor([0.12, 0.0])  # touching pairs
    centres[4] = centres[3] + torch.tensor([0.0, 0.12])
    radius = 0.07 * side
    labels = [0, 0, 1, 1, 1, 2, 2, 0]
    ids = torch.zeros(side, side, dtype=torch.long)
    sem = torch.zeros(3, side, side, dtype=torch.bool)
    for k, (cy, cx) in enumerate(centres.tolist()):
        disc = (ys - cy * side)**2 + (xs - cx * side)**2 <= radius**2
        ids[disc] = k + 1
        # a slightly dilated class mask: cells on shared borders overlap
        sem[labels[k]] |= (ys - cy * side)**2 + (xs - cx * side)**2 <= (
            radius + 1.5)**2
    inst = ids.view(1, -1) == torch.arange(1, 9).view(-1, 1)
    logits = torch.randn(4, num, generator=gen, dtype=dtype)
    weight = torch.randn(4, num, generator=gen, dtype=dtype)
    return embed, sem.view(3, -1), inst, logits, weight


def run_child(args):
    import torch
    from p2seg_mm.models.layers.affinity_reference import (
        affinity_loss_blockwise_eager, affinity_loss_dense, random_walk_dense)
    from p2seg_mm.models.layers.blockwise_affinity_step import (
        affinity_step_blockwise, random_walk_blockwise)
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = torch.float32
    embed, sem, inst, logits, weight = _make_inputs(torch, args.crop, args.dim,
                                                    dtype)
    embed.requires_grad_()
    logits.requires_grad_()
    if args.child == 'dense':
        loss_fn, walk_fn = affinity_loss_dense, random_walk_dense
    else:
        bs = args.block_size

        def loss_fn(e, m):
            return affinity_loss_blockwise_eager(e, m, block_size=bs)

        def walk_fn(e, p):
            return random_walk_blockwise(e, p, block_size=bs)

    def step():
        prob = torch.softmax(logits, dim=0)
        if args.child == 'fused':
            losses, walked = affinity_step_blockwise(embed, prob, [sem, inst],
                                                     args.block_size)
            total = losses.sum() + (walked * weight).sum()
        else:
            total = (
                loss_fn(embed, sem) + loss_fn(embed, inst) +
                (walk_fn(embed, prob) * weight).sum())
        total.backward()
        value = total.item()
        embed.grad = None
        logits.grad = None
        return value

    base_rss = proc_status_kib('VmRSS') * 1024
    limit = proc_status_kib('VmSize') * 1024 + int(args.budget_gib * GIB)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    times, cpu_times = [], []
    value = None
    for i in range(args.warmup + args.repeats):
        start, cpu_start = time.perf_counter(), time.process_time()
        value = step()
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu_start)
    peak = proc_status_kib('VmHWM') * 1024
    print(
        json.dumps(
            dict(
                time=statistics.median(times),
                times=times,
                cpu_time=statistics.median(cpu_times),
                peak_mib=(peak - base_rss) / MIB,
                value=value,
                threads=torch.get_num_threads())))


def _run_one(args, method, crop):
    num = (crop // 4)**2
    need = _estimate_bytes(method, num, args.dim, args.block_size)
    if need > args.budget_gib * GIB:
        return dict(skip=f'OOM (needs ~{need / GIB:.1f} GiB)')
    cmd = [
        sys.executable,
        os.path.abspath(__file__), '--child', method, '--crop',
        str(crop), '--block-size',
        str(args.block_size), '--repeats',
        str(args.repeats), '--warmup',
        str(args.warmup), '--budget-gib',
        str(args.budget_gib), '--dim',
        str(args.dim), '--threads',
        str(args.threads)
    ]
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env['PYTHONPATH'] = root + os.pathsep + env.get('PYTHONPATH', '')
    try:
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            env=env,
            timeout=args.child_timeout)
    except subprocess.TimeoutExpired:
        return dict(skip=f'timeout (> {args.child_timeout} s)')
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        err = proc.stderr.strip().splitlines()
        msg = err[-1] if err else f'exit {proc.returncode}'
        if 'memory' in msg.lower() or 'alloc' in msg.lower():
            return dict(skip=f'OOM (failed: needs > {args.budget_gib} GiB)')
        return dict(skip=f'failed: {msg[:80]}')
    return json.loads(lines[-1])


def _fmt_time(res):
    return f'{res["time"]:.3f} s' if 'time' in res else res['skip']


def _fmt_mem(res):
    return f'{res["peak_mib"]:.0f}' if 'peak_mib' in res else '-'


def _ratio(res, ref, key, scale=1.0, fmt='{:.2f}x'):
    if key in res and key in ref:
        return fmt.format(scale * res[key] / ref[key])
    return '-'


def run_parent(args):
    import torch
    threads = args.threads or torch.get_num_threads()
    lines = [
        '# Affinity part of a training step: dense vs block-wise vs fused',
        '', f'Machine: {cpu_model()}, {os.cpu_count()} cores, '
        f'torch {torch.__version__}, {threads} threads, fp32, D={args.dim}, '
        f'block_size={args.block_size}, budget {args.budget_gib} GiB, '
        f'median of {args.repeats} (warm-up {args.warmup}).', '',
        'Step: loss(T1, 3 classes) + loss(T2, 8 instances) + '
        'sum(w * random_walk(4 channels)), forward + backward, one image. '
        'Peak = child VmHWM - VmRSS after set-up. Ratios are against dense '
        'and block of the same crop and run; the CPU-time ratio (process '
        'CPU seconds) is less sensitive to other load than wall time.', '',
        '| crop | N | method | time | CPU time | peak MiB | time / dense | '
        'time / block | CPU / block | peak / dense | value rel. diff |',
        '|---|---|---|---|---|---|---|---|---|---|---|'
    ]
    print('\n'.join(lines), flush=True)
    for crop in args.crops:
        num = (crop // 4)**2
        res = {m: _run_one(args, m, crop) for m in args.methods}
        dense = res.get('dense', {})
        block = res.get('block', {})
        for method in args.methods:
            cur = res[method]
            rel = '-'
            for ref in (dense, block):
                if 'value' in cur and 'value' in ref and ref is not cur:
                    diff = abs(cur['value'] - ref['value'])
                    rel = f'{diff / abs(ref["value"]):.1e}'
                    break
            cpu = f'{cur["cpu_time"]:.3f} s' if 'cpu_time' in cur else '-'
            row = (f'| {crop}² | {num} | {method} | {_fmt_time(cur)} | '
                   f'{cpu} | {_fmt_mem(cur)} | '
                   f'{_ratio(cur, dense, "time")} | '
                   f'{_ratio(cur, block, "time")} | '
                   f'{_ratio(cur, block, "cpu_time")} | '
                   f'{_ratio(cur, dense, "peak_mib", 100, "{:.1f} %")} | '
                   f'{rel} |')
            lines.append(row)
            print(row, flush=True)
    if args.out:
        with open(args.out, 'w') as f:
            f.write('\n'.join(lines) + '\n')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--crops', type=int, nargs='+', default=[320, 416, 512, 640, 1024])
    parser.add_argument('--block-size', type=int, default=512)
    parser.add_argument(
        '--methods',
        nargs='+',
        choices=['dense', 'block', 'fused'],
        default=['dense', 'block', 'fused'])
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--budget-gib', type=float, default=16.0)
    parser.add_argument('--dim', type=int, default=256)
    parser.add_argument(
        '--threads', type=int, default=0, help='0: torch default')
    parser.add_argument(
        '--child-timeout',
        type=float,
        default=1800.0,
        help='seconds before a run is abandoned')
    parser.add_argument('--out', default='', help='write the table here')
    parser.add_argument(
        '--child',
        choices=['dense', 'block', 'fused'],
        help='internal: one run')
    parser.add_argument('--crop', type=int, help='internal: crop of --child')
    return parser.parse_args()


if __name__ == '__main__':
    cli_args = parse_args()
    if cli_args.child:
        run_child(cli_args)
    else:
        run_parent(cli_args)
