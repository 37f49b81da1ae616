"""A synthetic shapes dataset written as a run folder: tests, benchmarks and smoke runs, nothing downloaded.

Classes: ``circle`` and ``square`` (masks only) and ``triangle`` with three keypoints
(``left``, ``right``, ``apex``; flip pair left/right), so one run exercises masks and keypoints
together, classes with and without a schema, and (optionally) images without instances.
"""

from __future__ import annotations

import json
import math
import platform
import random
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from workbench.domain import AnnotatedImage, Category, Dataset, ImageRecord, Instance, KeypointSchema
from workbench.train.config import TrainConfig, save_config, write_json_atomic

TRIANGLE_SCHEMA = KeypointSchema(("left", "right", "apex"), ((0, 1), (1, 2), (2, 0)), ((0, 1),))
CATEGORIES = [
    Category("circle", id=1, color="#e41a1c"),
    Category("square", id=2, color="#377eb8"),
    Category("triangle", id=3, color="#4daf4a", keypoints=TRIANGLE_SCHEMA),
]
_COLORS = {"circle": (220, 40, 40), "square": (40, 90, 220), "triangle": (40, 200, 60)}


def _shape(kind: str, cx: float, cy: float, r: float) -> tuple[tuple[float, ...], tuple[float, ...] | None]:
    if kind == "circle":
        pts = [(cx + r * math.cos(2 * math.pi * i / 24), cy + r * math.sin(2 * math.pi * i / 24)) for i in range(24)]
        return tuple(c for p in pts for c in p), None
    if kind == "square":
        pts = [(cx - r, cy - r), (cx + r, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
        return tuple(c for p in pts for c in p), None
    left, right, apex = (cx - r, cy + r * 0.8), (cx + r, cy + r * 0.8), (cx, cy - r)
    kps = (left[0], left[1], 2, right[0], right[1], 2, apex[0], apex[1], 2)
    return (*left, *right, *apex), kps


def make_shapes_items(
    n: int, *, size_wh: tuple[int, int] = (128, 96), seed: int = 0, empty_every: int = 0, max_shapes: int = 3
) -> tuple[list[AnnotatedImage], list[np.ndarray]]:
    """``n`` images with 1..max_shapes non-overlapping shapes; every ``empty_every``-th has none."""
    rng = random.Random(seed)
    w, h = size_wh
    items, pixels = [], []
    for i in range(n):
        bg = tuple(rng.randint(0, 60) for _ in range(3))
        im = Image.new("RGB", (w, h), bg)
        draw = ImageDraw.Draw(im)
        instances: list[Instance] = []
        placed: list[tuple[float, float, float]] = []
        count = 0 if empty_every and i % empty_every == empty_every - 1 else rng.randint(1, max_shapes)
        for _ in range(count * 10):
            if len(instances) >= count:
                break
            r = rng.uniform(0.1, 0.2) * min(w, h)
            cx, cy = rng.uniform(r + 1, w - r - 1), rng.uniform(r + 1, h - r - 1)
            if any(math.hypot(cx - x, cy - y) < r + rr + 2 for x, y, rr in placed):
                continue
            placed.append((cx, cy, r))
            kind = rng.choice(["circle", "square", "triangle"])
            poly, kps = _shape(kind, cx, cy, r)
            draw.polygon(list(zip(poly[::2], poly[1::2], strict=True)), fill=_COLORS[kind])
            instances.append(Instance(kind, polygons=(poly,), keypoints=kps))
        arr = np.asarray(im)
        noise = np.random.default_rng(seed * 7919 + i).integers(-12, 13, arr.shape)
        arr = np.clip(arr.astype(np.int16) + noise, 0, 255).astype(np.uint8)
        rec = ImageRecord(file_name=f"img_{seed}_{i:04d}.png", width=w, height=h, id=i + 1)
        items.append(AnnotatedImage(image=rec, instances=tuple(instances)))
        pixels.append(arr)
    return items, pixels


def package_versions() -> dict[str, Any]:
    import albumentations
    import torch
    import torchvision

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "albumentations": albumentations.__version__,
        "numpy": np.__version__,
    }


def write_shapes_run(
    run_dir: Path,
    config: TrainConfig,
    *,
    n_train: int = 8,
    n_val: int = 0,
    size_wh: tuple[int, int] = (128, 96),
    seed: int = 0,
    empty_every: int = 0,
    absolute_paths: bool = False,
) -> Path:
    """A complete run folder (dataset/, config.json, versions.json) on synthetic shapes."""
    from workbench.formats.coco.write import dataset_to_coco

    run_dir = Path(run_dir)
    images = run_dir / "dataset" / "images"
    images.mkdir(parents=True, exist_ok=True)
    splits = {"train": (n_train, seed), "val": (n_val, seed + 1)}
    for split, (n, s) in splits.items():
        if split == "val" and n == 0:
            continue
        items, pixels = make_shapes_items(n, size_wh=size_wh, seed=s, empty_every=empty_every)
        if absolute_paths:
            items = [
                AnnotatedImage(
                    image=ImageRecord(str(images / it.image.file_name), it.image.width, it.image.height, id=it.image.id),
                    instances=it.instances,
                )
                for it in items
            ]
        for it, arr in zip(items, pixels, strict=True):
            Image.fromarray(arr).save(images / Path(it.image.file_name).name)
        coco = dataset_to_coco(Dataset(categories=list(CATEGORIES), items=items))
        (run_dir / "dataset" / f"coco_{split}.json").write_text(json.dumps(coco))
    save_config(config, run_dir / "config.json")
    write_json_atomic(run_dir / "versions.json", package_versions())
    return run_dir
