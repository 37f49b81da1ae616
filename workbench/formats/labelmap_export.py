"""Export label maps for semantic segmentation and pose training: one folder, written atomically.

Layout of ``out_dir``::

    classes.json                 classes with index/name/color/file, ignore_index 255, keypoint schemas
    index/<stem>.png             H x W palette PNG: 0 background, class c -> c + 1, 255 ignore
    binary/<stem>/<class>.png    layout "png": one per class, palette PNG whose pixel VALUES are 0/1
                                 (palette 0 black, 1 white, so it also looks right in a viewer)
    binary/<stem>.npz            layout "npz": ``masks`` C x H x W uint8 0/1 and ``classes`` (names)
    keypoints/<stem>.npz         when a category has a keypoint schema: one K x H x W float32 array
                                 per such category, keyed as classes.json's ``keypoints[].key`` says

``<stem>`` is the image's file stem; stems that several images share get ``_<image id>`` appended
(the position in the dataset when an image has no id) so no file overwrites another.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Literal

import numpy as np
from PIL import Image

from workbench.domain import Dataset, ValidationError
from workbench.labelmaps import (
    IGNORE_INDEX,
    binary_label_maps,
    keypoint_heatmaps,
    label_classes,
    palette,
    semantic_index_map,
)

__all__ = ["export_labelmaps", "image_stems", "sanitise_name"]

_BINARY_PALETTE = [0, 0, 0, 255, 255, 255] + [0, 0, 0] * 254

Progress = Callable[[int, int], None]


def sanitise_name(name: str) -> str:
    """A file-name-safe form of a class or image name: letters, digits, ``._-``; others become ``_``."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    return safe or "_"


def _unique_names(names: list[str]) -> list[str]:
    """Make sanitised names unique by appending ``_2``, ``_3``... to later duplicates (case-insensitive,
    so the files also stay apart on macOS and Windows)."""
    seen: set[str] = set()
    out = []
    for name in names:
        candidate, n = name, 1
        while candidate.lower() in seen:
            n += 1
            candidate = f"{name}_{n}"
        seen.add(candidate.lower())
        out.append(candidate)
    return out


def image_stems(dataset: Dataset) -> list[str]:
    """File stem per image, disambiguated with the image id (or position) where stems collide."""
    stems = []
    for item in dataset.items:
        name = PureWindowsPath(PurePosixPath(item.image.file_name).name).name
        stems.append(sanitise_name(Path(name).stem))
    counts = Counter(s.lower() for s in stems)
    out = []
    for i, (stem, item) in enumerate(zip(stems, dataset.items, strict=True)):
        if counts[stem.lower()] > 1:
            stem = f"{stem}_{item.image.id if item.image.id is not None else i}"
        out.append(stem)
    return _unique_names(out)


def _hex(rgb: list[int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def _save_png(array: np.ndarray, path: Path, pal: list[int]) -> None:
    img = Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8))
    img.putpalette(pal)  # turns the "L" image into "P" without touching the pixel values
    img.save(path, format="PNG", optimize=False)


def export_labelmaps(
    dataset: Dataset,
    out_dir: Path,
    *,
    layout: Literal["png", "npz"] = "png",
    heatmap_sigma: float | None = 2.0,
    progress: Progress | None = None,
) -> Path:
    """Write index maps, per-class binary maps and keypoint heatmaps of every image; return ``out_dir``.

    The folder is built beside ``out_dir`` and swapped in at the end, so readers never see half an
    export and a failure leaves any previous export in place.
    """
    if layout not in ("png", "npz"):
        raise ValidationError(f"label-map layout must be 'png' or 'npz', got {layout!r}")
    if heatmap_sigma is not None and not (math.isfinite(heatmap_sigma) and heatmap_sigma > 0):  # inf overflowed the kernel size
        raise ValidationError(f"heatmap sigma must be a positive number of pixels or None, got {heatmap_sigma}")
    out_dir = Path(out_dir)
    _check_replaceable(out_dir)
    classes = label_classes(dataset.categories)
    pal = palette()
    class_files = _unique_names([sanitise_name(c.name) for c in classes])
    kp_cats = [c for c in dataset.categories if c.keypoints is not None and not c.is_ignore]
    kp_keys = _unique_names([sanitise_name(c.name) for c in kp_cats])
    stems = image_stems(dataset)

    meta = {
        "format": "workbench-labelmaps",
        "version": 1,
        "background_index": 0,
        "ignore_index": IGNORE_INDEX,
        "binary_layout": layout,
        "binary_values": "0/1",
        "classes": [
            {
                "index": i + 1,
                "channel": i,
                "name": c.name,
                "color": _hex(pal[3 * (i + 1) : 3 * (i + 2)]),
                "category_id": c.id,
                "file": f"{class_files[i]}.png" if layout == "png" else None,
            }
            for i, c in enumerate(classes)
        ],
        "ignore": {"index": IGNORE_INDEX, "color": _hex(pal[3 * IGNORE_INDEX :])},
        "keypoints": [
            {
                "category": c.name,
                "key": kp_keys[i],
                "names": list(c.keypoints.names),
                "skeleton": [list(e) for e in c.keypoints.skeleton],
                "flip_pairs": [list(e) for e in c.keypoints.flip_pairs],
                "sigma": heatmap_sigma,
            }
            for i, c in enumerate(kp_cats)
            if c.keypoints is not None
        ],
        "images": [
            {
                "stem": stem,
                "file_name": item.image.file_name,
                "id": item.image.id,
                "width": item.image.width,
                "height": item.image.height,
            }
            for stem, item in zip(stems, dataset.items, strict=True)
        ],
    }

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        (tmp / "index").mkdir()
        (tmp / "binary").mkdir()
        if kp_cats:
            (tmp / "keypoints").mkdir()
        total = len(dataset.items)
        for done, (stem, item) in enumerate(zip(stems, dataset.items, strict=True), start=1):
            _save_png(semantic_index_map(item, dataset.categories), tmp / "index" / f"{stem}.png", pal)
            maps = binary_label_maps(item, dataset.categories)
            if layout == "png":
                folder = tmp / "binary" / stem
                folder.mkdir()
                for c, fname in enumerate(class_files):
                    _save_png(maps[c], folder / f"{fname}.png", _BINARY_PALETTE)
            else:
                np.savez_compressed(
                    tmp / "binary" / f"{stem}.npz",
                    masks=maps,
                    classes=np.array([c.name for c in classes], dtype=np.str_),
                )
            if kp_cats:
                heatmaps = {
                    key: keypoint_heatmaps(item, cat.keypoints, cat.name, sigma=heatmap_sigma)
                    for key, cat in zip(kp_keys, kp_cats, strict=True)
                    if cat.keypoints is not None
                }
                np.savez_compressed(tmp / "keypoints" / f"{stem}.npz", **heatmaps)
            if progress is not None:
                progress(done, total)
        (tmp / "classes.json").write_text(
            json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        _swap_into_place(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def _check_replaceable(out_dir: Path) -> None:
    """Refuse a target the export would destroy: a file, or a folder holding anything but an
    earlier label-map export (the whole folder is replaced, so its other files would be lost)."""
    if not out_dir.exists() and not out_dir.is_symlink():
        return
    if not out_dir.is_dir() or out_dir.is_symlink():
        raise ValidationError(f"{out_dir}: exists and is not a folder; label maps need a folder")
    if not any(out_dir.iterdir()):
        return
    try:
        meta = json.loads((out_dir / "classes.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != "workbench-labelmaps":
        raise ValidationError(
            f"{out_dir}: folder is not empty and holds no earlier label-map export; the export "
            "replaces its folder, so choose a new or empty folder"
        )


def _swap_into_place(tmp: Path, out_dir: Path) -> None:
    """Replace ``out_dir`` by ``tmp``: a rename each, so the folder is never seen half written."""
    if not out_dir.exists():
        os.replace(tmp, out_dir)
        return
    if not out_dir.is_dir():
        raise ValidationError(f"{out_dir}: exists and is not a folder; label maps need a folder")
    old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
    old.rmdir()
    os.replace(out_dir, old)
    try:
        os.replace(tmp, out_dir)
    except BaseException:
        os.replace(old, out_dir)
        raise
    shutil.rmtree(old, ignore_errors=True)
