"""Per-class binary label maps, the semantic index map and keypoint heatmaps of one image.

Channels: every category but ``IGNORE_LABEL`` gets one, in the order given; channel ``c`` is class
value ``c + 1`` in the index map (0 is background, 255 ignore). Masks come from ``geometry`` so the
pixels are pycocotools' rasterisation, i.e. the union of ``annToMask`` per class.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from workbench.domain import AnnotatedImage, Category, Instance, KeypointSchema, ValidationError
from workbench.geometry.masks import instance_to_mask

__all__ = [
    "IGNORE_INDEX",
    "MAX_CLASSES",
    "binary_label_maps",
    "keypoint_heatmaps",
    "label_classes",
    "palette",
    "semantic_index_map",
]

IGNORE_INDEX = 255
"""Index-map value of ignore regions (``IGNORE_LABEL`` instances)."""
MAX_CLASSES = 254
"""A uint8 index map holds background 0, classes 1..254 and ignore 255."""


def label_classes(categories: Sequence[Category]) -> list[Category]:
    """Classes that get a channel: all but ``IGNORE_LABEL``, in order (channel c <-> index value c + 1)."""
    return [c for c in categories if not c.is_ignore]


def _channel_of(item: AnnotatedImage, categories: Sequence[Category]) -> dict[str, int]:
    classes = label_classes(categories)
    channels = {c.name: i for i, c in enumerate(classes)}
    known = channels.keys() | {c.name for c in categories}
    for inst in item.instances:
        if inst.category not in known:
            raise ValidationError(
                f"{item.image.file_name}: instance of {inst.category!r} is not among the categories "
                f"{sorted(known)}"
            )
    return channels


def _instance_masks(item: AnnotatedImage) -> list[tuple[Instance, np.ndarray]]:
    size_wh = item.image.size_wh
    out = []
    for inst in item.instances:
        if not inst.has_shape:
            continue
        try:
            mask = instance_to_mask(inst, size_wh)
        except ValidationError as exc:
            raise ValidationError(f"{item.image.file_name}: {exc}") from exc
        out.append((inst, mask))
    return out


def binary_label_maps(item: AnnotatedImage, categories: Sequence[Category]) -> np.ndarray:
    """C x H x W uint8 of 0/1: channel c is the union of all instances of class c (crowds included).

    Classes may overlap (several channels 1 at one pixel); ignore regions are not a channel; instances
    without a shape (keypoints or a box only) draw nothing.
    """
    channels = _channel_of(item, categories)
    h, w = item.image.height, item.image.width
    maps = np.zeros((len(channels), h, w), dtype=np.uint8)
    for inst, mask in _instance_masks(item):
        c = channels.get(inst.category)
        if c is not None:
            np.bitwise_or(maps[c], mask, out=maps[c])
    return maps


def semantic_index_map(item: AnnotatedImage, categories: Sequence[Category]) -> np.ndarray:
    """H x W uint8: 0 background, class c -> c + 1, later instances over earlier, ignore 255 on top."""
    channels = _channel_of(item, categories)
    if len(channels) > MAX_CLASSES:
        raise ValidationError(
            f"an index map holds at most {MAX_CLASSES} classes (uint8 with 0 and 255 reserved), "
            f"the project has {len(channels)}"
        )
    h, w = item.image.height, item.image.width
    out = np.zeros((h, w), dtype=np.uint8)
    ignore = np.zeros((h, w), dtype=bool)
    for inst, mask in _instance_masks(item):
        c = channels.get(inst.category)
        if c is None:
            ignore |= mask.astype(bool)
        else:
            out[mask.astype(bool)] = c + 1
    out[ignore] = IGNORE_INDEX
    return out


def keypoint_heatmaps(
    item: AnnotatedImage,
    schema: KeypointSchema,
    category: str,
    *,
    sigma: float | None = None,
) -> np.ndarray:
    """K x H x W float32 targets for the keypoints of ``category``'s instances (only v > 0).

    ``sigma=None``: 1 at the pixel holding the joint (the pixel ``floor(x), floor(y)``), 0 elsewhere.
    A sigma (pixels): a Gaussian centred on that pixel's centre, so the peak is exactly 1 at the joint
    pixel, cut at 3 sigma. Several instances combine by maximum; joints outside the image are skipped.
    """
    if sigma is not None and not (math.isfinite(sigma) and sigma > 0):  # inf overflowed the kernel size
        raise ValidationError(f"heatmap sigma must be a positive number of pixels or None, got {sigma}")
    k = schema.num_keypoints
    h, w = item.image.height, item.image.width
    out = np.zeros((k, h, w), dtype=np.float32)
    for n, inst in enumerate(item.instances):
        if inst.category != category or inst.keypoints is None:
            continue
        if len(inst.keypoints) != 3 * k:
            raise ValidationError(
                f"{item.image.file_name}: instance {inst.id if inst.id is not None else n} of {category!r} "
                f"has {len(inst.keypoints) // 3} keypoints, the schema has {k}"
            )
        kp = np.asarray(inst.keypoints, dtype=np.float64).reshape(k, 3)
        for j, (x, y, v) in enumerate(kp):
            if v <= 0 or not (np.isfinite(x) and np.isfinite(y)):
                continue
            px, py = int(np.floor(x)), int(np.floor(y))
            if not (0 <= px < w and 0 <= py < h):
                continue
            if sigma is None:
                out[j, py, px] = 1.0
                continue
            r = int(np.ceil(3 * sigma))
            x0, x1 = max(0, px - r), min(w, px + r + 1)
            y0, y1 = max(0, py - r), min(h, py + r + 1)
            gx = np.exp(-((np.arange(x0, x1) - px) ** 2) / (2 * sigma * sigma))
            gy = np.exp(-((np.arange(y0, y1) - py) ** 2) / (2 * sigma * sigma))
            patch = (gy[:, None] * gx[None, :]).astype(np.float32)
            np.maximum(out[j, y0:y1, x0:x1], patch, out=out[j, y0:y1, x0:x1])
    return out


def palette() -> list[int]:
    """256 x RGB flat palette for index PNGs: PASCAL VOC's colour map.

    Users of VOC-style tools know it: 0 is black, the 256 colours are distinct, and 255 (ignore, VOC's
    'void') is a light cream (224, 224, 192).
    """
    pal: list[int] = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal.extend((r, g, b))
    return pal
