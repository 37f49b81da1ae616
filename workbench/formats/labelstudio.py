"""Label Studio JSON exports ("JSON" and "JSON-MIN") -> domain records.

"JSON" is a list of tasks, each with ``data`` (the image path) and ``annotations`` whose ``result``
lists regions; "JSON-MIN" is one flat record per annotation: the task's data keys, and one list of
region values per control name. Coordinates are percent of the image (``original_width`` x
``original_height``). Regions map onto instances like this:

- ``rectanglelabels`` -> a box-only instance; rotated (``rotation`` degrees clockwise about the
  top-left corner ``x, y``) -> its 4 corners as a polygon; clipped to the image;
- ``polygonlabels`` -> a polygon; ``brushlabels`` -> an RLE mask (Label Studio's own RLE of the
  RGBA canvas, see :func:`decode_ls_rle`; the alpha channel is the mask);
- ``keypointlabels`` -> a keypoint: with a ``parentID`` naming a region, a keypoint of that
  instance (its class's schema lists the point labels in first-seen order); alone, a single-point
  instance of the class named by its label (LabelMe's convention);
- per-region ``choices``/``textarea``/``number``/``rating`` results (same ``id`` as the region)
  -> instance attributes named by their control.

Of a task with several annotations the newest not cancelled one is read (as label-studio-converter
does); predictions are not. Images are found inside the images folder by their stored path, else
by basename: an upload path ``/data/upload/1/abc123-img.jpg`` also matches ``img.jpg`` (Label
Studio prefixes uploads with a hash and a dash).
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import numpy as np

from workbench.domain import (
    AnnotatedImage,
    Category,
    Dataset,
    ImageRecord,
    Instance,
    KeypointSchema,
    Polygon,
    Rle,
    ValidationError,
    palette_color,
)
from workbench.formats.cvat import MAX_MASK_PIXELS
from workbench.formats.paths import DatasetRoot
from workbench.geometry import (
    clip_polygon,
    covers_no_pixel,
    mask_to_rle,
    polygons_may_cover_no_pixel,
    validate_polygon,
    with_bbox_area,
)
from workbench.utils.jsonfile import read_json_file

__all__ = ["LabelStudioFormatError", "decode_ls_rle", "load_labelstudio"]

_KINDS = ("rectanglelabels", "polygonlabels", "keypointlabels", "brushlabels")
_ATTRIBUTE_KINDS = ("choices", "textarea", "number", "rating")
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif")
_UPLOAD_PREFIX = re.compile(r"^[^-/]+-(?=.)")
_MAX_LISTED = 5


class LabelStudioFormatError(ValidationError):
    """A Label Studio export breaks a rule; the message names the file and the task."""


class _Bits:
    """Big-endian bit reader over bytes (Label Studio's RLE is a bit stream)."""

    def __init__(self, data: bytes) -> None:
        self.value = int.from_bytes(data, "big")
        self.left = len(data) * 8

    def read(self, n: int) -> int:
        if n > self.left:
            raise ValueError("the stream ends early")
        self.left -= n
        return (self.value >> self.left) & ((1 << n) - 1)


def decode_ls_rle(rle: list[int] | bytes, *, where: str = "", expected: int | None = None) -> np.ndarray:
    """Label Studio's brush RLE (thi.ng rle-pack, as label-studio-converter's ``brush.decode_rle``)
    decoded to its flat uint8 array: a 32-bit count, a 5-bit word size - 1, four 4-bit run-length
    sizes - 1, then runs: a bit (1: one repeated word, 0: literal words), a 2-bit size index and
    that many bits of length - 1, then the word(s)."""
    try:
        data = bytes(rle)
    except (TypeError, ValueError):
        raise LabelStudioFormatError(f"{where}: brush rle must be a list of bytes 0..255") from None
    bits = _Bits(data)
    try:
        num = bits.read(32)
        word = bits.read(5) + 1
        sizes = [bits.read(4) + 1 for _ in range(4)]
        if expected is not None and num != expected:  # checked before anything is allocated
            raise ValueError(f"it holds {num} values, the image's RGBA canvas {expected}")
        if num > len(data) * 8 * (1 << 16):  # more values than any stream of this length could hold
            raise ValueError(f"it claims {num} values")
        out = np.zeros(num, dtype=np.uint8)
        i = 0
        while i < num:
            repeat = bits.read(1)
            j = min(num, i + 1 + bits.read(sizes[bits.read(2)]))
            if repeat:
                out[i:j] = bits.read(word) & 0xFF
                i = j
            else:
                while i < j:
                    out[i] = bits.read(word) & 0xFF
                    i += 1
    except ValueError as exc:
        raise LabelStudioFormatError(f"{where}: brush rle is not Label Studio's RLE ({exc})") from None
    return out


@dataclass
class _Region:
    label: str
    polygons: list[Polygon] = field(default_factory=list)
    mask: Rle | None = None
    box: tuple[float, float, float, float] | None = None
    point: tuple[float, float] | None = None
    keypoints: dict[str, tuple[float, float]] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)


def _num(v: Any, what: str, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise LabelStudioFormatError(f"{where}: {what} must be a finite number, got {v!r}")
    return float(v)


def _label(value: dict[str, Any], kind: str, where: str, warnings: list[str]) -> str | None:
    labels = value.get(kind)
    if (
        not isinstance(labels, list)
        or not labels
        or not all(isinstance(x, str) and x.strip() for x in labels)
    ):
        warnings.append(f"{where}: {kind} has no label; skipped")
        return None
    if len(labels) > 1:
        warnings.append(f"{where}: several labels {labels}; imported as {labels[0]!r}")
    return labels[0]


def _region(
    kind: str, value: dict[str, Any], size_wh: tuple[int, int], where: str, warnings: list[str]
) -> _Region | None:
    label = _label(value, kind, where, warnings)
    if label is None:
        return None
    w, h = size_wh
    region = _Region(label)
    if kind == "brushlabels":
        if w * h > MAX_MASK_PIXELS:
            raise LabelStudioFormatError(
                f"{where}: a brush on a {w}x{h} image is more than this reader decodes"
            )
        flat = decode_ls_rle(value.get("rle") or [], where=where, expected=w * h * 4)
        mask = (flat.reshape(h, w, 4)[:, :, 3] > 0).astype(np.uint8)
        if not mask.any():
            warnings.append(f"{where}: brush covers no pixel; skipped")
            return None
        region.mask = mask_to_rle(mask)  # compressed at once: many full-size masks would not fit memory
        return region
    x = _num(value.get("x"), "x", where) / 100 * w if kind != "polygonlabels" else 0.0
    y = _num(value.get("y"), "y", where) / 100 * h if kind != "polygonlabels" else 0.0
    if kind == "keypointlabels":
        region.point = (x, y)
        return region
    if kind == "rectanglelabels":
        bw = _num(value.get("width"), "width", where) / 100 * w
        bh = _num(value.get("height"), "height", where) / 100 * h
        rotation = value.get("rotation") or 0
        rotation = _num(rotation, "rotation", where) % 360
        if rotation == 0:
            x0, y0, x1, y1 = max(x, 0.0), max(y, 0.0), min(x + bw, float(w)), min(y + bh, float(h))
            if x1 <= x0 or y1 <= y0:
                warnings.append(f"{where}: rectangle has no area inside the image; skipped")
                return None
            region.box = (x0, y0, x1 - x0, y1 - y0)
            return region
        t = math.radians(rotation)
        c, s = math.cos(t), math.sin(t)
        flat_pts = [x + dx * c - dy * s if i == 0 else y + dx * s + dy * c
                    for dx, dy in ((0, 0), (bw, 0), (bw, bh), (0, bh)) for i in (0, 1)]  # fmt: skip
    else:
        pts = value.get("points")
        if not isinstance(pts, list):
            raise LabelStudioFormatError(f"{where}: polygon points must be a list of [x, y] percent pairs")
        flat_pts = []
        for p in pts:
            if not (isinstance(p, list) and len(p) == 2):
                raise LabelStudioFormatError(f"{where}: polygon point {p!r} is not [x, y]")
            flat_pts += [_num(p[0], "x", where) / 100 * w, _num(p[1], "y", where) / 100 * h]
    try:
        poly = validate_polygon(flat_pts, where=where)
    except ValidationError as exc:
        raise LabelStudioFormatError(str(exc)) from None
    clipped = clip_polygon(poly, size_wh)
    if clipped is None or (
        polygons_may_cover_no_pixel([clipped])[0]
        and covers_no_pixel(Instance("-", polygons=(clipped,)), size_wh)
    ):
        warnings.append(f"{where}: {kind[:-6]} covers no pixel of the image; skipped")
        return None
    region.polygons.append(clipped)
    return region


def _attribute(kind: str, value: dict[str, Any]) -> Any:
    v = value.get({"textarea": "text"}.get(kind, kind))
    if isinstance(v, list) and len(v) == 1:
        return v[0]
    return v


@dataclass
class _Task:
    """One image's regions, read from a task (JSON) or a record (JSON-MIN)."""

    image: str
    size_wh: tuple[int, int] | None = None
    regions: list[_Region] = field(default_factory=list)
    rotated: bool = False


def _size(result: dict[str, Any], where: str) -> tuple[int, int] | None:
    w, h = result.get("original_width"), result.get("original_height")
    if w is None and h is None:
        return None
    for name, v in (("original_width", w), ("original_height", h)):
        if isinstance(v, bool) or not isinstance(v, int | float) or v != int(v) or v <= 0:
            raise LabelStudioFormatError(f"{where}: {name} must be a positive integer, got {v!r}")
    return int(w), int(h)  # type: ignore[arg-type]


def _read_results(task: _Task, results: list[tuple[str, dict[str, Any], dict[str, Any]]], where: str,
                  warnings: list[str]) -> None:  # fmt: skip
    """Regions of (kind, value, result) triples; keypoints join their parent regions by id."""
    by_id: dict[str, _Region] = {}
    points: list[tuple[_Region, Any]] = []
    attrs: list[tuple[Any, str, Any]] = []
    for n, (kind, value, result) in enumerate(results):
        here = f"{where}: result {n}"
        if kind in _ATTRIBUTE_KINDS:
            attrs.append((result.get("id"), str(result.get("from_name") or kind), _attribute(kind, value)))
            continue
        if kind not in _KINDS:
            continue
        size = _size(result, here)
        if size is None:
            raise LabelStudioFormatError(f"{here}: {kind} without original_width/original_height")
        if result.get("image_rotation") not in (None, 0) and not task.rotated:
            task.rotated = True
            warnings.append(
                f"{where}: the image was rotated by {result['image_rotation']} degrees in Label Studio; "
                "its coordinates were taken as they are; check the shapes"
            )
        if task.size_wh is not None and size != task.size_wh:
            raise LabelStudioFormatError(
                f"{here}: image size {size} differs from {task.size_wh} of another result"
            )
        task.size_wh = size
        region = _region(kind, value, size, f"{here} ({kind})", warnings)
        if region is None:
            continue
        if isinstance(result.get("id"), str):
            by_id.setdefault(result["id"], region)
        if region.point is not None:
            points.append((region, result.get("parentID")))
        else:
            task.regions.append(region)
    for region, parent in points:
        owner = by_id.get(parent) if isinstance(parent, str) else None
        if owner is not None and owner.point is None:
            owner.keypoints.setdefault(region.label, region.point)  # type: ignore[arg-type]
        else:
            task.regions.append(region)
    for rid, name, value in attrs:
        owner = by_id.get(rid) if isinstance(rid, str) else None
        if owner is not None and value is not None:
            owner.attributes[name] = value


def _newest(annotations: list[Any], where: str, notes: dict[str, int]) -> dict[str, Any] | None:
    kept = [
        a for a in annotations if isinstance(a, dict) and not (a.get("was_cancelled") or a.get("skipped"))
    ]
    if len(kept) > 1:
        notes["several"] = notes.get("several", 0) + 1
    kept.sort(key=lambda a: str(a.get("created_at") or ""), reverse=True)
    return kept[0] if kept else None


def _image_value(data: dict[str, Any], where: str) -> str:
    if isinstance(data.get("image"), str):
        return data["image"]
    for v in data.values():
        if isinstance(v, str) and PurePosixPath(urlsplit(v).path).suffix.lower() in _IMAGE_SUFFIXES:
            return v
    raise LabelStudioFormatError(f"{where}: no image path in the task's data (keys {sorted(data)})")


def _tasks(obj: Any, src: str, warnings: list[str]) -> list[_Task]:
    records = [obj] if isinstance(obj, dict) else obj
    if not isinstance(records, list):
        raise LabelStudioFormatError(f"{src}: not a Label Studio export (a list of tasks)")
    notes: dict[str, int] = {}
    tasks = []
    for n, rec in enumerate(records):
        where = f"{src}: task {rec.get('id', n) if isinstance(rec, dict) else n}"
        if not isinstance(rec, dict):
            raise LabelStudioFormatError(f"{where}: must be an object, got {type(rec).__name__}")
        if "annotations" in rec or "completions" in rec:  # JSON
            data = rec.get("data")
            if not isinstance(data, dict):
                raise LabelStudioFormatError(f"{where}: 'data' must be an object")
            task = _Task(_image_value(data, where))
            ann = _newest(rec.get("annotations") or rec.get("completions") or [], where, notes)
            result = ann.get("result") if ann is not None else []
            if not isinstance(result, list):
                raise LabelStudioFormatError(f"{where}: an annotation's 'result' must be a list")
            triples = [
                (str(r.get("type", "")).lower(), r.get("value") or {}, r)
                for r in result
                if isinstance(r, dict)
            ]
        else:  # JSON-MIN: the task's data keys beside one list of values per control
            task = _Task(_image_value(rec, where))
            triples = []
            for values in rec.values():
                if not isinstance(values, list):
                    continue
                for v in values:
                    kind = next((k for k in _KINDS if isinstance(v, dict) and k in v), None)
                    if kind is not None:
                        triples.append((kind, v, v))
        _read_results(task, [t for t in triples if isinstance(t[1], dict)], where, warnings)
        tasks.append(task)
    if notes.get("several"):
        warnings.append(
            f"{src}: {notes['several']} task(s) hold several annotations; the newest of each was read"
        )
    return tasks


def _categories_and_items(
    tasks: list[tuple[_Task, ImageRecord]],
) -> tuple[list[Category], list[AnnotatedImage]]:
    schemas: dict[str, list[str]] = {}
    order: list[str] = []
    for task, _ in tasks:
        for r in task.regions:
            order.append(r.label)
            names = schemas.setdefault(r.label, []) if r.keypoints or r.point is not None else None
            if names is not None:
                for k in r.keypoints if r.point is None else [r.label]:
                    if k not in names:
                        names.append(k)
    cats = {}
    for name in dict.fromkeys(order):
        schema = KeypointSchema(tuple(schemas[name])) if name in schemas else None
        cats[name] = Category(name=name, color=palette_color(len(cats), name), keypoints=schema)
    items = []
    for task, record in tasks:
        instances = []
        for r in task.regions:
            schema = cats[r.label].keypoints
            placed = r.keypoints if r.point is None else {r.label: r.point}
            kp = None
            if schema is not None and placed:
                kp = tuple(
                    v for n in schema.names for v in ((*placed[n], 2) if n in placed else (0.0, 0.0, 0))
                )
            common: dict[str, Any] = {
                "category": r.label,
                "keypoints": kp,
                "source": "imported",
                "attributes": r.attributes,
            }
            if r.mask is not None:
                inst = with_bbox_area(Instance(rle=r.mask, **common), record.size_wh)
            elif r.polygons:
                inst = with_bbox_area(Instance(polygons=tuple(r.polygons), **common), record.size_wh)
            elif r.box is not None:
                inst = Instance(bbox_xywh=r.box, area=r.box[2] * r.box[3], **common)
            else:
                x, y = r.point  # type: ignore[misc]
                inst = Instance(bbox_xywh=(x - 0.5, y - 0.5, 1.0, 1.0), area=1.0, **common)
            instances.append(inst)
        items.append(AnnotatedImage(image=record, instances=tuple(instances)))
    return list(cats.values()), items


def _candidates(stored: str) -> tuple[list[str], str | None]:
    """Names to look for, most exact first, and the name without an upload hash prefix (if any)."""
    parts = urlsplit(stored)
    path = unquote(parts.path)
    local = parse_qs(parts.query).get("d", [])
    names = [*local]
    if not parts.scheme and not path.startswith("/"):
        names.append(path)
    base = PurePosixPath(path.replace("\\", "/")).name
    names.append(base)
    stripped = _UPLOAD_PREFIX.sub("", base)
    return list(dict.fromkeys(n for n in names if n)), stripped if stripped != base else None


def _upright_size(path: Path, src: str) -> tuple[int, int]:
    from PIL import Image

    try:
        with Image.open(path) as im:
            w, h = im.size
            turned = im.getexif().get(0x0112) in (5, 6, 7, 8)
    except Exception as exc:  # noqa: BLE001 - Pillow raises many kinds
        raise LabelStudioFormatError(f"{src}: {path} is not a readable image ({exc})") from None
    return (h, w) if turned else (w, h)


def load_labelstudio(
    path: Path, *, images_dir: Path | None = None, known_names: Collection[str] = (), root: Path | None = None
) -> Dataset:
    """Read a Label Studio JSON or JSON-MIN export and find its images in ``images_dir`` (default:
    beside the file), inside ``root`` (default: that folder) only. An image found nowhere whose
    basename (or name without the upload prefix) is in ``known_names`` is matched by name by the
    importer; other missing images are one error listing them."""
    path = Path(path)
    src = str(path)
    folder = Path(images_dir) if images_dir is not None else path.parent
    if not folder.is_dir():
        raise LabelStudioFormatError(f"{folder}: no such images folder")
    warnings: list[str] = []
    tasks = _tasks(read_json_file(path, error=LabelStudioFormatError), src, warnings)
    inside = DatasetRoot(Path(root) if root is not None else folder)
    known = set(known_names)
    found: list[tuple[_Task, ImageRecord]] = []
    missing: list[str] = []
    unprefixed = 0
    for task in tasks:
        names, stripped = _candidates(task.image)
        hit: tuple[str, Path | None] | None = None
        for name in [*names, *([stripped] if stripped else [])]:
            where = inside.resolve(folder, name)
            if where.path is not None:
                hit = (name, where.path)
                unprefixed += name == stripped
                break
        if hit is None:
            name = next((n for n in [*names, *([stripped] if stripped else [])] if n in known), None)
            if name is None:
                missing.append(task.image)
                continue
            hit = (name, None)
        if task.size_wh is None:
            if hit[1] is None:
                warnings.append(f"{src}: {task.image} has no regions and no file to measure; skipped")
                continue
            task.size_wh = _upright_size(hit[1], src)
        try:
            record = ImageRecord(file_name=hit[0], width=task.size_wh[0], height=task.size_wh[1],
                                 path=str(hit[1]) if hit[1] is not None else None)  # fmt: skip
        except ValidationError as exc:
            raise LabelStudioFormatError(f"{src}: {task.image}: {exc}") from None
        found.append((task, record))
    if missing:
        shown = ", ".join(missing[:_MAX_LISTED]) + (
            f" and {len(missing) - _MAX_LISTED} more" if len(missing) > _MAX_LISTED else ""
        )
        raise LabelStudioFormatError(
            f"{src}: {len(missing)} image file(s) not found in {folder} by path or basename: {shown}"
        )
    if unprefixed:
        warnings.append(
            f"{src}: {unprefixed} image(s) found by their name without Label Studio's upload prefix "
            "(abc123-img.jpg -> img.jpg)"
        )
    categories, items = _categories_and_items(found)
    return Dataset(categories=categories, items=items, warnings=warnings)
