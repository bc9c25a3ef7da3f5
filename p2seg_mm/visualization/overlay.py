# Copyright (c) p2seg_mm contributors. All rights reserved.
"""Pure numpy / OpenCV drawing helpers (RGB uint8 images in and out).

Points are ``(x, y)`` in continuous pixel coordinates (``docs/design.md``);
they are drawn at ``(x - 0.5, y - 0.5)`` in OpenCV's pixel-index space.
"""
from typing import Optional, Sequence

import cv2
import numpy as np

from p2seg_mm.utils.atomic_io import write_bytes_atomic

# Class c (0-based) of a semantic map value c + 1 gets _CLASS_PALETTE[c % n].
_CLASS_PALETTE = np.array(
    [[230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200],
     [245, 130, 48], [145, 30, 180], [70, 240, 240], [240, 50, 230],
     [210, 245, 60], [250, 190, 212], [0, 128, 128], [220, 190, 255],
     [170, 110, 40], [255, 250, 200], [128, 0, 0], [170, 255, 195],
     [128, 128, 0], [255, 215, 180], [0, 0, 128], [255, 255, 255]],
    dtype=np.uint8)
IGNORE_COLOR = (128, 128, 128)


def class_color(label: int) -> tuple:
    """RGB colour of 0-based class ``label``."""
    return tuple(int(v) for v in _CLASS_PALETTE[label % len(_CLASS_PALETTE)])


def instance_colors(num: int, seed: int = 0) -> np.ndarray:
    """``num`` distinct bright RGB colours, shape (num, 3) uint8."""
    if num <= 0:
        return np.zeros((0, 3), np.uint8)
    hues = (np.arange(num) * 0.61803398875 + seed * 0.1) % 1.0
    hsv = np.stack(
        [hues * 179, np.full(num, 220),
         np.full(num, 255)], axis=1).astype(np.uint8)
    return cv2.cvtColor(hsv[None], cv2.COLOR_HSV2RGB)[0]


def _check_image(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError('image must be (H, W, 3) uint8 RGB, got '
                         f'{image.shape} {image.dtype}.')
    return image


def overlay_semantic(image: np.ndarray,
                     seg_map: np.ndarray,
                     alpha: float = 0.45) -> np.ndarray:
    """Blend a semantic map over an image.

    Args:
        image (np.ndarray): Shape (H, W, 3) uint8 RGB.
        seg_map (np.ndarray): Shape (H, W); 0 background (transparent),
            ``c + 1`` class ``c``, 255 ignore (gray).
        alpha (float): Opacity of the colours. Defaults to 0.45.

    Returns:
        np.ndarray: Shape (H, W, 3) uint8 RGB, a new array.
    """
    image = _check_image(image)
    if seg_map.shape != image.shape[:2]:
        raise ValueError(f'seg_map shape {seg_map.shape} differs from image '
                         f'shape {image.shape[:2]}.')
    seg = seg_map.astype(np.int64)
    color = np.zeros_like(image)
    fg = (seg > 0) & (seg != 255)
    color[fg] = _CLASS_PALETTE[(seg[fg] - 1) % len(_CLASS_PALETTE)]
    color[seg == 255] = IGNORE_COLOR
    painted = seg > 0
    out = image.copy()
    blend = (1 - alpha) * image[painted] + alpha * color[painted]
    out[painted] = np.clip(np.round(blend), 0, 255).astype(np.uint8)
    return out


_FONT, _SCALE = cv2.FONT_HERSHEY_SIMPLEX, 0.4
# largest share of the image the per-instance captions may cover (beyond it,
# e.g. 6 "hela_nucleus 0.93" captions on a 96 x 96 crop, they hide the
# masks they name)
CAPTION_AREA = 0.25


def _captions_fit(shape: tuple, labels, class_names, scores) -> bool:
    """Whether the captions of ``overlay_instances`` cover at most
    ``CAPTION_AREA`` of an image of ``shape`` (H, W)."""
    area = 0
    for k, label in enumerate(np.asarray(labels, dtype=np.int64).tolist()):
        text = class_names[label] if class_names is not None else str(label)
        if scores is not None:
            text += ' 0.00'
        (w, h), base = cv2.getTextSize(text, _FONT, _SCALE, 3)
        area += w * (h + base)
    return area <= CAPTION_AREA * shape[0] * shape[1]


def _put_label(image: np.ndarray, text: str, org: tuple, color: tuple) -> None:
    font, scale = _FONT, _SCALE
    cv2.putText(image, text, org, font, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(image, text, org, font, scale, color, 1, cv2.LINE_AA)


def overlay_points(image: np.ndarray,
                   points: np.ndarray,
                   labels: np.ndarray,
                   class_names: Optional[Sequence[str]] = None,
                   ignored: Optional[np.ndarray] = None,
                   radius: int = 4) -> np.ndarray:
    """Draw points as filled discs with a black outline.

    Args:
        image (np.ndarray): Shape (H, W, 3) uint8 RGB.
        points (np.ndarray): Shape (N, 2), ``(x, y)`` continuous coords.
        labels (np.ndarray): Shape (N,), 0-based classes (colour).
        class_names (Sequence[str], optional): Written beside each point.
            Defaults to None.
        ignored (np.ndarray, optional): Shape (N,) bool; ignored points
            are drawn as hollow gray rings. Defaults to None.
        radius (int): Marker radius in pixels. Defaults to 4.

    Returns:
        np.ndarray: Shape (H, W, 3) uint8 RGB, a new array.
    """
    out = _check_image(image).copy()
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    if len(labels) != len(points):
        raise ValueError(f'{len(points)} points but {len(labels)} labels.')
    if ignored is None:
        ignored = np.zeros(len(points), dtype=bool)
    for (x, y), label, ign in zip(points, labels, ignored):
        c = (int(round(x - 0.5)), int(round(y - 0.5)))
        if ign:
            cv2.circle(out, c, radius + 1, (0, 0, 0), 3, cv2.LINE_AA)
            cv2.circle(out, c, radius + 1, IGNORE_COLOR, 1, cv2.LINE_AA)
            continue
        color = class_color(int(label))
        cv2.circle(out, c, radius + 1, (0, 0, 0), -1, cv2.LINE_AA)
        cv2.circle(out, c, radius, color, -1, cv2.LINE_AA)
        if class_names is not None:
            _put_label(out, str(class_names[label]),
                       (c[0] + radius + 2, c[1] - radius), color)
    return out


def overlay_instances(image: np.ndarray,
                      masks: np.ndarray,
                      labels: np.ndarray,
                      class_names: Optional[Sequence[str]] = None,
                      scores: Optional[np.ndarray] = None,
                      points: Optional[np.ndarray] = None,
                      alpha: float = 0.4,
                      max_captions: int = 40) -> np.ndarray:
    """Draw instance masks, one colour each, with contours and captions.

    Args:
        image (np.ndarray): Shape (H, W, 3) uint8 RGB.
        masks (np.ndarray): Shape (N, H, W) bool.
        labels (np.ndarray): Shape (N,), 0-based classes.
        class_names (Sequence[str], optional): Caption text. Defaults to
            None (class index).
        scores (np.ndarray, optional): Shape (N,), added to captions.
            Defaults to None.
        points (np.ndarray, optional): Shape (N, 2), ``(x, y)`` drawn in
            each instance's colour. Defaults to None.
        alpha (float): Fill opacity. Defaults to 0.4.
        max_captions (int): With more instances than this, per-instance
            captions would hide the image (a HeLa frame holds ~160 nuclei):
            one line of counts per class is written at the top left
            instead. The same line replaces them when the captions would
            cover more than ``CAPTION_AREA`` of a small image. Defaults
            to 40.

    Returns:
        np.ndarray: Shape (H, W, 3) uint8 RGB, a new array.
    """
    out = _check_image(image).copy()
    masks = np.asarray(masks, dtype=bool)
    if masks.ndim != 3 or masks.shape[1:] != out.shape[:2]:
        raise ValueError(f'masks must be (N, {out.shape[0]}, '
                         f'{out.shape[1]}), got {masks.shape}.')
    colors = instance_colors(len(masks))
    for k, mask in enumerate(masks):
        if not mask.any():
            continue
        color = colors[k].astype(np.float64)
        out[mask] = np.round((1 - alpha) * out[mask] + alpha * color).astype(
            np.uint8)
        contours, _ = cv2.findContours(
            mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(out, contours, -1, tuple(int(v) for v in color), 1)
    captions = len(masks) <= max_captions and _captions_fit(
        out.shape[:2], labels, class_names, scores)
    if not captions:
        names, counts = np.unique(
            np.asarray(labels, dtype=np.int64), return_counts=True)
        summary = ', '.join(
            f'{n} {class_names[c] if class_names is not None else c}'
            for c, n in zip(names.tolist(), counts.tolist()))
        _put_label(out, summary, (2, 12), (255, 255, 255))
    for k, mask in enumerate(masks):
        label = int(labels[k])
        text = class_names[label] if class_names is not None else str(label)
        if scores is not None:
            text += f' {float(scores[k]):.2f}'
        color = tuple(int(v) for v in colors[k])
        if points is not None:
            x, y = points[k]
            c = (int(round(x - 0.5)), int(round(y - 0.5)))
            cv2.circle(out, c, 4, (0, 0, 0), -1, cv2.LINE_AA)
            cv2.circle(out, c, 3, color, -1, cv2.LINE_AA)
        if captions and mask.any():
            ys, xs = np.nonzero(mask)
            _put_label(out, text, (int(xs.min()), max(int(ys.min()) - 2, 8)),
                       color)
    return out


def save_png(path: str, image_rgb: np.ndarray) -> None:
    """Write an RGB (H, W, 3) or gray (H, W) uint8 image as PNG, atomically.

    Parent directories are created; the file appears via ``os.replace``.
    """
    if image_rgb.dtype != np.uint8:
        raise ValueError(f'save_png needs uint8, got {image_rgb.dtype}.')
    if image_rgb.ndim == 3:
        if image_rgb.shape[2] != 3:
            raise ValueError(f'expected (H, W, 3), got {image_rgb.shape}.')
        image_rgb = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR)
    elif image_rgb.ndim != 2:
        raise ValueError(f'expected (H, W) or (H, W, 3), got '
                         f'{image_rgb.shape}.')
    ok, buf = cv2.imencode('.png', image_rgb)
    if not ok:
        raise RuntimeError(f'PNG encoding failed for {path}.')
    write_bytes_atomic(buf.tobytes(), path)
