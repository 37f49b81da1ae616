"""The weight-free tools, always available (OpenCV only): box -> mask (GrabCut), magic wand, scissors.

Each takes an upright H x W x 3 uint8 RGB image and a checked :class:`Prompt` in natural pixels and
returns an H x W uint8 0/1 mask. Each works on a crop around the prompt (scaled down past
``MAX_SIDE`` for GrabCut), so a click costs the same on a 24-megapixel photo as on a thumbnail.
"""

from __future__ import annotations

import numpy as np

from workbench.assist.prompts import Prompt
from workbench.domain import ValidationError

MAX_SIDE = 320
"""GrabCut runs on the box's crop scaled to at most this side: its cost grows with the pixels."""
GRABCUT_ITERATIONS = 4
DEFAULT_WAND_TOLERANCE = 24.0
"""Per-channel difference (0-255) from the clicked colour that the wand still fills."""


def _cv2():  # noqa: ANN202 - the module
    import cv2

    return cv2


def _window(box: tuple[float, float, float, float], size_wh: tuple[int, int], margin: int) -> tuple[int, int, int, int]:
    """Integer ``x0, y0, x1, y1`` of the box grown by ``margin`` pixels, inside the image."""
    x, y, w, h = box
    W, H = size_wh
    return (
        max(int(np.floor(x)) - margin, 0),
        max(int(np.floor(y)) - margin, 0),
        min(int(np.ceil(x + w)) + margin, W),
        min(int(np.ceil(y + h)) + margin, H),
    )


def _paste(part: np.ndarray, size_wh: tuple[int, int], x0: int, y0: int) -> np.ndarray:
    out = np.zeros((size_wh[1], size_wh[0]), dtype=np.uint8)
    out[y0 : y0 + part.shape[0], x0 : x0 + part.shape[1]] = part
    return out


def clean_mask(mask: np.ndarray, seeds: list[tuple[int, int]] | None = None) -> np.ndarray:
    """Keep the connected parts under the positive clicks (the largest part without any) and fill
    pinholes (holes under 0.5 % of the part's area, noise rather than a real hole)."""
    cv2 = _cv2()
    m = (mask != 0).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    if n <= 1:
        return m
    keep = {int(labels[y, x]) for x, y in (seeds or []) if labels[y, x] > 0}
    if not keep:
        keep = {1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))}
    m = np.isin(labels, list(keep)).astype(np.uint8)
    inv = 1 - m
    hn, hlabels, hstats, _ = cv2.connectedComponentsWithStats(np.pad(inv, 1), connectivity=4)
    limit = max(4.0, 0.005 * float(m.sum()))
    small = [i for i in range(2, hn) if hstats[i, cv2.CC_STAT_AREA] < limit]  # 1 is the outside
    if small:
        m = np.maximum(m, np.isin(hlabels[1:-1, 1:-1], small).astype(np.uint8))
    return m


def grabcut(image: np.ndarray, prompt: Prompt, *, iterations: int = GRABCUT_ITERATIONS) -> np.ndarray:
    """Box -> mask: GrabCut inside the box, the margin around it as background; positive clicks are
    object and negative ones background for certain (radius 1.5 % of the crop). A box alone whose
    colour model settles on "all background" is retried once with its centre as an object click."""
    mask = _grabcut(image, prompt, iterations)
    if not mask.any() and not prompt.positives and prompt.box_xywh is not None:
        x, y, w, h = prompt.box_xywh
        mask = _grabcut(image, Prompt(prompt.box_xywh, (*prompt.points, (x + w / 2, y + h / 2, True))), iterations)
    return mask


def _grabcut(image: np.ndarray, prompt: Prompt, iterations: int) -> np.ndarray:
    cv2 = _cv2()
    if prompt.box_xywh is None:
        raise ValidationError("grabcut needs a box (--box X,Y,W,H) around the object")
    H, W = image.shape[:2]
    bx, by, bw, bh = prompt.box_xywh
    margin = max(8, int(0.1 * max(bw, bh)))
    x0, y0, x1, y1 = _window(prompt.box_xywh, (W, H), margin)
    crop = image[y0:y1, x0:x1]
    scale = min(1.0, MAX_SIDE / max(crop.shape[:2]))
    cw, ch = max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale))
    small = cv2.resize(crop, (cw, ch), interpolation=cv2.INTER_AREA) if scale < 1 else crop
    gc = np.full((ch, cw), cv2.GC_BGD, dtype=np.uint8)
    ix0, iy0 = int((bx - x0) * scale), int((by - y0) * scale)
    ix1, iy1 = int(np.ceil((bx + bw - x0) * scale)), int(np.ceil((by + bh - y0) * scale))
    gc[iy0:iy1, ix0:ix1] = cv2.GC_PR_FGD
    if not (gc == cv2.GC_BGD).any():  # the box is the whole image: its border ring is likely background
        gc[[0, -1], :] = cv2.GC_PR_BGD
        gc[:, [0, -1]] = cv2.GC_PR_BGD
    r = max(2, int(0.015 * max(cw, ch)))
    for (px, py), value in [(p, cv2.GC_FGD) for p in prompt.positives] + [(p, cv2.GC_BGD) for p in prompt.negatives]:
        cx, cy = int((px - x0) * scale), int((py - y0) * scale)
        if 0 <= cx < cw and 0 <= cy < ch:
            cv2.circle(gc, (cx, cy), r, int(value), -1)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    bgr = np.ascontiguousarray(small[:, :, ::-1])
    cv2.grabCut(bgr, gc, None, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)
    fg = ((gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)).astype(np.uint8)
    if scale < 1:
        fg = (cv2.resize(fg.astype(np.float32), (crop.shape[1], crop.shape[0]), interpolation=cv2.INTER_LINEAR) >= 0.5).astype(np.uint8)
    seeds = [(int(x) - x0, int(y) - y0) for x, y in prompt.positives]
    return _paste(clean_mask(fg, seeds), (W, H), x0, y0)


def magic_wand(image: np.ndarray, prompt: Prompt, *, tolerance: float = DEFAULT_WAND_TOLERANCE) -> np.ndarray:
    """Flood fill from each positive click over pixels within ``tolerance`` of the clicked colour
    (fixed range, so a slow gradient does not leak), inside the box when one is given; negative
    clicks remove what a fill from them reaches. The image is smoothed first (5 x 5 Gaussian) so
    sensor noise does not leave a sieve."""
    cv2 = _cv2()
    if not prompt.positives:
        raise ValidationError("the magic wand needs a click on the object (--point X,Y)")
    if not 0 <= tolerance <= 255:
        raise ValidationError(f"the wand tolerance is a colour difference 0-255, got {tolerance}")
    H, W = image.shape[:2]
    x0, y0, x1, y1 = _window(prompt.box_xywh, (W, H), 0) if prompt.box_xywh else (0, 0, W, H)
    crop = cv2.GaussianBlur(np.ascontiguousarray(image[y0:y1, x0:x1]), (5, 5), 0)
    t = (float(tolerance),) * 3
    flags = 8 | cv2.FLOODFILL_MASK_ONLY | cv2.FLOODFILL_FIXED_RANGE | (1 << 8)

    def fill(px: float, py: float) -> np.ndarray:
        buf = np.zeros((crop.shape[0] + 2, crop.shape[1] + 2), dtype=np.uint8)
        cx, cy = int(px) - x0, int(py) - y0
        if not (0 <= cx < crop.shape[1] and 0 <= cy < crop.shape[0]):
            raise ValidationError(f"the click {px:g},{py:g} lies outside the box")
        cv2.floodFill(crop, buf, (cx, cy), (0, 0, 0), t, t, flags)
        return buf[1:-1, 1:-1]

    m = np.zeros(crop.shape[:2], dtype=np.uint8)
    for px, py in prompt.positives:
        m |= fill(px, py)
    for px, py in prompt.negatives:
        if prompt.box_xywh is None or (x0 <= px < x1 and y0 <= py < y1):
            m &= 1 - fill(px, py)
    seeds = [(int(x) - x0, int(y) - y0) for x, y in prompt.positives]
    return _paste(clean_mask(m, seeds), (W, H), x0, y0)


def scissors(image: np.ndarray, prompt: Prompt) -> np.ndarray:
    """Clicks along the outline, in order -> the closed edge-following path through them
    (``IntelligentScissorsMB``: the cheapest path between consecutive clicks over Canny edges and
    gradients), filled. Needs 3 clicks or more."""
    cv2 = _cv2()
    pts = [(x, y) for x, y, _ in prompt.points]
    if len(pts) < 3:
        raise ValidationError(f"intelligent scissors need at least 3 clicks along the outline, got {len(pts)}")
    H, W = image.shape[:2]
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    box = (min(xs), min(ys), max(xs) - min(xs) + 1, max(ys) - min(ys) + 1)
    x0, y0, x1, y1 = _window(box, (W, H), 16)
    crop = np.ascontiguousarray(image[y0:y1, x0:x1])
    tool = cv2.segmentation.IntelligentScissorsMB()
    tool.setEdgeFeatureCannyParameters(32, 100)
    tool.setGradientMagnitudeMaxLimit(200)
    tool.applyImage(crop)
    local = [(int(x) - x0, int(y) - y0) for x, y in pts]
    path: list[np.ndarray] = []
    for i, src in enumerate(local):
        dst = local[(i + 1) % len(local)]
        tool.buildMap(src)
        path.append(tool.getContour(dst).reshape(-1, 2))  # from src to dst
    outline = np.concatenate(path).astype(np.int32)
    m = np.zeros(crop.shape[:2], dtype=np.uint8)
    cv2.fillPoly(m, [outline], 1)
    return _paste(m, (W, H), x0, y0)
