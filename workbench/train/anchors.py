"""Anchor coverage and anchor fitting on a project's boxes, as the RPN sees them (numpy, no torch).

Coverage is the share of ground-truth boxes whose best anchor has IoU >= 0.5 (or 0.7, the RPN's
positive threshold): a box no anchor reaches is learnt only through the matcher's low-quality
fallback, if at all. The anchors are torchvision's: each level's base anchors (height / width =
ratio, sqrt(area) = size, half-extents rounded as ``AnchorGenerator`` rounds them) at every cell of
that level's grid, on the image resized as the model resizes it and padded to a multiple of 32.
The best anchor of a shape sits at the grid point nearest the box on each axis, so the best IoU over
all positions is computed per shape, not by enumerating the grid (a test compares both).

Fitting (in the manner of Ultralytics' autoanchor, which fits YOLO's anchors by k-means and keeps the
fit only when it is better): k-means on log size and on log ratio, then a coordinate search that
multiplies one size or ratio at a time while the coverage rises; the result is never worse than the
current anchors on the boxes it was fitted to.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from workbench.domain import AnnotatedImage

THRESHOLDS = (0.5, 0.7)
SIZE_BUCKETS = (("small", 0.0, 32.0**2), ("medium", 32.0**2, 96.0**2), ("large", 96.0**2, math.inf))
"""COCO's area buckets, on the resized image (what the anchors meet)."""
MAX_FIT_BOXES = 4000
"""The fit's search scores at most this many boxes (a seeded sample); the coverage reported uses all."""
SIZE_DIVISIBLE = 32


@dataclass(frozen=True)
class BoxSet:
    """Boxes in resized-image pixels: ``xyxy`` (N, 4), their image's padded size ``image_hw`` (N, 2)
    and class name."""

    xyxy: np.ndarray
    image_hw: np.ndarray
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.xyxy)

    @property
    def wh(self) -> np.ndarray:
        return self.xyxy[:, 2:] - self.xyxy[:, :2]

    def sizes(self) -> np.ndarray:
        """sqrt(w h): the scale an anchor size is compared with."""
        wh = self.wh
        return np.sqrt(wh[:, 0] * wh[:, 1])

    def ratios(self) -> np.ndarray:
        """h / w, torchvision's aspect ratio."""
        wh = self.wh
        return wh[:, 1] / wh[:, 0]

    def subset(self, idx: np.ndarray) -> BoxSet:
        return BoxSet(self.xyxy[idx], self.image_hw[idx], tuple(self.classes[i] for i in idx))


def resize_scale(width: int, height: int, min_size: int, max_size: int) -> float:
    """GeneralizedRCNNTransform's resize factor: the shorter side to min_size, the longer at most max_size."""
    return min(min_size / min(width, height), max_size / max(width, height))


def resized_boxes(items: Iterable[AnnotatedImage], min_size: int, max_size: int) -> BoxSet:
    """The non-crowd boxes of ``items`` after the model's resize (each image padded to a multiple of 32)."""
    boxes: list[tuple[float, float, float, float]] = []
    sizes: list[tuple[int, int]] = []
    classes: list[str] = []
    for it in items:
        w, h = int(it.image.width), int(it.image.height)
        if w < 1 or h < 1:
            continue
        s = resize_scale(w, h, min_size, max_size)
        rw, rh = math.floor(w * s), math.floor(h * s)
        padded = (math.ceil(rh / SIZE_DIVISIBLE) * SIZE_DIVISIBLE, math.ceil(rw / SIZE_DIVISIBLE) * SIZE_DIVISIBLE)
        for inst in it.instances:
            if inst.iscrowd or inst.bbox_xywh is None:
                continue
            x, y, bw, bh = (float(v) for v in inst.bbox_xywh)
            if bw <= 0 or bh <= 0:
                continue
            boxes.append((x * rw / w, y * rh / h, (x + bw) * rw / w, (y + bh) * rh / h))
            sizes.append(padded)
            classes.append(inst.category)
    return BoxSet(np.asarray(boxes, dtype=np.float64).reshape(-1, 4), np.asarray(sizes, dtype=np.int64).reshape(-1, 2),
                  tuple(classes))


def base_anchors(sizes: Sequence[float], ratios: Sequence[float]) -> np.ndarray:
    """(M, 4) anchors around (0, 0) as torchvision's AnchorGenerator makes them (float32, rounded)."""
    scales = np.asarray(sizes, dtype=np.float32)
    ar = np.asarray(ratios, dtype=np.float32)
    h_ratios = np.sqrt(ar)
    w_ratios = np.float32(1) / h_ratios
    ws = (w_ratios[:, None] * scales[None, :]).reshape(-1)
    hs = (h_ratios[:, None] * scales[None, :]).reshape(-1)
    return np.round(np.stack([-ws, -hs, ws, hs], axis=1) / np.float32(2)).astype(np.float64)


def level_grids(padded: np.ndarray, strides: Sequence[int]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per level, (grid cells (N, 2) as h, w; the stride torchvision derives (N, 2)) for images of
    padded size (N, 2): the body's levels divide the image, an extra pooled level halves the last (ceil)."""
    out = []
    prev = None
    for s in strides:
        grid = padded // s if s <= SIZE_DIVISIBLE or prev is None else -(-prev // 2)
        grid = np.maximum(grid, 1)
        out.append((grid, padded // grid))
        prev = grid
    return out


def _best_overlap(lo: np.ndarray, hi: np.ndarray, a_lo: float, a_hi: float, stride: np.ndarray,
                  cells: np.ndarray) -> np.ndarray:
    """Per box, the largest 1-D overlap of [lo, hi] with [c + a_lo, c + a_hi] over grid centres c = i * stride."""
    centre = (lo + hi) / 2 - (a_lo + a_hi) / 2
    best = np.zeros_like(lo)
    base = np.floor(centre / stride)
    for k in (0, 1):
        i = np.clip(base + k, 0, cells - 1)
        c = i * stride
        best = np.maximum(best, np.clip(np.minimum(hi, c + a_hi) - np.maximum(lo, c + a_lo), 0, None))
    return best


def best_iou(boxes: BoxSet, anchor_sizes: Sequence[Sequence[float]], ratios: Sequence[float],
             strides: Sequence[int]) -> np.ndarray:
    """Per box, the IoU of its best anchor over every level, shape and grid position."""
    n = len(boxes)
    best = np.zeros(n)
    if n == 0:
        return best
    x1, y1, x2, y2 = boxes.xyxy.T
    area = (x2 - x1) * (y2 - y1)
    for sizes, (grid, stride) in zip(anchor_sizes, level_grids(boxes.image_hw, strides), strict=True):
        for ax1, ay1, ax2, ay2 in base_anchors(sizes, ratios):
            ox = _best_overlap(x1, x2, ax1, ax2, stride[:, 1], grid[:, 1])
            oy = _best_overlap(y1, y2, ay1, ay2, stride[:, 0], grid[:, 0])
            inter = ox * oy
            iou = inter / (area + (ax2 - ax1) * (ay2 - ay1) - inter)
            best = np.maximum(best, iou)
    return best


def _shares(iou: np.ndarray) -> dict[str, float | int]:
    out: dict[str, float | int] = {"boxes": int(len(iou))}
    for t in THRESHOLDS:
        out[f"iou>={t}"] = float((iou >= t).mean()) if len(iou) else 0.0
    return out


def coverage(boxes: BoxSet, anchor_sizes: Sequence[Sequence[float]], ratios: Sequence[float],
             strides: Sequence[int]) -> dict[str, object]:
    """Shares of boxes reached at IoU >= 0.5 and >= 0.7: all, per class, per size bucket; and the mean best IoU."""
    iou = best_iou(boxes, anchor_sizes, ratios, strides)
    area = boxes.wh[:, 0] * boxes.wh[:, 1] if len(boxes) else np.zeros(0)
    classes = np.asarray(boxes.classes, dtype=object)
    return {
        "all": {**_shares(iou), "mean_best_iou": float(iou.mean()) if len(iou) else 0.0},
        "per_class": {c: _shares(iou[classes == c]) for c in sorted(set(boxes.classes))},
        "per_size": {name: _shares(iou[(area >= lo) & (area < hi)]) for name, lo, hi in SIZE_BUCKETS
                     if ((area >= lo) & (area < hi)).any()},
    }


def _objective(boxes: BoxSet, sizes: Sequence[Sequence[float]], ratios: Sequence[float], strides: Sequence[int]) -> float:
    iou = best_iou(boxes, sizes, ratios, strides)
    # the two coverages, and the mean best IoU to break ties (it moves before a share does)
    return float((iou >= 0.5).mean() + (iou >= 0.7).mean() + 0.1 * iou.mean())


def kmeans_1d(values: np.ndarray, k: int, iters: int = 50) -> np.ndarray:
    """k sorted centres of 1-D ``values`` (Lloyd's, started at the quantiles; deterministic)."""
    centres = np.quantile(values, (np.arange(k) + 0.5) / k)
    for _ in range(iters):
        labels = np.abs(values[:, None] - centres[None, :]).argmin(axis=1)
        new = np.array([values[labels == j].mean() if (labels == j).any() else centres[j] for j in range(k)])
        if np.allclose(new, centres):
            break
        centres = new
    return np.sort(centres)


def _layout(sizes_flat: Sequence[float], shared: bool, levels: int) -> tuple[tuple[float, ...], ...]:
    flat = tuple(sorted(round(float(s), 1) for s in sizes_flat))
    if shared:
        return (flat,) * levels
    per = len(flat) // levels
    return tuple(flat[i * per:(i + 1) * per] for i in range(levels))


def fit_anchors(boxes: BoxSet, anchor_sizes: Sequence[Sequence[float]], ratios: Sequence[float],
                strides: Sequence[int], *, seed: int = 0, rounds: int = 3) -> tuple[tuple[tuple[float, ...], ...], tuple[float, ...]]:
    """Anchor sizes per level (the same layout: sizes per level, or one list shared by every level)
    and aspect ratios (as many as now) that cover ``boxes`` at least as well as the current ones."""
    current = (tuple(tuple(float(s) for s in lv) for lv in anchor_sizes), tuple(float(r) for r in ratios))
    if len(boxes) == 0:
        return current
    if len(boxes) > MAX_FIT_BOXES:
        boxes = boxes.subset(np.random.default_rng(seed).choice(len(boxes), MAX_FIT_BOXES, replace=False))
    levels = len(anchor_sizes)
    shared = levels > 1 and all(tuple(lv) == tuple(anchor_sizes[0]) for lv in anchor_sizes)
    k_sizes = len(anchor_sizes[0]) if shared else sum(len(lv) for lv in anchor_sizes)
    log_s = np.log(np.maximum(boxes.sizes(), 1e-3))
    log_r = np.log(np.clip(boxes.ratios(), 1e-3, 1e3))
    start_sizes = list(np.exp(kmeans_1d(log_s, k_sizes)))
    start_ratios = list(np.exp(kmeans_1d(log_r, len(ratios))))

    def score(flat: list[float], rs: list[float]) -> float:
        return _objective(boxes, _layout(flat, shared, levels), tuple(rs), strides)

    best_flat, best_ratios = start_sizes, start_ratios
    best = score(best_flat, best_ratios)
    for _ in range(rounds):
        improved = False
        for factor in (1.6, 1.25, 1.1):
            for which in ("size", "ratio"):
                values = best_flat if which == "size" else best_ratios
                for j in range(len(values)):
                    for f in (factor, 1 / factor):
                        trial = list(values)
                        trial[j] = trial[j] * f
                        if which == "size" and trial[j] < 1.0:
                            continue
                        s = score(trial, best_ratios) if which == "size" else score(best_flat, trial)
                        if s > best + 1e-9:
                            best, improved = s, True
                            if which == "size":
                                best_flat = values = trial
                            else:
                                best_ratios = values = trial
        if not improved:
            break
    fitted = (_layout(best_flat, shared, levels), tuple(sorted(round(float(r), 3) for r in best_ratios)))
    if _objective(boxes, *fitted, strides) < _objective(boxes, *current, strides):
        return current  # the current anchors were better (autoanchor's rule: keep the better)
    return fitted
