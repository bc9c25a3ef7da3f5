# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Benchmark P2Seg's training step and inference against the release (CPU).

Setup of docs/method.md §13: HRNet-W48 (random init), 20 classes, all switches
on (online S2I, I2S, T2), a synthetic crop with 8 objects of 3 classes (two
pairs of touching same-class objects), one point each, pseudo-map = the object
masks; static targets from ``GenerateS2ITargets``. A training step is forward
(incl. online S2I) + losses + backward + Adam step. Every measurement runs in a
fresh child process (this script with ``--child``) whose address space is
capped with ``RLIMIT_AS`` (``--limit-gib``); a run that does not fit is
reported as OOM. Peak = the child's VmHWM (process peak, as §13); "base" = its
RSS after the model and inputs are built. Times are medians of ``--repeats``
after ``--warmup``; the process CPU time is reported too.

On a shared machine, torch's default OpenMP threads spin at barriers when
another job holds a core, which inflates wall *and* CPU time many times;
``--threads 1`` then gives the CPU time one core needs (robust to load).

Example::

    python benchmarks/bench_train_step.py --out results.md
    python benchmarks/bench_train_step.py --quick        # 320/416 bs1 only
    python benchmarks/bench_train_step.py --threads 1 --train 416:1 \
        --warmup 0 --repeats 1 --cache raw.json   # one step, 1 thread
    python benchmarks/bench_train_step.py --from-cache --cache raw.json
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
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REL = '(docs/method.md §13, same machine type)'
# docs/method.md §13: (time s, peak GiB) of the release.
RELEASE_STEP = {(320, 1): (4.14, 3.59), (416, 1): (12.15, 7.09),
                (416, 2): (22.22, 10.57), (512, 1): (30.38, 13.73)}
RELEASE_NO_AFF = (1.47, 2.25)
RELEASE_STATIC_MS = {320: 4.1, 416: 6.8, 512: 12.9}
RELEASE_ONLINE_MS = {320: 85., 416: 136., 512: 207.}
RELEASE_INFER = dict(net='1.2–1.3 s', decode='0.162 s')
PROTOCOLS = []  # --from-cache: protocol of every reused measurement
INFER_HW = (375, 500)  # a 500x375 (W x H) VOC-like image


# ----------------------------------------------------------------- child
def make_crop(height, width, seed=0):
    """8 discs of 3 classes (pairs 0-1 and 3-4 touch), one point each.

    Returns:
        tuple: seg map (H, W) uint8 (0 bg, c + 1 class c), points (8, 2)
        float32 (x, y) at pixel centres, labels (8,) int64.
    """
    import numpy as np
    rng = np.random.default_rng(seed)
    side = min(height, width)
    rad = 0.09 * side
    # relative centres (y, x); 1 touches 0 and 4 touches 3 (distance 1.9 r)
    rel = [(0.25, 0.22), None, (0.22, 0.75), (0.62, 0.30), None,
           (0.80, 0.80), (0.50, 0.60), (0.85, 0.15)]
    labels = np.array([0, 0, 1, 1, 1, 2, 2, 0], dtype=np.int64)
    yy, xx = np.mgrid[:height, :width] + 0.5
    seg = np.zeros((height, width), dtype=np.uint8)
    points = []
    for k in range(8):
        if rel[k] is None:
            cy, cx = points[-1][1], points[-1][0]
            ang = rng.uniform(0, 2 * np.pi)
            cy, cx = cy + 1.9 * rad * np.sin(ang), cx + 1.9 * rad * np.cos(ang)
        else:
            cy, cx = rel[k][0] * height, rel[k][1] * width
        cy = float(np.clip(cy, rad, height - rad))
        cx = float(np.clip(cx, rad, width - rad))
        disc = (yy - cy)**2 + (xx - cx)**2 <= rad**2
        seg[disc & (seg == 0)] = labels[k] + 1
        points.append((np.floor(cx) + 0.5, np.floor(cy) + 0.5))
    return seg, np.array(points, dtype=np.float32), labels


def make_sample(height, width, seed, num_classes, with_targets=True):
    """Synthetic (uint8 image (3, H, W), DetDataSample) of one crop."""
    import numpy as np
    import torch
    from mmengine.structures import InstanceData, PixelData
    from mmdet.structures import DetDataSample
    from p2seg_mm.datasets.transforms.s2i_targets import GenerateS2ITargets
    seg, points, labels = make_crop(height, width, seed)
    sample = DetDataSample(metainfo=dict(
        img_id=f'synthetic_{seed}', img_shape=(height, width),
        ori_shape=(height, width), scale_factor=(1.0, 1.0)))
    sample.gt_instances = InstanceData(points=torch.from_numpy(points),
                                       labels=torch.from_numpy(labels))
    sample.ignored_instances = InstanceData(
        points=torch.zeros(0, 2), labels=torch.zeros(0, dtype=torch.long))
    sample.gt_sem_seg = PixelData(
        sem_seg=torch.from_numpy(seg.astype(np.int64))[None])
    if with_targets:
        res = GenerateS2ITargets(num_classes).transform(dict(
            gt_points=points, gt_points_labels=labels, gt_seg_map=seg,
            gt_ignore_flags=np.zeros(8, bool), img_shape=(height, width)))
        sample.gt_s2i = PixelData(**{
            k: torch.from_numpy(res['gt_' + k])
            for k in ('center_heatmap', 'offset', 'offset_weight')})
    gen = torch.Generator().manual_seed(seed)
    img = torch.randint(0, 256, (3, height, width), generator=gen,
                        dtype=torch.uint8)
    img[:, torch.from_numpy(seg > 0)] //= 2  # objects a bit darker
    return img, sample


def build_model(affinity):
    import torch
    from mmengine.config import Config
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    # The package __init__s do not import these yet: register explicitly.
    from p2seg_mm.models.data_preprocessors import data_preprocessor  # noqa
    from p2seg_mm.models.dense_heads import (  # noqa: F401
        affinity_head, center_offset_head, semantic_head)
    from p2seg_mm.models.detectors import p2seg  # noqa: F401
    from p2seg_mm.models.necks import deeplab_decoder  # noqa: F401
    from p2seg_mm.models.task_modules.target_generators import \
        online_s2i  # noqa: F401
    cfg = Config.fromfile(
        os.path.join(ROOT, 'configs/p2seg/p2seg_hrnet48_voc.py'))
    model_cfg = cfg.model
    model_cfg.backbone.init_cfg = None
    if affinity == 'none':
        model_cfg.affinity_head = None
        model_cfg.train_cfg.use_i2s = False
    else:
        model_cfg.affinity_head.blockwise = affinity == 'block'
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    model.init_weights()
    return model, cfg.num_classes


def _timed(fn, warmup, repeats, cpu=None):
    """Wall times of the timed calls; process CPU times go to ``cpu``."""
    times, out = [], None
    for i in range(warmup + repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        out = fn()
        if i >= warmup:
            times.append(time.perf_counter() - start)
            if cpu is not None:
                cpu.append(time.process_time() - start_cpu)
    return times, out


def child_train(args):
    import torch
    model, num_classes = build_model(args.affinity)
    batch = [make_sample(args.size, args.size, s, num_classes)
             for s in range(args.batch)]
    data = model.data_preprocessor(
        dict(inputs=[b[0] for b in batch],
             data_samples=[b[1] for b in batch]), True)
    model.train()
    optim = torch.optim.Adam(model.parameters(), lr=5e-5)
    base = proc_status_kib('VmRSS') * 1024
    fwd, losses_first = [], []

    def step():
        optim.zero_grad(set_to_none=True)
        start = time.perf_counter()
        losses = model(**data, mode='loss')
        total = sum(v for k, v in losses.items() if 'loss' in k)
        fwd.append(time.perf_counter() - start)
        total.backward()
        optim.step()
        if not losses_first:
            losses_first.append(
                {k: float(v.detach()) for k, v in losses.items()})
        return float(total)

    cpu = []
    times, _ = _timed(step, args.warmup, args.repeats, cpu)
    return dict(time=statistics.median(times), times=times,
                cpu=statistics.median(cpu),
                fwd=statistics.median(fwd[args.warmup:]), base=base,
                losses=losses_first[0])


def child_infer(args):
    import torch
    from p2seg_mm.models.post_processing.image_decoding import decode_single
    from p2seg_mm.models.utils.batching import (image_labels, refine_channels,
                                                resize_bilinear)
    model, num_classes = build_model(args.affinity)
    img, sample = make_sample(*INFER_HW, 0, num_classes, with_targets=False)
    data = model.data_preprocessor(dict(inputs=[img], data_samples=[sample]),
                                   False)
    inputs, samples = data['inputs'], data['data_samples']
    model.eval()
    base = proc_status_kib('VmRSS') * 1024
    parts = dict(net=[], i2s=[], decode=[])

    def split():  # mirrors P2Seg.predict in point mode, timed per part
        t0 = time.perf_counter()
        sem, center, offset, embed = model._forward(inputs)
        t1 = time.perf_counter()
        if embed is not None:
            chans = [refine_channels(image_labels(s)) for s in samples]
            sem = model.affinity_head.refine(sem, embed, chans)
        t2 = time.perf_counter()
        maps = [resize_bilinear(x, inputs.shape[-2:])
                for x in (sem, center, offset)]
        out = [decode_single(*(x[i] for x in maps), s, model.test_cfg, True,
                             image=inputs[i])
               for i, s in enumerate(samples)]
        t3 = time.perf_counter()
        for key, value in zip(parts, (t1 - t0, t2 - t1, t3 - t2)):
            parts[key].append(value)
        return out

    with torch.no_grad():
        cpu = []
        _timed(split, args.warmup, args.repeats, cpu)
        # already warm: the split above ran the same code
        total, res = _timed(lambda: model.predict(inputs, samples), 0,
                            args.repeats)
    med = {k: statistics.median(v[args.warmup:]) for k, v in parts.items()}
    return dict(time=statistics.median(total), base=base,
                cpu=statistics.median(cpu),
                num_masks=int(res[0].pred_instances.masks.shape[0]), **med)


def child_s2i(args):
    import torch
    from p2seg_mm.datasets.transforms.s2i_targets import GenerateS2ITargets
    from p2seg_mm.models.task_modules.target_generators.online_s2i import \
        OnlineS2ITarget
    out, out_cpu = {}, {}
    for size in args.sizes:
        seg, points, labels = make_crop(size, size)
        if args.kind == 'static':
            trans = GenerateS2ITargets(20)
            results = dict(gt_points=points, gt_points_labels=labels,
                           gt_seg_map=seg, img_shape=(size, size))

            def run():
                return trans.transform(dict(results))
        else:
            target = OnlineS2ITarget()
            gen = torch.Generator().manual_seed(0)
            off = 8 * torch.randn(2, size, size, generator=gen)
            seg_t, pts = torch.from_numpy(seg).long(), torch.from_numpy(points)
            lab = torch.from_numpy(labels)

            def run():
                return target(off, seg_t, pts, lab)
        times, cpus = [], []
        for _ in range(args.repeats):  # each repeat: mean of --inner calls
            cpu = []
            t, _ = _timed(run, args.warmup, args.inner, cpu)
            times.append(sum(t) / len(t))
            cpus.append(sum(cpu) / len(cpu))
        out[str(size)] = statistics.median(times)
        out_cpu[str(size)] = statistics.median(cpus)
    return dict(times=out, cpu=out_cpu)


def _mem_available():
    with open('/proc/meminfo') as f:
        for line in f:
            if line.startswith('MemAvailable:'):
                return int(line.split()[1]) * 1024
    raise RuntimeError('MemAvailable not in /proc/meminfo')


def run_child(args):
    # Cap the address space at --limit-gib, and (shared machine) at what
    # the machine can still give, so that a too-big run fails cleanly here
    # instead of waking the kernel's OOM killer for someone else's job.
    limit = min(int(args.limit_gib * GIB),
                proc_status_kib('VmSize') * 1024 + _mem_available() - GIB)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    print(f'LIMIT {limit}', flush=True)
    sys.path.insert(0, ROOT)
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    fn = dict(train=child_train, infer=child_infer, s2i=child_s2i)[args.child]
    try:
        res = fn(args)
    except (MemoryError, RuntimeError) as err:
        if not isinstance(err, MemoryError) and 'alloc' not in str(err):
            raise
        print('OOMINFO ' + json.dumps(dict(
            peak=proc_status_kib('VmHWM') * 1024, err=str(err)[:200])),
              flush=True)
        sys.exit(3)
    res['limit'] = resource.getrlimit(resource.RLIMIT_AS)[0]
    res['peak'] = proc_status_kib('VmHWM') * 1024
    res['maxrss'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print('RESULT ' + json.dumps(res), flush=True)


# ---------------------------------------------------------------- parent
def _spawn(args, child, **kw):
    cmd = [sys.executable, os.path.abspath(__file__), '--child', child,
           '--warmup', str(args.warmup), '--repeats', str(args.repeats),
           '--limit-gib', str(args.limit_gib), '--threads', str(args.threads)]
    for key, value in kw.items():
        cmd += [f'--{key}'] + [str(v) for v in (
            value if isinstance(value, (list, tuple)) else [value])]
    key = ' '.join(cmd[3:])
    cache = {}
    if args.cache and os.path.exists(args.cache):
        with open(args.cache) as f:
            cache = json.load(f)
        if key in cache:
            if args.from_cache:
                PROTOCOLS.append(f'{child} {kw}: {args.repeats} timed after '
                                 f'{args.warmup} warm-up')
            return cache[key]
    if args.from_cache:
        return _from_cache(cache, key, child, kw)
    res = _spawn_uncached(args, cmd, child, kw)
    print(f'  [{child} {kw}: {json.dumps(res)}]', file=sys.stderr,
          flush=True)
    if args.cache and 'skip' not in res:
        cache[key] = res
        with open(args.cache, 'w') as f:
            json.dump(cache, f, indent=1)
    return res


def _strip_protocol(key):
    """Cache key without ``--warmup W --repeats R``; and (W, R)."""
    words = key.split()
    warmup = int(words[words.index('--warmup') + 1])
    repeats = int(words[words.index('--repeats') + 1])
    rest = [w for i, w in enumerate(words) if w not in (
        '--warmup', '--repeats') and words[i - 1] not in (
            '--warmup', '--repeats')]
    return ' '.join(rest), (warmup, repeats)


def _from_cache(cache, key, child, kw):
    """Cached result with another warm-up/repeat count (most repeats)."""
    want, _ = _strip_protocol(key)
    found = [(_strip_protocol(k)[1], v) for k, v in cache.items()
             if _strip_protocol(k)[0] == want]
    if not found:
        return dict(skip='not measured')
    (warmup, repeats), res = max(found, key=lambda x: x[0][1])
    PROTOCOLS.append(f'{child} {kw}: {repeats} timed after {warmup} '
                     'warm-up')
    return res


def _spawn_uncached(args, cmd, child, kw):
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True,
                              timeout=args.child_timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return dict(skip=f'timeout (> {args.child_timeout:.0f} s)')
    finally:
        print(f'  [{child} {kw}: {time.perf_counter() - start:.0f} s wall]',
              file=sys.stderr, flush=True)
    for line in proc.stdout.splitlines()[::-1]:
        if line.startswith('RESULT '):
            return json.loads(line[7:])
    limit = args.limit_gib * GIB
    for line in proc.stdout.splitlines():
        if line.startswith('LIMIT '):
            limit = int(line.split()[1])
    err = proc.stderr.strip().splitlines()
    msg = err[-1] if err else f'exit code {proc.returncode}'
    for line in proc.stdout.splitlines():
        if line.startswith('OOMINFO '):
            info = json.loads(line[8:])
            return dict(skip=f'OOM (limit {limit / GIB:.1f} GiB, peak '
                        f'{info["peak"] / GIB:.1f} GiB when an allocation '
                        'failed)', err=info['err'])
    oom = ('memory' in msg.lower() or 'alloc' in msg.lower()
           or proc.returncode in (-9, 137))
    if oom:
        return dict(skip=f'OOM (> {limit / GIB:.1f} GiB address space)',
                    err=msg[:200])
    return dict(skip=f'failed: {msg[:120]}')


def _t(res, key='time'):
    return f'{res[key]:.2f} s' if key in res else res['skip']


def _tc(res):
    """Wall time, with the process CPU time in brackets when known."""
    if 'cpu' not in res or 'time' not in res:
        return _t(res)
    return f'{res["time"]:.2f} s ({res["cpu"]:.1f} cpu-s)'


def _g(res, key='peak'):
    return f'{res[key] / GIB:.2f} GiB' if key in res else '-'


def _ratio(a, b):
    return f'{a / b:.2f}x' if a is not None and b else '-'


def _get(res, key='time', scale=1.0):
    return res[key] / scale if key in res else None


def train_tables(args, settings):
    res = {}
    for size, bs in settings:
        for aff in ('block', 'dense'):
            res[size, bs, aff] = _spawn(args, 'train', size=size, batch=bs,
                                        affinity=aff)
    no_aff = None if args.no_aff else _spawn(
        args, 'train', size=416, batch=1, affinity='none')
    rows_t = ['| setting | ours block-wise | ours dense | release ' + REL +
              ' | block / release | dense / release | block / dense |',
              '|---|---|---|---|---|---|---|']
    rows_m = ['| setting | ours block-wise peak (base) | ours dense peak '
              '(base) | release ' + REL + ' | block / release | '
              'dense / release | block / dense |', '|---|---|---|---|---|---|'
              '---|']
    rows_f, notes = [], []
    entries = [((s, b), res[s, b, 'block'], res[s, b, 'dense'],
                RELEASE_STEP[s, b]) for s, b in settings]
    if no_aff is not None:
        entries.append(('no-aff', no_aff, None, RELEASE_NO_AFF))
    for key, blk, dense, rel in entries:
        name = (f'{key[0]}² bs{key[1]}' if key != 'no-aff' else
                '416² bs1 without affinity branch (use_i2s=False)')
        dense = dense or dict(skip='n/a')
        tb, td = _get(blk), _get(dense)
        rows_t.append(
            f'| {name} | {_tc(blk)} | {_tc(dense)} | {rel[0]:.2f} s | '
            f'{_ratio(tb, rel[0])} | {_ratio(td, rel[0])} | '
            f'{_ratio(tb, td)} |')
        mb, md = _get(blk, 'peak', GIB), _get(dense, 'peak', GIB)
        rows_m.append(
            f'| {name} | {_g(blk)} ({_g(blk, "base")}) | {_g(dense)} '
            f'({_g(dense, "base")}) | {rel[1]:.2f} GiB | {_ratio(mb, rel[1])}'
            f' | {_ratio(md, rel[1])} | {_ratio(mb, md)} |')
        rows_f.append(f'| {name} | {_t(blk, "fwd")} | {_t(dense, "fwd")} |')
        if 'losses' in blk and 'losses' in dense:
            lb, ld = blk['losses'], dense['losses']
            diff = max(abs(lb[k] - ld[k]) for k in lb if 'loss' in k)
            notes.append(f'- {name}: first-step losses block vs dense, max '
                         f'abs diff {diff:.2e} (loss_affinity_sem '
                         f'{lb.get("loss_affinity_sem", 0):.6f} vs '
                         f'{ld.get("loss_affinity_sem", 0):.6f})')
    return ['## Full training step (forward incl. online S2I, losses, '
            'backward, Adam step)', '', 'Wall time (median; in brackets the '
        'process CPU time of the step, user + sys over all threads; ratios '
        'use wall time):', ''] + rows_t + [
        '', 'Peak process memory (VmHWM of the child; in brackets its RSS '
        'after model + inputs were built):', ''] + rows_m + [
        '', 'Forward part of the step (model(mode="loss") incl. online S2I '
        'and the loss values):', '',
        '| setting | ours block-wise | ours dense |', '|---|---|---|'] + \
        rows_f + [''] + notes


def s2i_table(args):
    static = _spawn(args, 's2i', kind='static', sizes=args.sizes,
                    inner=args.inner)
    online = _spawn(args, 's2i', kind='online', sizes=args.sizes,
                    inner=args.inner)
    rows = ['## S2I targets', '',
            f'Mean of {args.inner} calls per repeat, median of ' + (
                'the repeats in the protocol list.' if args.from_cache else
                f'{args.repeats} repeats.'), '',
            '| crop | static (GenerateS2ITargets) ours | static release ' +
            REL + ' | ratio | online (OnlineS2ITarget) ours | online '
            'release | ratio |', '|---|---|---|---|---|---|---|']
    for size in args.sizes:
        st = static.get('times', {}).get(str(size))
        on = online.get('times', {}).get(str(size))
        cst = static.get('cpu', {}).get(str(size))
        con = online.get('cpu', {}).get(str(size))

        def fmt(x, r, c):
            if x is None:
                return r.get('skip', '-')
            return f'{x * 1e3:.1f} ms' + (
                f' ({c * 1e3:.1f} cpu-ms)' if c is not None else '')

        rows.append(f'| {size}² | {fmt(st, static, cst)} | '
                    f'{RELEASE_STATIC_MS[size]:.1f} ms | '
                    f'{_ratio(st and st * 1e3, RELEASE_STATIC_MS[size])} | '
                    f'{fmt(on, online, con)} | '
                    f'{RELEASE_ONLINE_MS[size]:.0f} ms | '
                    f'{_ratio(on and on * 1e3, RELEASE_ONLINE_MS[size])} |')
    return rows


def infer_table(args):
    res = {a: _spawn(args, 'infer', affinity=a) for a in ('block', 'dense')}
    h, w = INFER_HW
    rows = [f'## Inference on a {w}×{h} image with 8 points (padded to '
            'a multiple of 32, point-mode decoding)', '',
            '| part | ours block-wise | ours dense | release ' + REL + ' |',
            '|---|---|---|---|',
            '| backbone + heads (`_forward`) | ' + ' | '.join(
                _t(res[a], 'net') for a in res) + ' | |',
            '| I2S random walk (`affinity_head.refine`) | ' + ' | '.join(
                _t(res[a], 'i2s') for a in res) + ' | |']
    net = {a: (f'{r["net"] + r["i2s"]:.2f} s' if 'net' in r else r['skip'])
           for a, r in res.items()}
    rows += [f'| network forward (= the two above) | {net["block"]} | '
             f'{net["dense"]} | {RELEASE_INFER["net"]} |',
             '| point-guided decoding (resize + `decode_single`) | ' +
             ' | '.join(_t(res[a], 'decode') for a in res) +
             f' | {RELEASE_INFER["decode"]} |',
             '| total `model.predict` (timed separately) | ' + ' | '.join(
                 _t(res[a]) for a in res) + ' | |',
             '| process CPU time of the split (all parts) | ' + ' | '.join(
                 (f'{res[a]["cpu"]:.1f} cpu-s' if 'cpu' in res[a] else '-')
                 for a in res) + ' | |',
             '| peak process memory (base) | ' + ' | '.join(
                 f'{_g(res[a])} ({_g(res[a], "base")})' for a in res) +
             ' | |']
    return rows


def run_parent(args):
    import torch
    threads = args.threads or torch.get_num_threads()
    settings = [(s, 1) for s in args.sizes if s in (320, 416, 512)]
    if 416 in args.sizes and not args.quick:
        settings.insert(settings.index((416, 1)) + 1, (416, 2))
    if args.train:
        settings = [tuple(int(v) for v in t.split(':')) for t in args.train]
    head = [
        '# P2Seg (p2seg_mm) training step and inference on CPU vs the '
        "authors' release", '',
        f'Machine: {cpu_model()}, {os.cpu_count()} cores, torch '
        f'{torch.__version__}, torch.get_num_threads() = {threads}, fp32. '
        + ('Repeats and warm-up of each measurement: see the protocol '
           'list at the end; ' if args.from_cache else
           f'Median of {args.repeats} repeats after {args.warmup} warm-up; ')
        + f'every measurement in a fresh process with RLIMIT_AS = '
        f'{args.limit_gib:g} GiB.', '',
        'Model: HRNet-W48 (configs/p2seg/p2seg_hrnet48_voc.py, random '
        'init), 20 classes, online S2I + I2S + T2 on, Adam (lr 5e-5). Crop: '
        '8 discs of 3 classes (two touching same-class pairs), one point '
        'each, pseudo-map = the object masks. "block-wise" / "dense" = '
        '`P2SegAffinityHead(blockwise=True/False)`, block_size 1024.', '',
        '**Noise:** the CPU is shared with other jobs of the team during '
        'the run, so timings are noisy (load average at start: '
        f'{os.getloadavg()[0]:.2f}).', '']
    print('\n'.join(head), flush=True)
    lines = list(head)
    sizes = [s for s in args.sizes if s in RELEASE_STATIC_MS]
    args.sizes = sizes
    parts = dict(s2i=s2i_table, infer=infer_table,
                 train=lambda a: train_tables(a, settings))
    for name in args.parts:
        rows = parts[name](args) + ['']
        print('\n'.join(rows), flush=True)
        lines += rows
        if args.out:  # after every part, so partial results survive
            with open(args.out, 'w') as f:
                f.write('\n'.join(lines) + '\n')
    if PROTOCOLS:
        lines += ['Protocol of each measurement (rendered with '
                  '--from-cache):', ''] + [f'- {p}' for p in PROTOCOLS] + ['']
    lines.append(f'Load average at the end: {os.getloadavg()[0]:.2f}.')
    if args.out:
        with open(args.out, 'w') as f:
            f.write('\n'.join(lines) + '\n')


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sizes', type=int, nargs='+',
                        default=[320, 416, 512], help='of 320, 416, 512')
    parser.add_argument('--quick', action='store_true',
                        help='skip 512 and bs2')
    parser.add_argument('--parts', nargs='+', default=['s2i', 'infer',
                        'train'], choices=['s2i', 'infer', 'train'])
    parser.add_argument('--train', nargs='+', metavar='SIZE:BATCH',
                        help='training settings, e.g. 416:2 (default: '
                        'from --sizes/--quick); of ' +
                        ' '.join(f'{s}:{b}' for s, b in RELEASE_STEP))
    parser.add_argument('--no-aff', action='store_true',
                        help='skip the 416 bs1 run without affinity')
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--inner', type=int, default=5,
                        help='calls per repeat of the S2I timings')
    parser.add_argument('--limit-gib', type=float, default=20.0,
                        help='RLIMIT_AS of every child')
    parser.add_argument('--threads', type=int, default=0,
                        help='0: torch default')
    parser.add_argument('--child-timeout', type=float, default=600.0)
    parser.add_argument('--out', default='', help='write the markdown here')
    parser.add_argument('--cache', default='',
                        help='json of raw child results; reused on rerun')
    parser.add_argument('--from-cache', action='store_true',
                        help='only render --cache (any warm-up/repeats), '
                        'run nothing')
    parser.add_argument('--child', choices=['train', 'infer', 's2i'],
                        help='internal: run one measurement')
    parser.add_argument('--size', type=int, default=416)
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--affinity', choices=['block', 'dense', 'none'],
                        default='block')
    parser.add_argument('--kind', choices=['static', 'online'])
    args = parser.parse_args()
    for setting in args.train or []:
        size, _, batch = setting.partition(':')
        if (int(size), int(batch or 0)) not in RELEASE_STEP:
            parser.error(f'--train {setting}: one of {list(RELEASE_STEP)}')
    if args.quick:
        args.sizes = [s for s in args.sizes if s != 512]
    return args


if __name__ == '__main__':
    cli_args = parse_args()
    if cli_args.child:
        run_child(cli_args)
    else:
        run_parent(cli_args)
