"""Pieces the folder-shaped formats share (YOLO, Pascal VOC, mask PNGs): image files found by stem,
their upright size read from the header, and index maps cut into instances.

These formats carry no image size (YOLO) or one that tools get wrong for EXIF-rotated photos, and
the store keeps the upright image: :func:`upright_size` reads the header only and applies the EXIF
orientation, as the decoder does when the image is imported.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from workbench.domain import Instance, ValidationError
from workbench.formats.paths import DatasetRoot
from workbench.geometry import mask_to_rle, with_bbox_area
from workbench.images.decode import pixel_limit_lifted, read_orientation
from workbench.images.sources import IMAGE_SUFFIXES

__all__ = [
    "IMAGE_SUFFIXES",
    "image_files",
    "images_by_stem",
    "mask_instances",
    "read_label_png",
    "unique_stems",
    "upright_size",
]


def upright_size(path: Path, error: type[ValidationError] = ValidationError) -> tuple[int, int]:
    """Width and height of the image as the store keeps it (EXIF orientation applied); header only."""
    try:
        with pixel_limit_lifted(), Image.open(path) as im:
            w, h = im.size
            if read_orientation(im) in (5, 6, 7, 8):
                w, h = h, w
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise error(f"{path}: not a readable image ({exc})") from None
    return int(w), int(h)


def image_files(folder: Path, root: DatasetRoot) -> Iterator[Path]:
    """Image files under ``folder`` (recursive, sorted, links to folders not followed) inside ``root``."""
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in sorted(filenames):
            if os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES:
                p = Path(dirpath) / name
                if root.inside(os.path.normpath(os.path.abspath(p))):
                    yield p


def images_by_stem(folder: Path, root: DatasetRoot) -> dict[str, Path]:
    """Stem (path relative to ``folder`` without suffix, ``/``-separated) -> image file; the first
    file in sorted order wins where two share a stem (``a.jpg`` and ``a.png``)."""
    out: dict[str, Path] = {}
    for p in image_files(folder, root):
        stem = p.relative_to(folder).with_suffix("").as_posix()
        out.setdefault(stem, p)
    return out


def unique_stems(names: list[str], ids: list[int | None]) -> list[str]:
    """File stems for an export's images, unique case-insensitively (``a.jpg`` and ``a.png`` share
    the label file ``a.txt`` otherwise): a repeated stem gets ``_<image id>`` (or ``_<n>``)."""
    out: list[str] = []
    seen: set[str] = set()
    for n, (name, image_id) in enumerate(zip(names, ids, strict=True)):
        stem = Path(name).with_suffix("").as_posix()
        candidate, k = stem, 1
        while candidate.lower() in seen:
            candidate = f"{stem}_{image_id if image_id is not None and k == 1 else f'{n}_{k}'}"
            k += 1
        seen.add(candidate.lower())
        out.append(candidate)
    return out


def read_label_png(path: Path, error: type[ValidationError] = ValidationError) -> np.ndarray:
    """An H x W array of a label PNG's values: palette indices for palette PNGs (VOC), grey values
    for grey ones, H x W x 3 colours for RGB ones (the caller maps colours to classes)."""
    try:
        with pixel_limit_lifted(), Image.open(path) as im:
            im.load()
            if im.mode in ("P", "L", "1", "I", "I;16", "I;16B", "I;16L"):
                return np.asarray(im).astype(np.int64)
            if im.mode in ("RGBA", "LA", "PA"):
                rgba = np.asarray(im.convert("RGBA"))
                rgb = rgba[..., :3].astype(np.int64)
                rgb[rgba[..., 3] == 0] = 0  # transparent pixels are background
                return rgb
            return np.asarray(im.convert("RGB")).astype(np.int64)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise error(f"{path}: not a readable PNG ({exc})") from None


def mask_instances(
    mask: np.ndarray, category: str, size_wh: tuple[int, int], *, split_components: bool = True
) -> list[Instance]:
    """Instances of ``category`` from a boolean H x W mask: one per 8-connected component, or one
    for the whole mask (``split_components=False``); RLE shapes, so holes stay."""
    import cv2  # lazily, as geometry does: OpenCV is heavy

    m = np.ascontiguousarray(mask, dtype=np.uint8)
    if not m.any():
        return []
    if not split_components:
        parts = [m]
    else:
        n, labels, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
        parts = []
        for k in range(1, n):  # each component cut from its own box: many small ones stay cheap
            x, y, w, h = (int(v) for v in stats[k, :4])
            part = np.zeros_like(m)
            part[y : y + h, x : x + w] = labels[y : y + h, x : x + w] == k
            parts.append(part)
    return [
        with_bbox_area(Instance(category, rle=mask_to_rle(p), source="imported"), size_wh) for p in parts
    ]
