"""Synthetic scenes with known masks, for the tools' tests and bench/assist.py.

Shapes (ellipses, rotated rectangles, stars, a ring with a hole) in a colour of their own, lightly
textured, on a textured background (stripes and blobs) with Gaussian sensor noise on top: the truth
is exact, and the scene is neither flat nor trivially separable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KINDS = ("ellipse", "rectangle", "star", "ring")


@dataclass(frozen=True)
class Scene:
    image: np.ndarray
    """H x W x 3 uint8 RGB."""
    masks: tuple[np.ndarray, ...]
    """H x W uint8 0/1 per object (the visible part, later objects on top)."""
    kinds: tuple[str, ...]


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = rng.uniform(60, 140, size=3).astype(np.float32)
    angle = rng.uniform(0, np.pi)
    period = rng.uniform(10, 30)
    stripes = 18 * np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period)
    img = base[None, None, :] + stripes[:, :, None]
    for _ in range(6):
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(8, 30)
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))
        img += blob[:, :, None] * rng.uniform(-30, 30, size=3).astype(np.float32)
    return img


def _shape_mask(kind: str, rng: np.random.Generator, h: int, w: int, size: float) -> np.ndarray:
    import cv2

    m = np.zeros((h, w), dtype=np.uint8)
    cx, cy = rng.uniform(size, w - size), rng.uniform(size, h - size)
    if kind == "ellipse":
        axes = (int(size * rng.uniform(0.6, 1.0)), int(size * rng.uniform(0.4, 0.9)))
        cv2.ellipse(m, (int(cx), int(cy)), axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    elif kind == "rectangle":
        rect = ((cx, cy), (size * rng.uniform(1.0, 1.8), size * rng.uniform(0.7, 1.4)), float(rng.uniform(0, 90)))
        cv2.fillPoly(m, [cv2.boxPoints(rect).astype(np.int32)], 1)
    elif kind == "star":
        n = int(rng.integers(5, 8))
        t = np.linspace(0, 2 * np.pi, 2 * n, endpoint=False) + rng.uniform(0, np.pi)
        r = np.where(np.arange(2 * n) % 2 == 0, size, size * 0.55)
        pts = np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], axis=1).astype(np.int32)
        cv2.fillPoly(m, [pts], 1)
    elif kind == "ring":
        cv2.circle(m, (int(cx), int(cy)), int(size), 1, -1)
        cv2.circle(m, (int(cx), int(cy)), int(size * 0.45), 0, -1)
    else:
        raise ValueError(kind)
    return m


def make_scene(
    seed: int,
    *,
    size_wh: tuple[int, int] = (256, 192),
    objects: int = 3,
    noise: float = 8.0,
    kinds: tuple[str, ...] = KINDS,
    contrast: float = 1.0,
) -> Scene:
    """A scene of ``objects`` non-overlapping shapes; ``contrast`` scales how far their colours sit
    from the background's (1 = clear objects)."""
    rng = np.random.default_rng(seed)
    w, h = size_wh
    img = _background(rng, h, w)
    taken = np.zeros((h, w), dtype=bool)
    masks: list[np.ndarray] = []
    chosen: list[str] = []
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for i in range(objects * 20):
        if len(masks) == objects:
            break
        kind = kinds[(seed + len(masks) + i) % len(kinds)]
        m = _shape_mask(kind, rng, h, w, float(rng.uniform(0.12, 0.2) * min(w, h)))
        grown = np.zeros_like(m)
        import cv2

        grown = cv2.dilate(m, np.ones((7, 7), np.uint8))
        if (grown.astype(bool) & taken).any():
            continue
        taken |= grown.astype(bool)
        bg_mean = img[m.astype(bool)].mean(axis=0)
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction) + 1e-9
        colour = np.clip(bg_mean + contrast * 90 * direction + np.where(bg_mean < 128, 40, -40) * contrast, 0, 255)
        texture = 8 * np.sin(xx * rng.uniform(0.2, 0.5)) * np.cos(yy * rng.uniform(0.2, 0.5))
        sel = m.astype(bool)
        img[sel] = colour[None, :] + texture[sel][:, None]
        masks.append(m)
        chosen.append(kind)
    img = img + rng.normal(0, noise, size=img.shape)
    return Scene(np.clip(img, 0, 255).astype(np.uint8), tuple(masks), tuple(chosen))


def box_of(mask: np.ndarray, pad: float = 2.0) -> tuple[float, float, float, float]:
    """The mask's tight box grown by ``pad`` pixels, as a user's drag would give it."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    x0, y0 = cols[0] - pad, rows[0] - pad
    return (float(x0), float(y0), float(cols[-1] + 1 + pad - x0), float(rows[-1] + 1 + pad - y0))


def inner_point(mask: np.ndarray) -> tuple[float, float]:
    """The pixel deepest inside the mask (farthest from its edge): where a user clicks."""
    import cv2

    dist = cv2.distanceTransform(np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return (float(x) + 0.5, float(y) + 0.5)


def outline_points(mask: np.ndarray, n: int) -> list[tuple[float, float]]:
    """``n`` points evenly spaced along the outer outline (clicks for the scissors)."""
    import cv2

    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    c = max(contours, key=len).reshape(-1, 2)
    idx = np.linspace(0, len(c), n, endpoint=False).astype(int)
    return [(float(c[i, 0]), float(c[i, 1])) for i in idx]
