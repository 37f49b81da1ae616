"""A synthetic demo project made on the fly: coloured shapes with polygons and keypoints.

Nothing is downloaded. Circles and squares are plain instance classes; triangles carry a keypoint
schema (apex, left, right; left/right swap on a horizontal flip), so every feature has data.

The demo of 40 images is split 32 train / 8 val, and 8 more images form a test split that training
never sees (nor model selection, which uses val): its numbers are the held-out figure to quote.
"""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image, ImageDraw

from workbench.domain import (
    AnnotatedImage,
    Category,
    Dataset,
    ImageRecord,
    Instance,
    KeypointSchema,
    Progress,
    ProjectInfo,
    ValidationError,
)
from workbench.services.dataset import split_project
from workbench.services.imports import import_dataset
from workbench.services.permissions import requires
from workbench.services.projects import create_project
from workbench.services.workspace import Workspace

DEMO_NAME = "Demo shapes"
TRIANGLE_SCHEMA = KeypointSchema(
    names=("apex", "left", "right"), skeleton=((0, 1), (1, 2), (2, 0)), flip_pairs=((1, 2),)
)
CATEGORIES = [
    Category(name="circle", color="#e6194b"),
    Category(name="square", color="#3cb44b"),
    Category(name="triangle", color="#4363d8", keypoints=TRIANGLE_SCHEMA),
]
FILL = {"circle": (220, 40, 60), "square": (50, 170, 70), "triangle": (60, 90, 210)}
TEST_SPLIT_FROM = 40
"""Demos of at least this many images get ``num_images // 5`` more as a test split (the small demos
that tests make stay train/val only, as they were)."""


def _shape(
    kind: str, cx: float, cy: float, r: float, angle: float
) -> tuple[list[float], tuple[float, ...] | None]:
    if kind == "circle":
        pts = [
            (cx + r * math.cos(2 * math.pi * k / 24), cy + r * math.sin(2 * math.pi * k / 24))
            for k in range(24)
        ]
        return [c for p in pts for c in p], None
    if kind == "square":
        pts = [
            (
                cx + r * math.cos(angle + math.pi / 4 + k * math.pi / 2),
                cy + r * math.sin(angle + math.pi / 4 + k * math.pi / 2),
            )
            for k in range(4)
        ]
        return [c for p in pts for c in p], None
    # triangle: apex up (roughly), then the left and right base corners as seen in the image
    apex = (cx + r * math.sin(angle), cy - r * math.cos(angle))
    left = (cx - r * math.cos(angle + math.pi / 6), cy + r * math.sin(angle + math.pi / 6) * 0.9)
    right = (cx + r * math.cos(angle - math.pi / 6), cy + r * math.sin(-angle + math.pi / 6) * 0.9)
    pts = [apex, right, left]
    kps = (apex[0], apex[1], 2, left[0], left[1], 2, right[0], right[1], 2)
    return [c for p in pts for c in p], kps


def make_demo_dataset(num_images: int = 40, *, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    items: list[AnnotatedImage] = []
    for i in range(num_images):
        w, h = (320, 240) if i % 4 else (240, 320)
        base = rng.integers(150, 235, size=3)
        grad = np.linspace(0, 30, w, dtype=np.float32)[None, :, None]
        arr = np.clip(base[None, None, :] + grad + rng.normal(0, 6, size=(h, w, 3)), 0, 255).astype(np.uint8)
        img = Image.fromarray(arr)
        draw = ImageDraw.Draw(img)
        instances: list[Instance] = []
        for _ in range(int(rng.integers(1, 5))):
            kind = ("circle", "square", "triangle")[int(rng.integers(0, 3))]
            r = float(rng.uniform(18, 48))
            cx, cy = float(rng.uniform(r + 2, w - r - 2)), float(rng.uniform(r + 2, h - r - 2))
            poly, kps = _shape(kind, cx, cy, r, float(rng.uniform(-0.3, 0.3)))
            shade = tuple(
                int(c) for c in np.clip(np.array(FILL[kind]) + rng.integers(-25, 25, size=3), 0, 255)
            )
            draw.polygon([(poly[k], poly[k + 1]) for k in range(0, len(poly), 2)], fill=shade)
            poly = [round(c, 2) for c in poly]
            kps = tuple(round(c, 2) if k % 3 != 2 else int(c) for k, c in enumerate(kps)) if kps else None
            instances.append(Instance(category=kind, polygons=(tuple(poly),), keypoints=kps, source="manual"))
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        rec = ImageRecord(file_name=f"demo_{i:03d}.png", width=w, height=h, status="done")
        items.append(AnnotatedImage(image=rec, instances=tuple(instances), data=buf.getvalue()))
    return Dataset(categories=list(CATEGORIES), items=items)


@requires("project.create")
def create_demo_project(
    ws: Workspace,
    *,
    name: str = DEMO_NAME,
    num_images: int = 40,
    seed: int = 0,
    progress: Progress = None,
    test_images: int | None = None,
) -> ProjectInfo:
    """A project of synthetic shapes: ``num_images`` split 80/20 into train and val, plus
    ``test_images`` more in the test split (None: ``num_images // 5`` from 40 images on, else none).
    The train and val images and their splits are the same as without a test split.

    Refused for fewer than one image (``--images 0`` or ``-5`` made an empty 'demo'), and removed
    again if filling it fails, so no half-made demo stays behind."""
    from workbench.services.projects import delete_project, get_project

    if num_images < 1:
        raise ValidationError(f"a demo project needs at least 1 image, got {num_images}")
    if test_images is None:
        test_images = num_images // 5 if num_images >= TEST_SPLIT_FROM else 0
    if test_images < 0:
        raise ValidationError(f"a demo's test split cannot have {test_images} images")
    ds = make_demo_dataset(num_images + test_images, seed=seed)
    train_val = Dataset(categories=ds.categories, items=ds.items[:num_images])
    test = Dataset(categories=ds.categories, items=ds.items[num_images:])
    info = create_project(ws, name, description="Synthetic shapes with polygons and triangle keypoints")
    try:
        import_dataset(ws, info.slug, train_val, progress=progress)
        split_project(ws, info.slug, ratios=(0.8, 0.2, 0.0), seed=seed)
        if test.items:
            import_dataset(ws, info.slug, test, progress=progress)
            split_project(ws, info.slug, ratios=(0.0, 0.0, 1.0), seed=seed, only_unassigned=True)
    except BaseException:
        delete_project(ws, info.slug)
        raise
    return get_project(ws, info.slug)
