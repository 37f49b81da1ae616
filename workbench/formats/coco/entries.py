"""COCO categories and images, and the one place that says which entry of which file a message is about.

Users fix these files by hand, so every error names the file (``source``) and the category, image
or annotation it is about. The parsers raise bare messages; :func:`parse_entry` gives them their
file and entry.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from workbench.domain import (
    Category,
    ImageRecord,
    KeypointSchema,
    ValidationError,
    check_flip_pairs,
    palette_color,
)
from workbench.formats.coco.fields import is_int, parse_pairs, size_int

__all__ = [
    "MAX_LISTED",
    "CocoFormatError",
    "entry_where",
    "keypoint_counts_by_category",
    "parse_category",
    "parse_entry",
    "parse_image",
    "require_list",
]

MAX_LISTED = 5
"""How many ids or names a message lists before "and N more"."""
_T = TypeVar("_T")


class CocoFormatError(ValidationError):
    """A COCO file breaks a rule; the message names the file, the image/annotation and the problem."""


def require_list(obj: dict[str, Any], key: str, source: str, *, required: bool = True) -> list[Any]:
    if key not in obj:
        if required:
            raise CocoFormatError(f"{source}: missing required key {key!r} at the top level")
        return []
    value = obj[key]
    if not isinstance(value, list):
        raise CocoFormatError(f"{source}: {key!r} must be a list, got {type(value).__name__}")
    return value


# --------------------------------------------------------------------------------------------------
# entries: where each one is, and the one place that says so

_LABELS: dict[str, tuple[str, Callable[[str], str]]] = {"category": ("name", repr), "image": ("file_name", str)}
"""The key that names a category or image in messages once it holds a non-empty string."""


def entry_where(raw: Any, index: int, kind: str, source: str) -> str:
    """``"<file>: <kind> <id> (<name>)"``, the lead of every message about the entry.

    An entry that is no object, or has no integer id, is refused here and named by its position.
    """
    if not isinstance(raw, dict):
        raise CocoFormatError(f"{source}: {kind} #{index} must be an object, got {type(raw).__name__}")
    eid = raw.get("id")
    if not is_int(eid):
        raise CocoFormatError(f"{source}: {kind} #{index} has id {eid!r}; {kind} ids must be integers")
    where = f"{source}: {kind} {eid}"
    if kind in _LABELS:
        key, show = _LABELS[kind]
        name = raw.get(key)
        if isinstance(name, str) and name.strip():
            where = f"{where} ({show(name)})"
    return where


def parse_entry(
    raw: Any, index: int, kind: str, source: str, parse: Callable[[dict[str, Any]], _T]
) -> tuple[str, _T]:
    """``parse(raw)`` with its errors (its own, the domain's, geometry's) led by the file and entry."""
    where = entry_where(raw, index, kind, source)
    try:
        return where, parse(raw)
    except ValidationError as exc:
        raise CocoFormatError(f"{where}: {exc}") from None


# --------------------------------------------------------------------------------------------------
# COCO dict -> Dataset


def keypoint_counts_by_category(annotations: list[Any]) -> dict[Any, int]:
    """Largest ``len(keypoints) // 3`` seen per category id: K for categories with empty name lists."""
    counts: dict[Any, int] = {}
    for ann in annotations:
        if isinstance(ann, dict) and isinstance(ann.get("keypoints"), list):
            cid = ann.get("category_id")
            counts[cid] = max(counts.get(cid, 0), len(ann["keypoints"]) // 3)
    return counts


def parse_category(
    raw: dict[str, Any], index: int, kp_counts: dict[Any, int], notes: list[str]
) -> Category:
    """The category; warnings about it go to ``notes`` (the caller leads them with the entry)."""
    cid = raw["id"]
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise CocoFormatError(f"name must be a non-empty string, got {name!r}")
    supercategory = raw.get("supercategory") or ""
    if not isinstance(supercategory, str):
        supercategory = str(supercategory)

    schema = None
    if "keypoints" in raw and raw["keypoints"] is not None:
        names = raw["keypoints"]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise CocoFormatError(f"'keypoints' must be a list of keypoint names, got {names!r}")
        skeleton = parse_pairs(raw.get("skeleton"), "skeleton")
        flip_pairs = parse_pairs(raw.get("flip_pairs"), "flip_pairs")
        zero_based = any(0 in pair for pair in skeleton)
        if zero_based:
            notes.append("skeleton uses index 0, so it was read as 0-based (COCO's skeleton is 1-based)")
        k = len(names)
        if k == 0:
            k, origin = kp_counts.get(cid, 0), "the annotations"
            if k == 0 and skeleton:
                k, origin = max(max(p) for p in skeleton) + (1 if zero_based else 0), "the skeleton"
            if k:
                names = [f"kp{i}" for i in range(1, k + 1)]
                notes.append(f"empty keypoint name list; named {k} keypoints kp1..kp{k} (count taken from {origin})")
        if k:
            if not zero_based:
                skeleton = [(a - 1, b - 1) for a, b in skeleton]
            flip_pairs = [(a - 1, b - 1) for a, b in flip_pairs]
            schema = KeypointSchema(tuple(names), tuple(skeleton), tuple(flip_pairs))
            check_flip_pairs(schema)
    return Category(
        name=name,
        id=cid,
        color=palette_color(index, name),
        supercategory=supercategory,
        keypoints=schema,
    )


def parse_image(raw: dict[str, Any], images_dir: Path | None, split: str | None) -> ImageRecord:
    file_name = raw.get("file_name")
    if not isinstance(file_name, str) or not file_name.strip():
        raise CocoFormatError(f"file_name must be a non-empty string, got {file_name!r}")
    if "width" not in raw or "height" not in raw:
        raise CocoFormatError("missing width/height")
    width = size_int(raw["width"], "width")
    height = size_int(raw["height"], "height")
    path = str(images_dir / file_name) if images_dir is not None else None
    return ImageRecord(file_name=file_name, width=width, height=height, id=raw["id"], path=path, split=split)
