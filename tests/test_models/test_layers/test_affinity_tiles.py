# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Tile primitives of the block-wise affinity, against dense computations,
and the layer package's one-way import graph."""
import ast
from pathlib import Path

import pytest
import torch
from torch.testing import assert_close

import p2seg_mm.models.layers as layers
from p2seg_mm.models.layers.affinity_tiles import (check_inputs, coef_tile,
                                                   compute_dtype, pair_weights,
                                                   pattern_counts,
                                                   prepare_target, rows_view,
                                                   symmetric_mm_, tile_loss,
                                                   upper_sigmoid)

F64 = torch.float64


def _members(num=23, seed=0):
    gen = torch.Generator().manual_seed(seed)
    sem = torch.rand(3, num, generator=gen) > 0.55  # overlapping rows
    ids = torch.randint(0, 5, (num, ), generator=gen)
    inst = ids[None] == torch.arange(1, 5)[:, None]
    many = torch.randint(0, 71, (num, ), generator=gen)
    many = many[None] == torch.arange(1, 71)[:, None]  # (70, N), 2 codes
    many[3, :5] = True
    return dict(sem=sem, inst=inst, many=many, none=sem[:0])


@pytest.mark.parametrize('which', ['sem', 'inst', 'many', 'none'])
@pytest.mark.parametrize('block_size', [1, 3, 100])
def test_pair_weights_count_positive_pairs(which, block_size):
    member = _members()[which]
    num = member.shape[1]
    mem = member.to(F64)
    n_pos_dense = float(((mem.t() @ mem) > 0).sum())
    n_pos, w_pos, w_neg = pair_weights(member, block_size)
    assert n_pos == n_pos_dense
    assert w_pos == 0.5 / (n_pos_dense + 1)
    assert w_neg == 0.5 / (num * num - n_pos_dense + 1)
    if member.shape[0]:
        pat, cnt = pattern_counts(member)
        assert cnt.sum() == num
        assert torch.unique(pat, dim=1).shape[1] == pat.shape[1]


@pytest.mark.parametrize('block_size', [1, 4, 23, 64])
@pytest.mark.parametrize('which', ['sem', 'inst', 'none'])
def test_tiles_cover_the_symmetric_matrix(block_size, which):
    """Upper row blocks give ``A @ rhs`` and ``sum c * A`` of the full
    N x N matrices."""
    num = 23
    gen = torch.Generator().manual_seed(1)
    embed = 0.5 * torch.randn(5, num, generator=gen, dtype=F64)
    rhs = torch.randn(num, 3, generator=gen, dtype=F64)
    member = _members(num)[which]
    et = rows_view(embed)
    target = prepare_target(member, block_size, F64)
    rows = min(block_size, num)
    aff_buf, coef_buf = et.new_empty(rows, num), et.new_empty(rows, num)
    out = torch.zeros(num, 3, dtype=F64)
    loss = torch.zeros((), dtype=F64)
    for start in range(0, num, rows):
        stop = min(start + rows, num)
        aff = upper_sigmoid(et, start, stop, aff_buf)
        loss += tile_loss(coef_tile(coef_buf, target, start, stop), aff)
        symmetric_mm_(out, aff, rhs, start, stop)
    aff = torch.sigmoid(embed.t() @ embed)
    mem = member.to(F64)
    pos = (mem.t() @ mem) > 0
    coef = target.w_neg - (target.w_pos + target.w_neg) * pos.to(F64)
    assert_close(out, aff @ rhs, rtol=1e-12, atol=1e-12)
    assert_close(loss, (coef * aff).sum(), rtol=1e-12, atol=1e-15)
    assert target.constant == target.w_pos * float(pos.sum())


def test_rows_view_strides_and_compute_dtype():
    embed = torch.randn(4, 10)
    assert rows_view(embed).shape == (10, 4)
    assert rows_view(embed).data_ptr() == embed.data_ptr()  # a view
    odd = torch.randn(8, 20)[::2, ::2]  # neither row- nor column-major
    assert rows_view(odd).is_contiguous()
    assert compute_dtype(embed.half()) == torch.float32
    assert compute_dtype(embed, embed.double()) == F64
    with pytest.raises(ValueError, match='embed'):
        check_inputs(torch.randn(4, 10, 1), embed, 'prob')
    with pytest.raises(ValueError, match='prob'):
        check_inputs(embed, torch.ones(2, 9), 'prob')
    with pytest.raises(ValueError, match='block_size'):
        check_inputs(embed, torch.ones(2, 10), 'prob', block_size=0)


def _package_imports():
    """``{module: {sibling modules it imports}}`` and every import that is
    not at module level, for the modules of ``p2seg_mm.models.layers``."""
    folder = Path(layers.__file__).parent
    names = {p.stem for p in folder.glob('*.py')}
    graph, nested = {}, []
    for path in sorted(folder.glob('*.py')):
        tree = ast.parse(path.read_text())
        top = set(map(id, tree.body))
        deps = set()
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            if id(node) not in top:
                nested.append(f'{path.name}:{node.lineno}')
            if isinstance(node, ast.ImportFrom):
                mods = [node.module or ''] if node.level else []
                if node.level and not node.module:  # from . import x
                    mods = [alias.name for alias in node.names]
            else:
                mods = [alias.name for alias in node.names]
            for mod in mods:
                mod = mod.rsplit('p2seg_mm.models.layers.', 1)[-1]
                if mod in names:
                    deps.add(mod)
        graph[path.stem] = deps
    return graph, nested


def test_layers_import_graph_is_one_way():
    graph, nested = _package_imports()
    assert nested == [], 'imports inside functions or classes'
    assert graph == {
        '__init__': {'affinity_reference', 'blockwise_affinity_step'},
        'affinity_reference': {'affinity_tiles'},
        'affinity_tiles': set(),
        'blockwise_affinity_step': {'affinity_tiles'},
    }
