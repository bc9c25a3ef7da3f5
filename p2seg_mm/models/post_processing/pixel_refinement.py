# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Full-resolution refinement of class probabilities by local image affinity.

Not in P2Seg: the pixel-adaptive mask refinement (PAMR) of Araslanov &
Roth, "Single-Stage Semantic Segmentation from Image Labels", CVPR 2020,
used here at test time (``test_cfg.pamr``, docs/method.md §6.2). The
MDM's maps are predicted at stride 4 and upsampled bilinearly, so object
borders of small objects are blurred by up to a cell; PAMR moves them to
where the image changes. For each pixel ``i`` and each of its 8 neighbours
``j`` at every dilation ``d`` (the ring of pixels ``d`` rows / columns
away; borders replicate the edge pixel)::

    k(i, j) = - mean over colour channels of |I_i - I_j| / (t * s_i)
    a(i, j) = softmax of k(i, .) over all 8 x len(dilations) neighbours
    P_i    <- sum_j a(i, j) P_j        (num_iter times)

where ``s_i`` is the standard deviation of the channel over ``i``'s
neighbours (all dilations together, the pixel itself left out; their
released code takes it per dilation over the 3 x 3 window with the centre:
on a HeLa crop the two differ by < 0.01 in probability) and ``t`` the
temperature. Cost (one CPU thread, 3 channels): ~4 s and ~1 GB at 1024^2,
~38 s and ~2.3 GB at 2048^2 (the 48 weight maps dominate). The affinity is invariant to a
per-channel affine change of the image, so the normalised network input
can be used as it is.
"""
import math
from typing import List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

# the values of Araslanov & Roth's released configuration (not tuned here)
DEFAULT_PAMR = dict(num_iter=10, dilations=(1, 2, 4, 8, 12, 24),
                    temperature=0.1)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_temperature(temperature: float) -> None:
    if not _is_number(temperature) or not math.isfinite(temperature) \
            or temperature <= 0:
        raise ValueError(f'pamr.temperature must be a finite number > 0, '
                         f'got {temperature!r}.')


def check_pamr_cfg(num_iter: int, dilations: Sequence[int],
                   temperature: float) -> None:
    """Raise ValueError, naming the option, for a bad PAMR setting."""
    if not _is_number(num_iter) or not math.isfinite(num_iter) \
            or int(num_iter) != num_iter or num_iter < 0:
        raise ValueError(f'pamr.num_iter must be an integer >= 0, got '
                         f'{num_iter!r}.')
    _check_temperature(temperature)
    _offsets(dilations)


def _offsets(dilations: Sequence[int]) -> List[Tuple[int, int, int]]:
    """(d, dy, dx) of the 8 neighbours at each dilation."""
    if isinstance(dilations, (str, bytes)) or not isinstance(
            dilations, Sequence) or len(dilations) == 0 or not all(
                _is_number(d) and math.isfinite(d) and int(d) == d and d >= 1
                for d in dilations):
        raise ValueError('pamr.dilations must be a non-empty list of '
                         f'integers >= 1 (pixels), got {dilations!r}.')
    return [(int(d), dy, dx) for d in dilations
            for dy in (-int(d), 0, int(d)) for dx in (-int(d), 0, int(d))
            if dy or dx]


def _neighbours(x: Tensor, offsets: List[Tuple[int, int, int]]):
    """Yield the (C, H, W) map of each pixel's neighbour at every offset
    (views into one replicate-padded copy per dilation), so that nothing
    of size N x C x H x W is ever held."""
    height, width = x.shape[-2:]
    padded = {}
    for d, dy, dx in offsets:
        if d not in padded:
            padded[d] = F.pad(x[None], [d] * 4, mode='replicate')[0]
        yield padded[d][:, d + dy:d + dy + height, d + dx:d + dx + width]


def pamr_affinity(image: Tensor,
                  dilations: Sequence[int] = DEFAULT_PAMR['dilations'],
                  temperature: float = DEFAULT_PAMR['temperature']
                  ) -> Tuple[Tensor, List[Tuple[int, int, int]]]:
    """Transition weights of each pixel to its neighbours.

    Args:
        image (Tensor): (3, H, W) or (1, H, W) image, any per-channel
            scale (the network's normalised input).
        dilations (Sequence[int]): Rings of neighbours, in pixels.
        temperature (float): ``t`` of the module docstring (> 0).

    Returns:
        tuple: (N, H, W) float32 weights that sum to 1 over N = 8 x
        len(dilations) for every pixel, and the (d, dy, dx) of each of the
        N neighbours. Memory: the N weight maps plus a few images; the
        refinement adds two copies of ``prob`` (no N x K x H x W stack).

    Raises:
        ValueError: A bad image shape, dilation or temperature.
    """
    if image.ndim != 3:
        raise ValueError('pamr image must have shape (C, H, W), got '
                         f'{tuple(image.shape)}.')
    _check_temperature(temperature)
    offsets = _offsets(dilations)
    x = image.float()
    # the standard deviation over the N neighbours (unbiased, as
    # torch.std), in two passes (no cancellation on raw 0-255 images)
    num = len(offsets)
    mean = sum(_neighbours(x, offsets)) / num
    var = sum((nbr - mean)**2 for nbr in _neighbours(x, offsets)) / (num - 1)
    scale = temperature * var.sqrt() + 1e-8
    kernel = torch.stack([(-(x - nbr).abs() / scale).mean(dim=0)
                          for nbr in _neighbours(x, offsets)])
    return kernel.softmax(dim=0), offsets


def pamr_refine(image: Tensor,
                prob: Tensor,
                num_iter: int = DEFAULT_PAMR['num_iter'],
                dilations: Sequence[int] = DEFAULT_PAMR['dilations'],
                temperature: float = DEFAULT_PAMR['temperature']) -> Tensor:
    """Refine (K, H, W) probabilities with the image's local affinity.

    Each iteration replaces every pixel's K values by the affinity-weighted
    mean of its neighbours' (module docstring), so the values of each pixel
    keep their sum and channels never mix: refining a subset of channels
    equals refining all and keeping the subset.

    Args:
        image (Tensor): (C, H, W) image at the resolution of ``prob``.
        prob (Tensor): (K, H, W) probabilities (any non-negative maps).
        num_iter (int): Iterations (>= 0; 0 returns ``prob``).
        dilations (Sequence[int]): Rings of neighbours, in pixels.
        temperature (float): Affinity temperature (> 0).

    Returns:
        Tensor: (K, H, W) float32 refined maps.

    Raises:
        ValueError: ``image`` and ``prob`` differ in size, hold a NaN or
            inf, or a bad parameter.
    """
    if prob.ndim != 3 or image.shape[-2:] != prob.shape[-2:]:
        raise ValueError(
            f'pamr needs prob (K, H, W) at the image size '
            f'{tuple(image.shape[-2:])}, got {tuple(prob.shape)}.')
    check_pamr_cfg(num_iter, dilations, temperature)
    # one non-finite value would spread to the whole map
    if not (torch.isfinite(image).all() and torch.isfinite(prob).all()):
        raise ValueError('pamr needs finite image and prob values (a NaN or '
                         'inf spreads to every pixel); got non-finite ones.')
    prob = prob.float()
    if num_iter == 0 or prob.numel() == 0:
        return prob
    weights, offsets = pamr_affinity(image.to(prob.device), dilations,
                                     temperature)
    for _ in range(int(num_iter)):
        out = torch.zeros_like(prob)
        for weight, nbr in zip(weights, _neighbours(prob, offsets)):
            out += weight[None] * nbr
        prob = out
    return prob
