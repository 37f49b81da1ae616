"""Gaussian heatmap targets for one crop, with a weight per keypoint (its visibility).

A heatmap of stride ``s`` has pixel j covering crop x in [j*s, (j+1)*s); its centre is crop x =
(j + 0.5) * s. A keypoint at crop x is heatmap x/s - 0.5 in pixel-index units, and the Gaussian is
centred there, not at the nearest pixel: the target carries the sub-pixel position, so decoding
(:mod:`.decode`) gets it back. The peak pixel is the one holding the keypoint. ``sigma`` is in crop
(model input) pixels, so one setting means the same spread for a stride-4 Hourglass and a stride-1
U-Net. ``workbench export labelmaps`` draws its heatmaps at image size, centred on the joint's pixel.

Weights: 1 for a labelled keypoint (v > 0) inside the crop, 0 otherwise (its target stays 0, and
the loss does not count it).
"""

from __future__ import annotations

import math

import numpy as np

from workbench.domain import ValidationError

CUTOFF_SIGMAS = 3.0


def check_sigma(sigma: float) -> float:
    if not (isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma > 0):
        raise ValidationError(f"heatmap sigma must be a positive number of pixels, got {sigma!r}")
    return float(sigma)


def gaussian_targets(
    keypoints: np.ndarray, heatmap_wh: tuple[int, int], stride: int, sigma: float
) -> tuple[np.ndarray, np.ndarray]:
    """(K x h x w float32 targets, K float32 weights) for K x 3 crop keypoints (x, y, v)."""
    sigma = check_sigma(sigma)
    kp = np.asarray(keypoints, dtype=np.float64).reshape(-1, 3)
    w, h = int(heatmap_wh[0]), int(heatmap_wh[1])
    k = len(kp)
    out = np.zeros((k, h, w), dtype=np.float32)
    weights = np.zeros(k, dtype=np.float32)
    sig = sigma / stride
    r = CUTOFF_SIGMAS * sig
    xs, ys = np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64)
    for j, (x, y, v) in enumerate(kp):
        if v <= 0 or not (math.isfinite(x) and math.isfinite(y)):
            continue
        if not (0 <= x < w * stride and 0 <= y < h * stride):
            continue
        mx, my = x / stride - 0.5, y / stride - 0.5
        x0, x1 = max(int(math.floor(mx - r)), 0), min(int(math.ceil(mx + r)) + 1, w)
        y0, y1 = max(int(math.floor(my - r)), 0), min(int(math.ceil(my + r)) + 1, h)
        gx = np.exp(-((xs[x0:x1] - mx) ** 2) / (2 * sig * sig))
        gy = np.exp(-((ys[y0:y1] - my) ** 2) / (2 * sig * sig))
        out[j, y0:y1, x0:x1] = (gy[:, None] * gx[None, :]).astype(np.float32)
        weights[j] = 1.0
    return out, weights
