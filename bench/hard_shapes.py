"""A harder synthetic instance-segmentation set for bench/quality.py, deterministic by seed.

Many small, overlapping shapes (circles, squares, triangles, stars) on textured backgrounds
(noise, stripes, checkers, blobs in colours near the shapes'). Later shapes occlude earlier ones;
each ground-truth mask is the *visible* part, kept only while it stays one piece without holes and
at least ``MIN_VISIBLE`` of the shape is seen, so a polygon (YOLO's label format) and an RLE mask
(ours) describe the same pixels. Nothing is downloaded.

    .venv/bin/python bench/hard_shapes.py --images 8 --out /tmp/hard_preview   # PNGs to look at
"""

from __future__ import annotations

import argparse
import io
import math
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from workbench.domain import AnnotatedImage, Category, Dataset, ImageRecord, Instance
from workbench.geometry import mask_to_rle

W, H = 320, 256
CLASSES = ("circle", "square", "triangle", "star")
COLORS = {"circle": "#e6194b", "square": "#3cb44b", "triangle": "#4363d8", "star": "#f58231"}
HUE = {"circle": (205, 60, 60), "square": (60, 160, 70), "triangle": (70, 90, 200), "star": (225, 150, 40)}
MIN_VISIBLE = 0.4
MIN_AREA_PX = 25


def _polygon(kind: str, cx: float, cy: float, r: float, angle: float) -> np.ndarray:
    if kind == "circle":
        k = np.arange(32) * 2 * math.pi / 32
        rx, ry = r, r * 0.75 + r * 0.25 * math.cos(angle * 3)  # circles and ellipses
        pts = np.stack([cx + rx * np.cos(k + angle), cy + ry * np.sin(k + angle)], 1)
    elif kind == "square":
        k = angle + math.pi / 4 + np.arange(4) * math.pi / 2
        pts = np.stack([cx + r * np.cos(k), cy + r * np.sin(k)], 1)
    elif kind == "triangle":
        k = angle - math.pi / 2 + np.arange(3) * 2 * math.pi / 3
        pts = np.stack([cx + r * np.cos(k), cy + r * np.sin(k)], 1)
    else:
        k = angle - math.pi / 2 + np.arange(10) * math.pi / 5
        rad = np.where(np.arange(10) % 2 == 0, r, r * 0.45)
        pts = np.stack([cx + rad * np.cos(k), cy + rad * np.sin(k)], 1)
    return pts


def _background(rng: np.random.Generator) -> np.ndarray:
    base = rng.integers(60, 200, size=3).astype(np.float32)
    img = np.broadcast_to(base, (H, W, 3)).copy()
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    kind = int(rng.integers(0, 4))
    other = rng.integers(40, 230, size=3).astype(np.float32)
    if kind == 0:  # stripes at an angle
        a, period = rng.uniform(0, math.pi), rng.uniform(6, 24)
        t = (np.sin((xx * math.cos(a) + yy * math.sin(a)) * 2 * math.pi / period) > 0)[..., None]
        img = np.where(t, img, 0.6 * img + 0.4 * other)
    elif kind == 1:  # checkers
        s = int(rng.integers(8, 28))
        t = (((xx // s) + (yy // s)) % 2 == 1)[..., None]
        img = np.where(t, img, 0.5 * img + 0.5 * other)
    elif kind == 2:  # soft blobs in shape-like colours (distractors without edges)
        for _ in range(int(rng.integers(3, 8))):
            c = np.array(HUE[CLASSES[int(rng.integers(0, len(CLASSES)))]], np.float32)
            bx, by, br = rng.uniform(0, W), rng.uniform(0, H), rng.uniform(15, 60)
            wgt = np.exp(-((xx - bx) ** 2 + (yy - by) ** 2) / (2 * br**2))[..., None] * 0.6
            img = img * (1 - wgt) + c * wgt
    img += rng.normal(0, rng.uniform(4, 14), size=(H, W, 3)).astype(np.float32)  # grain
    return np.clip(img, 0, 255)


def _one_piece(mask: np.ndarray) -> bool:
    """One connected region without holes (so one polygon describes it exactly)."""
    contours, hierarchy = cv2.findContours(mask.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    return len(contours) == 1 and (hierarchy is None or hierarchy[0][0][2] < 0)


def make_image(rng: np.random.Generator, index: int) -> AnnotatedImage:
    img = _background(rng)
    labels = np.zeros((H, W), np.int32)  # 0 background, k = k-th placed shape (1-based), top wins
    full_area: list[int] = []
    kinds: list[str] = []
    wanted = int(rng.integers(8, 26))
    for _ in range(wanted * 4):
        if len(kinds) >= wanted:
            break
        kind = CLASSES[int(rng.integers(0, len(CLASSES)))]
        r = float(np.exp(rng.uniform(math.log(5), math.log(30))))  # many small ones
        cx, cy = rng.uniform(-0.3 * r, W + 0.3 * r), rng.uniform(-0.3 * r, H + 0.3 * r)
        pts = _polygon(kind, cx, cy, r, float(rng.uniform(0, 2 * math.pi)))
        shape = np.zeros((H, W), np.uint8)
        cv2.fillPoly(shape, [np.round(pts * 4).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=2)
        if shape.sum() < MIN_AREA_PX:
            continue
        trial = labels.copy()
        trial[shape > 0] = len(kinds) + 1
        ok = True
        for k in range(1, len(kinds) + 2):  # every shape, the new one too, stays a clean visible piece
            vis = trial == k
            area = full_area[k - 1] if k <= len(kinds) else int(shape.sum())
            if vis.sum() < max(MIN_AREA_PX, MIN_VISIBLE * area) or not _one_piece(vis):
                ok = False
                break
        if not ok:
            continue
        labels = trial
        full_area.append(int(shape.sum()))
        kinds.append(kind)
        colour = np.clip(np.array(HUE[kind], np.float32) + rng.integers(-45, 45, size=3), 0, 255)
        shade = rng.uniform(0.75, 1.15, size=(H, W, 1)).astype(np.float32) if rng.random() < 0.3 else 1.0
        img = np.where(shape[..., None] > 0, np.clip(colour * shade, 0, 255), img)
    img = np.clip(img + rng.normal(0, 4, size=img.shape), 0, 255).astype(np.uint8)
    instances = tuple(
        Instance(category=kind, rle=mask_to_rle(labels == k + 1), source="manual")
        for k, kind in enumerate(kinds)
    )
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    rec = ImageRecord(file_name=f"hard_{index:04d}.png", width=W, height=H, status="done")
    return AnnotatedImage(image=rec, instances=instances, data=buf.getvalue())


def make_hard_dataset(num_images: int = 250, *, seed: int = 0) -> Dataset:
    """``num_images`` images; the same seed gives the same pixels and masks."""
    rng = np.random.default_rng(seed)
    items = [make_image(rng, i) for i in range(num_images)]
    return Dataset(categories=[Category(name=c, color=COLORS[c]) for c in CLASSES], items=items)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    ds = make_hard_dataset(args.images, seed=args.seed)
    for it in ds.items:
        (args.out / it.image.file_name).write_bytes(it.data or b"")
    n = sum(len(it.instances) for it in ds.items)
    print(f"{len(ds.items)} images, {n} instances ({n / max(len(ds.items), 1):.1f} per image) in {args.out}")


if __name__ == "__main__":
    main()
