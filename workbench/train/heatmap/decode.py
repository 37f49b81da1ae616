"""Heatmaps -> keypoints in natural image pixels.

``quarter`` (the default; Newell et al. and SimpleBaseline): the argmax pixel moved a quarter pixel
towards its higher neighbour on each axis, which halves the argmax's quantisation error (at most a
quarter heatmap pixel on a clean Gaussian). ``taylor`` (DARK, Zhang et al. 2020): a second-order
Taylor step on the log heatmap at the argmax; exact for a Gaussian target, used where it is well
defined, else the quarter offset. The score of a keypoint is its heatmap maximum.

Heatmap pixel j is centred at crop x = (j + 0.5) * stride (see :mod:`.targets`); the crop's affine
(:class:`.crops.CropTransform`) takes the point back to the image.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from workbench.domain import ValidationError
from workbench.train.heatmap.crops import CropTransform

METHODS = ("quarter", "taylor")


def _taylor(hm: np.ndarray, x: int, y: int) -> tuple[float, float] | None:
    h, w = hm.shape
    if not (1 <= x < w - 1 and 1 <= y < h - 1):
        return None
    p = hm[y - 1 : y + 2, x - 1 : x + 2].astype(np.float64)
    if np.any(p <= 0):
        return None
    lg = np.log(p)
    dx = 0.5 * (lg[1, 2] - lg[1, 0])
    dy = 0.5 * (lg[2, 1] - lg[0, 1])
    dxx = lg[1, 2] - 2 * lg[1, 1] + lg[1, 0]
    dyy = lg[2, 1] - 2 * lg[1, 1] + lg[0, 1]
    dxy = 0.25 * (lg[2, 2] - lg[2, 0] - lg[0, 2] + lg[0, 0])
    det = dxx * dyy - dxy * dxy
    if not (dxx < 0 and det > 0):  # not a maximum of a concave quadric
        return None
    ox = -(dyy * dx - dxy * dy) / det
    oy = -(dxx * dy - dxy * dx) / det
    if abs(ox) > 1 or abs(oy) > 1:
        return None
    return x + ox, y + oy


def heatmap_peaks(heatmaps: np.ndarray, *, method: str = "quarter") -> tuple[np.ndarray, np.ndarray]:
    """(K x 2 peak positions in heatmap pixel-index units, K scores) for K x h x w heatmaps."""
    if method not in METHODS:
        raise ValidationError(f"heatmap decoding {method!r} is not one of {list(METHODS)}")
    hm = np.asarray(heatmaps, dtype=np.float32)
    k, h, w = hm.shape
    flat = hm.reshape(k, -1)
    idx = flat.argmax(axis=1)
    scores = flat[np.arange(k), idx].astype(np.float64)
    ys, xs = np.divmod(idx, w)
    out = np.stack([xs, ys], axis=1).astype(np.float64)
    for j in range(k):
        x, y = int(xs[j]), int(ys[j])
        if method == "taylor":
            t = _taylor(hm[j], x, y)
            if t is not None:
                out[j] = t
                continue
        if 0 < x < w - 1:
            out[j, 0] += 0.25 * np.sign(hm[j, y, x + 1] - hm[j, y, x - 1])
        if 0 < y < h - 1:
            out[j, 1] += 0.25 * np.sign(hm[j, y + 1, x] - hm[j, y - 1, x])
    return out, scores


def decode_heatmaps(
    heatmaps: np.ndarray, transform: CropTransform, stride: int, *, method: str = "quarter"
) -> np.ndarray:
    """K x 3 (x, y, score) in image pixels for one crop's K x h x w heatmaps."""
    peaks, scores = heatmap_peaks(heatmaps, method=method)
    crop_xy = (peaks + 0.5) * float(stride)
    return np.concatenate([transform.to_image(crop_xy), scores[:, None]], axis=1)


def unflip_heatmaps(heatmaps: np.ndarray, channel_permutation: Sequence[int]) -> np.ndarray:
    """Heatmaps predicted on a mirrored crop, mirrored back (... x C x h x w): the columns reversed
    and the left/right channels swapped, so they can be averaged with the unmirrored prediction."""
    hm = np.asarray(heatmaps)[..., ::-1]
    return np.ascontiguousarray(hm[..., list(channel_permutation), :, :])
