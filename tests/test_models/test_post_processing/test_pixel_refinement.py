# Copyright (c) p2seg_mm contributors. All rights reserved.
"""PAMR-style refinement (pixel_refinement.py) against hand-made cases."""
import math

import pytest
import torch

from p2seg_mm.models.post_processing.pixel_refinement import (
    pamr_affinity, pamr_refine)


def test_affinity_by_hand_on_a_3x3_image():
    """One dilation, centre pixel of a 3 x 3 grey image: its 8 neighbours
    are the other pixels; k = -|I_c - I_j| / (t * std of the 8)."""
    img = torch.tensor([[0., 0., 0.], [0., 0., 0.], [0., 0., 4.]])[None]
    weights, offsets = pamr_affinity(img, dilations=(1, ), temperature=0.5)
    assert weights.shape == (8, 3, 3)
    assert torch.allclose(weights.sum(0), torch.ones(3, 3))
    nbrs = torch.tensor([0., 0., 0., 0., 0., 0., 0., 4.])
    k = -(0. - nbrs).abs() / (0.5 * nbrs.std())
    want = k.softmax(0)
    # offsets in (dy, dx) row-major order: the last is (1, 1), the 4
    assert offsets[-1] == (1, 1, 1)
    assert torch.allclose(weights[:, 1, 1], want, atol=1e-6)
    assert weights[-1, 1, 1] < 0.01  # the bright corner barely counts


def test_flat_image_spreads_evenly_and_keeps_the_sum():
    """On a flat image every neighbour weighs 1 / N; the refinement is a
    plain average that keeps each pixel's channel sum."""
    img = torch.full((3, 9, 9), 7.)
    weights, _ = pamr_affinity(img, dilations=(1, 2))
    assert torch.allclose(weights, torch.full_like(weights, 1 / 16))
    prob = torch.rand(2, 9, 9)
    prob = prob / prob.sum(0, keepdim=True)
    out = pamr_refine(img, prob, num_iter=3, dilations=(1, 2))
    assert torch.allclose(out.sum(0), torch.ones(9, 9), atol=1e-5)
    assert out[0].std() < prob[0].std()  # smoothed


def test_border_follows_the_image_edge():
    """A bright square whose class map is blurred by a pixel on each side
    (a stride-4 map upsampled): after refinement the argmax matches the
    square, as a threshold of the image would."""
    img = torch.zeros(1, 24, 24)
    img[0, 8:16, 8:16] = 1.
    img += 0.01 * torch.rand(1, 24, 24, generator=torch.Generator()
                             .manual_seed(0))
    fg = torch.zeros(24, 24)
    fg[7:17, 7:17] = 0.9  # one pixel too wide on every side
    prob = torch.stack([1 - fg, fg]).clamp(0.05, 0.95)
    before = prob.argmax(0) == 1
    after = pamr_refine(img, prob).argmax(0) == 1
    square = img[0] > 0.5
    assert (before != square).sum() == 10 * 10 - 8 * 8
    assert torch.equal(after, square)
    # without an edge in the image the same map only blurs
    flat = pamr_refine(torch.zeros(1, 24, 24), prob).argmax(0) == 1
    assert not torch.equal(flat, square)


def test_channels_do_not_mix():
    img = torch.rand(3, 12, 10, generator=torch.Generator().manual_seed(1))
    prob = torch.rand(4, 12, 10, generator=torch.Generator().manual_seed(2))
    both = pamr_refine(img, prob)
    assert torch.allclose(pamr_refine(img, prob[1:3]), both[1:3])
    assert torch.equal(pamr_refine(img, prob, num_iter=0), prob)


@pytest.mark.parametrize('kwargs, match', [
    (dict(num_iter=-1), 'num_iter'),
    (dict(num_iter=1.5), 'num_iter'),
    (dict(dilations=(0, )), 'dilations'),
    (dict(dilations=()), 'dilations'),
    (dict(temperature=0.), 'temperature'),
    (dict(temperature=float('inf')), 'temperature'),
    (dict(temperature=True), 'temperature'),
    (dict(temperature=torch.tensor(0.1)), 'temperature'),
    (dict(num_iter=float('nan')), 'num_iter'),
    (dict(dilations=3), 'dilations'),
    (dict(dilations='abc'), 'dilations'),
    (dict(dilations=(True, )), 'dilations'),
    (dict(dilations=(float('nan'), )), 'dilations'),
    (dict(dilations=(float('inf'), )), 'dilations'),
])
def test_bad_settings_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        pamr_refine(torch.zeros(1, 4, 4), torch.zeros(2, 4, 4), **kwargs)


def test_size_mismatch_raises():
    with pytest.raises(ValueError, match='image size'):
        pamr_refine(torch.zeros(1, 4, 4), torch.zeros(2, 4, 5))
    with pytest.raises(ValueError, match=r'\(C, H, W\)'):
        pamr_affinity(torch.zeros(4, 4))
    # a flat (zero-spread) image does not divide by zero
    out = pamr_refine(torch.zeros(1, 4, 4), torch.ones(1, 4, 4))
    assert math.isclose(float(out.mean()), 1.0, rel_tol=1e-6)


def test_streamed_refinement_equals_the_stacked_formula():
    """The module streams over neighbours; the formula with every
    neighbour stacked (N x C x H x W, torch.std) gives the same maps, on a
    raw 0-255 image (no cancellation in the spread)."""
    gen = torch.Generator().manual_seed(0)
    img = torch.rand(3, 20, 26, generator=gen) * 255
    prob = torch.rand(2, 20, 26, generator=gen)
    dilations, temp = (1, 3, 24), 0.1
    offs = [(d, dy, dx) for d in dilations for dy in (-d, 0, d)
            for dx in (-d, 0, d) if dy or dx]

    def stack(x):
        h, w = x.shape[-2:]
        return torch.stack([
            torch.nn.functional.pad(x[None], [d] * 4, mode='replicate')[0]
            [:, d + dy:d + dy + h, d + dx:d + dx + w] for d, dy, dx in offs
        ], 1)

    nbrs = stack(img)
    kernel = -(img[:, None] - nbrs).abs() / (
        temp * nbrs.std(1, keepdim=True) + 1e-8)
    weights = kernel.mean(0).softmax(0)
    want = prob
    for _ in range(4):
        want = (stack(want) * weights[None]).sum(1)
    got = pamr_refine(img, prob, num_iter=4, dilations=dilations,
                      temperature=temp)
    assert torch.allclose(got, want, atol=1e-5)


def test_non_finite_values_raise():
    """One NaN would spread to the whole map: refused, by name."""
    img = torch.zeros(1, 6, 6)
    img[0, 2, 2] = float('nan')
    with pytest.raises(ValueError, match='finite'):
        pamr_refine(img, torch.ones(2, 6, 6))
    prob = torch.ones(2, 6, 6)
    prob[1, 0, 0] = float('inf')
    with pytest.raises(ValueError, match='finite'):
        pamr_refine(torch.zeros(1, 6, 6), prob)
