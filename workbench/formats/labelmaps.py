"""Label maps for semantic segmentation and pose training: computed per image and exported as one folder.

Channels: every category but ``IGNORE_LABEL`` gets one, in the order given; channel ``c`` is class
value ``c + 1`` in the index map (0 is background, 255 ignore). Masks come from ``geometry`` so the
pixels are pycocotools' rasterisation, i.e. the union of ``annToMask`` per class.

Layout of an export folder (``export_labelmaps``), written atomically::

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
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Literal

import numpy as np
from PIL import Image

from workbench.domain import (
    AnnotatedImage,
    Category,
    Dataset,
    Instance,
    KeypointSchema,
    Progress,
    ValidationError,
)
from workbench.geometry.masks import instance_to_mask
from workbench.utils.staged import OLD_PREFIX, STAGE_PREFIX, staged_folder, sweep

__all__ = [
    "IGNORE_INDEX",
    "MAX_CLASSES",
    "binary_label_maps",
    "export_index_maps",
    "export_labelmaps",
    "image_stems",
    "keypoint_heatmaps",
    "label_classes",
    "palette",
    "sanitise_name",
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
    """Each shaped instance's mask, in drawing order: lower ``z_order`` first, ties in the item's order
    (what the annotator shows on top is painted last, so it wins where shapes overlap)."""
    size_wh = item.image.size_wh
    out = []
    for inst in sorted(item.instances, key=lambda i: i.z_order):  # sorted() is stable
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
    """H x W uint8: 0 background, class c -> c + 1, higher ``z_order`` over lower (then later over
    earlier), ignore 255 on top."""
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


# --------------------------------------------------------------------------------------------------
# export: one folder per call

_BINARY_PALETTE = [0, 0, 0, 255, 255, 255] + [0, 0, 0] * 254


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
    progress: Progress = None,
) -> Path:
    """Write index maps, per-class binary maps and keypoint heatmaps of every image; return ``out_dir``.

    The folder's content is staged and moved in at the end (``utils.staged``), so readers never
    see half an export and a failure (a full disk) leaves any previous export in place.
    """
    if layout not in ("png", "npz"):
        raise ValidationError(f"label-map layout must be 'png' or 'npz', got {layout!r}")
    if heatmap_sigma is not None and not (math.isfinite(heatmap_sigma) and heatmap_sigma > 0):  # inf overflowed the kernel size
        raise ValidationError(f"heatmap sigma must be a positive number of pixels or None, got {heatmap_sigma}")
    out_dir = Path(out_dir)
    if out_dir.is_dir() and not out_dir.is_symlink():
        sweep(out_dir)  # leftovers of an interrupted export do not make the folder "not ours"
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

    with staged_folder(out_dir, what="label-map export") as stage:
        for old in out_dir.iterdir():  # an earlier export (checked above) is replaced as a whole
            if not old.name.startswith((STAGE_PREFIX, OLD_PREFIX)):
                stage.drop(old.name)
        index_dir = stage.put("index", folder=True)
        binary_dir = stage.put("binary", folder=True)
        if kp_cats:
            kp_dir = stage.put("keypoints", folder=True)
        total = len(dataset.items)
        for done, (stem, item) in enumerate(zip(stems, dataset.items, strict=True), start=1):
            _save_png(semantic_index_map(item, dataset.categories), index_dir / f"{stem}.png", pal)
            maps = binary_label_maps(item, dataset.categories)
            if layout == "png":
                folder = binary_dir / stem
                folder.mkdir()
                for c, fname in enumerate(class_files):
                    _save_png(maps[c], folder / f"{fname}.png", _BINARY_PALETTE)
            else:
                np.savez_compressed(
                    binary_dir / f"{stem}.npz",
                    masks=maps,
                    classes=np.array([c.name for c in classes], dtype=np.str_),
                )
            if kp_cats:
                heatmaps = {
                    key: keypoint_heatmaps(item, cat.keypoints, cat.name, sigma=heatmap_sigma)
                    for key, cat in zip(kp_keys, kp_cats, strict=True)
                    if cat.keypoints is not None
                }
                np.savez_compressed(kp_dir / f"{stem}.npz", **heatmaps)
            if progress is not None:
                progress(done, total)
        stage.put("classes.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return out_dir


def export_index_maps(
    dataset: Dataset, maps: Sequence[np.ndarray], out_dir: Path, *, source: str = "predicted", progress: Progress = None
) -> Path:
    """Index maps given per item (a model's predictions) laid out as :func:`export_labelmaps` lays
    out ``index/``: ``index/<stem>.png`` with the same stems, class values and palette, and a
    ``classes.json`` of the same format (``source`` says where the maps came from). Staged and moved
    in whole, as the export is; an earlier label-map folder is replaced, anything else refused."""
    if len(maps) != len(dataset.items):
        raise ValidationError(f"{len(maps)} index maps for {len(dataset.items)} images")
    out_dir = Path(out_dir)
    if out_dir.is_dir() and not out_dir.is_symlink():
        sweep(out_dir)
    _check_replaceable(out_dir)
    classes = label_classes(dataset.categories)
    pal = palette()
    stems = image_stems(dataset)
    meta = {
        "format": "workbench-labelmaps",
        "version": 1,
        "source": source,
        "background_index": 0,
        "ignore_index": IGNORE_INDEX,
        "classes": [
            {"index": i + 1, "name": c.name, "color": _hex(pal[3 * (i + 1) : 3 * (i + 2)]), "category_id": c.id}
            for i, c in enumerate(classes)
        ],
        "images": [
            {"stem": stem, "file_name": it.image.file_name, "id": it.image.id, "width": it.image.width,
             "height": it.image.height}
            for stem, it in zip(stems, dataset.items, strict=True)
        ],
    }
    with staged_folder(out_dir, what="label-map export") as stage:
        for old in out_dir.iterdir():
            if not old.name.startswith((STAGE_PREFIX, OLD_PREFIX)):
                stage.drop(old.name)
        index_dir = stage.put("index", folder=True)
        for done, (stem, item, m) in enumerate(zip(stems, dataset.items, maps, strict=True), start=1):
            m = np.asarray(m)
            if m.shape != (item.image.height, item.image.width):
                raise ValidationError(f"{item.image.file_name}: index map {m.shape} is not the image's {item.image.height}x{item.image.width}")
            _save_png(m, index_dir / f"{stem}.png", pal)
            if progress is not None:
                progress(done, len(maps))
        stage.put("classes.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return out_dir


def _check_replaceable(out_dir: Path) -> None:
    """Refuse a target the export would destroy: a file, or a folder holding anything but an
    earlier label-map export (the whole folder is replaced, so its other files would be lost)."""
    if not out_dir.exists() and not out_dir.is_symlink():
        return
    if not out_dir.is_dir() or out_dir.is_symlink():
        raise ValidationError(f"{out_dir}: exists and is not a folder; label maps need a folder")
    if not any(p for p in out_dir.iterdir() if not p.name.startswith((STAGE_PREFIX, OLD_PREFIX))):
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

