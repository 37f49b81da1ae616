"""COCO instances/keypoints JSON <-> domain records.

``coco_to_dataset`` and ``dataset_to_coco`` are pure dict <-> domain converters; ``load_coco``,
``find_coco_splits`` and ``save_coco`` touch the file system. Every error names the file (``source``)
and the annotation or image it is about, because users fix these files by hand.

COCO conventions (see DESIGN.md): category ids are integers from 1, bbox ``[x, y, w, h]`` floats,
``area`` the mask area, keypoints ``[x, y, v] * K`` and skeleton pairs 1-based in the file (0-based in
the domain). Extensions we write and read back: ``flip_pairs`` (1-based like ``skeleton``) on keypoint
categories, ``attributes`` and ``score`` on annotations.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import replace
from itertools import chain
from operator import attrgetter
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from workbench.domain import (
    IGNORE_LABEL,
    SPLITS,
    AnnotatedImage,
    Category,
    Dataset,
    ImageRecord,
    Instance,
    KeypointSchema,
    Rle,
    ValidationError,
    check_flip_pairs,
)
from workbench.geometry import (
    clip_polygon,
    coco_rle_to_rle,
    covers_no_pixel,
    instance_bbox_area,
    polygons_may_cover_no_pixel,
    validate_polygon,
)
from workbench.util import atomic_write_text

__all__ = [
    "CATEGORY_COLORS",
    "CocoFormatError",
    "category_color",
    "coco_to_dataset",
    "dataset_to_coco",
    "find_coco_files",
    "find_coco_splits",
    "load_coco",
    "normalize_split",
    "save_coco",
]

CATEGORY_COLORS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22",
    "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2",
    "#dbdb8d", "#9edae5",
)  # fmt: skip
IGNORE_COLOR = "#7f7f7f"
_SPLIT_ALIASES = {"valid": "val", "validation": "val", "training": "train", "testing": "test"}
_MAX_LISTED = 5


class CocoFormatError(ValidationError):
    """A COCO file breaks a rule; the message names the file, the image/annotation and the problem."""


def category_color(index: int, name: str = "") -> str:
    """Default colour of the ``index``-th category so that classes differ on screen; ignore is grey."""
    if name == IGNORE_LABEL:
        return IGNORE_COLOR
    return CATEGORY_COLORS[index % len(CATEGORY_COLORS)]


def normalize_split(name: str | None) -> str | None:
    """Map folder/file split names (``valid``, ``train.person_keypoints``) onto the domain's SPLITS."""
    if name is None:
        return None
    base = name.split(".", 1)[0].strip().lower()
    return _SPLIT_ALIASES.get(base, base)


# --------------------------------------------------------------------------------------------------
# small checks


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_finite_number(value: Any) -> bool:
    kind = type(value)  # exact types first: this runs for every bbox/keypoint number of a file
    if kind is int:
        return True
    if kind is float:
        return math.isfinite(value)
    return _is_number(value) and math.isfinite(value)


def _require_list(obj: dict[str, Any], key: str, source: str, *, required: bool = True) -> list[Any]:
    if key not in obj:
        if required:
            raise CocoFormatError(f"{source}: missing required key {key!r} at the top level")
        return []
    value = obj[key]
    if not isinstance(value, list):
        raise CocoFormatError(f"{source}: {key!r} must be a list, got {type(value).__name__}")
    return value


def _size_int(value: Any, what: str, where: str) -> int:
    """An image width/height: a positive integer (``500.0`` is accepted, ``10.5``, NaN, -1 are not)."""
    if not _is_number(value):
        raise CocoFormatError(f"{where}: {what} must be a positive integer, got {value!r}")
    if not math.isfinite(value):
        raise CocoFormatError(f"{where}: {what} must be a positive integer, got {value!r} (not finite)")
    if value != int(value):
        raise CocoFormatError(f"{where}: {what} must be a positive integer, got non-integer {value!r}")
    if value <= 0:
        raise CocoFormatError(f"{where}: {what} must be a positive integer, got {value!r} (not positive)")
    return int(value)


def _wrap(exc: ValidationError, where: str) -> CocoFormatError:
    """Re-raise a domain/geometry error as a CocoFormatError that surely names the file."""
    message = str(exc)
    if where not in message:
        message = f"{where}: {message}"
    return CocoFormatError(message)


# --------------------------------------------------------------------------------------------------
# COCO dict -> Dataset


def _keypoint_counts_by_category(annotations: list[Any]) -> dict[Any, int]:
    """Largest ``len(keypoints) // 3`` seen per category id: K for categories with empty name lists."""
    counts: dict[Any, int] = {}
    for ann in annotations:
        if isinstance(ann, dict) and isinstance(ann.get("keypoints"), list):
            cid = ann.get("category_id")
            counts[cid] = max(counts.get(cid, 0), len(ann["keypoints"]) // 3)
    return counts


def _parse_pairs(value: Any, what: str, where: str) -> list[tuple[int, int]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise CocoFormatError(f"{where}: {what} must be a list of [a, b] pairs, got {value!r}")
    pairs = []
    for pair in value:
        if not (isinstance(pair, list | tuple) and len(pair) == 2 and all(_is_int(i) for i in pair)):
            raise CocoFormatError(f"{where}: {what} entry {pair!r} is not a pair of integer indices")
        pairs.append((int(pair[0]), int(pair[1])))
    return pairs


def _parse_category(
    raw: Any, index: int, source: str, kp_counts: dict[Any, int], warnings: list[str]
) -> Category:
    if not isinstance(raw, dict):
        raise CocoFormatError(f"{source}: category #{index} must be an object, got {type(raw).__name__}")
    cid = raw.get("id")
    if not _is_int(cid):
        raise CocoFormatError(f"{source}: category #{index} has id {cid!r}; category ids must be integers")
    where = f"{source}: category {cid}"
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise CocoFormatError(f"{where}: name must be a non-empty string, got {name!r}")
    where = f"{source}: category {cid} ({name!r})"
    supercategory = raw.get("supercategory") or ""
    if not isinstance(supercategory, str):
        supercategory = str(supercategory)

    schema = None
    if "keypoints" in raw and raw["keypoints"] is not None:
        names = raw["keypoints"]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise CocoFormatError(f"{where}: 'keypoints' must be a list of keypoint names, got {names!r}")
        skeleton = _parse_pairs(raw.get("skeleton"), "skeleton", where)
        flip_pairs = _parse_pairs(raw.get("flip_pairs"), "flip_pairs", where)
        zero_based = any(0 in pair for pair in skeleton)
        if zero_based:
            warnings.append(
                f"{where}: skeleton uses index 0, so it was read as 0-based (COCO's skeleton is 1-based)"
            )
        k = len(names)
        if k == 0:
            k, origin = kp_counts.get(cid, 0), "the annotations"
            if k == 0 and skeleton:
                k, origin = max(max(p) for p in skeleton) + (1 if zero_based else 0), "the skeleton"
            if k:
                names = [f"kp{i}" for i in range(1, k + 1)]
                warnings.append(
                    f"{where}: empty keypoint name list; named {k} keypoints kp1..kp{k} "
                    f"(count taken from {origin})"
                )
        if k:
            if not zero_based:
                skeleton = [(a - 1, b - 1) for a, b in skeleton]
            flip_pairs = [(a - 1, b - 1) for a, b in flip_pairs]
            try:
                schema = KeypointSchema(tuple(names), tuple(skeleton), tuple(flip_pairs))
                check_flip_pairs(schema)
            except ValidationError as exc:
                raise _wrap(exc, where) from None
    return Category(
        name=name,
        id=cid,
        color=category_color(index, name),
        supercategory=supercategory,
        keypoints=schema,
    )


def _parse_image(
    raw: Any, index: int, source: str, images_dir: Path | None, split: str | None
) -> ImageRecord:
    if not isinstance(raw, dict):
        raise CocoFormatError(f"{source}: image #{index} must be an object, got {type(raw).__name__}")
    iid = raw.get("id")
    if not _is_int(iid):
        raise CocoFormatError(f"{source}: image #{index} has id {iid!r}; image ids must be integers")
    where = f"{source}: image {iid}"
    file_name = raw.get("file_name")
    if not isinstance(file_name, str) or not file_name.strip():
        raise CocoFormatError(f"{where}: file_name must be a non-empty string, got {file_name!r}")
    where = f"{source}: image {iid} ({file_name})"
    if "width" not in raw or "height" not in raw:
        raise CocoFormatError(f"{where}: missing width/height")
    width = _size_int(raw["width"], "width", where)
    height = _size_int(raw["height"], "height", where)
    path = str(images_dir / file_name) if images_dir is not None else None
    return ImageRecord(file_name=file_name, width=width, height=height, id=iid, path=path, split=split)


def _parse_bbox(value: Any, where: str) -> tuple[float, float, float, float]:
    if not (isinstance(value, list | tuple) and len(value) == 4):
        raise CocoFormatError(f"{where}: bbox must be [x, y, w, h] (4 numbers), got {value!r}")
    if not (all(type(c) in (int, float) for c in value) and math.isfinite(sum(value))) and not all(
        _is_finite_number(c) for c in value
    ):
        raise CocoFormatError(f"{where}: bbox must hold 4 finite numbers, got {value!r}")
    x, y, w, h = (float(c) for c in value)
    if w < 0 or h < 0:
        raise CocoFormatError(f"{where}: bbox [x, y, w, h] has a negative width or height: {value!r}")
    return (x, y, w, h)


def _parse_keypoints(
    value: Any, schema: KeypointSchema | None, category: str, where: str
) -> tuple[float, ...]:
    if schema is None:
        raise CocoFormatError(f"{where}: has keypoints but category {category!r} declares no keypoint names")
    k = schema.num_keypoints
    if not isinstance(value, list) or len(value) != 3 * k:
        n = len(value) if isinstance(value, list) else value
        raise CocoFormatError(
            f"{where}: keypoints length is {n}, expected 3*K = {3 * k} for the {k} keypoints of {category!r}"
        )
    if not (all(type(c) in (int, float) for c in value) and math.isfinite(sum(value))) and not all(
        _is_finite_number(c) for c in value
    ):
        raise CocoFormatError(f"{where}: keypoints must be finite numbers, got {value!r}")
    out: list[float] = []
    for i in range(k):
        x, y, v = value[3 * i : 3 * i + 3]
        if v not in (0, 1, 2):
            raise CocoFormatError(f"{where}: keypoint {i + 1} has visibility v={v!r}; v must be 0, 1 or 2")
        if v == 0:
            x = y = 0  # COCO: x = y = 0 where v = 0
        out.extend((float(x), float(y), int(v)))
    return tuple(out)


def _outside(poly: tuple[float, ...], width: int, height: int) -> bool:
    xs, ys = poly[0::2], poly[1::2]
    return min(xs) < 0 or min(ys) < 0 or max(xs) > width or max(ys) > height


def _parse_annotation(
    raw: Any,
    index: int,
    source: str,
    images: dict[int, ImageRecord],
    categories: dict[int, Category],
    clipped: list[int],
) -> tuple[int, Instance]:
    if not isinstance(raw, dict):
        raise CocoFormatError(f"{source}: annotation #{index} must be an object, got {type(raw).__name__}")
    aid = raw.get("id")
    if not _is_int(aid):
        raise CocoFormatError(
            f"{source}: annotation #{index} has id {aid!r}; annotation ids must be integers"
        )
    where = f"{source}: annotation {aid}"
    image_id = raw.get("image_id")
    if not _is_int(image_id) or image_id not in images:
        raise CocoFormatError(f"{where}: unknown image id {image_id!r} (no such entry in 'images')")
    image = images[image_id]
    category_id = raw.get("category_id")
    if not _is_int(category_id) or category_id not in categories:
        raise CocoFormatError(
            f"{where}: unknown category id {category_id!r}; known ids are {sorted(categories)}"
        )
    category = categories[category_id]

    iscrowd = raw.get("iscrowd", 0)
    if not (_is_number(iscrowd) or isinstance(iscrowd, bool)) or iscrowd not in (0, 1):
        raise CocoFormatError(f"{where}: iscrowd must be 0 or 1, got {iscrowd!r}")

    polygons: tuple[tuple[float, ...], ...] = ()
    rle: Rle | None = None
    seg = raw.get("segmentation", [])
    if seg is None:
        seg = []
    if isinstance(seg, list):
        parts = []
        for part in seg:
            if not isinstance(part, list):
                raise CocoFormatError(
                    f"{where}: segmentation must be a list of polygons (lists of numbers), got part {part!r}"
                )
            try:
                parts.append(tuple(validate_polygon(part, where=where)))
            except ValidationError as exc:
                raise _wrap(exc, where) from None
        if any(_outside(part, image.width, image.height) for part in parts):
            # clipped to the image as every other way in does; the file's box and area described
            # the unclipped shape, so they are recomputed from what is kept
            kept = [c for c in (clip_polygon(part, image.size_wh) for part in parts) if c is not None]
            if not kept:
                raise CocoFormatError(
                    f"{where}: polygon lies entirely outside image {image_id} ({image.file_name})"
                )
            parts = kept
            clipped.append(aid)
            raw = {**raw, "bbox": None, "area": None}
        polygons = tuple(parts)
    elif isinstance(seg, dict):
        try:
            rle = coco_rle_to_rle(seg, where=where)
        except ValidationError as exc:
            raise _wrap(exc, where) from None
        if tuple(rle.size_hw) != (image.height, image.width):
            raise CocoFormatError(
                f"{where}: RLE size [h, w] = {list(rle.size_hw)} does not match image {image_id} "
                f"({image.file_name}) of height {image.height} and width {image.width}"
            )
    else:
        raise CocoFormatError(
            f"{where}: segmentation must be a list of polygons or an RLE object, got {type(seg).__name__}"
        )

    keypoints = None
    if raw.get("keypoints") not in (None, []):  # some tools write [] on plain categories
        keypoints = _parse_keypoints(raw["keypoints"], category.keypoints, category.name, where)

    bbox = _parse_bbox(raw["bbox"], where) if raw.get("bbox") is not None else None
    area = raw.get("area")
    if area is not None and (not _is_finite_number(area) or area < 0):
        raise CocoFormatError(f"{where}: area must be a finite number >= 0, got {area!r}")
    area = float(area) if area is not None else None
    if bbox is not None:
        x, y, w, h = bbox
        if x >= image.width or y >= image.height or x + w <= 0 or y + h <= 0:
            raise CocoFormatError(
                f"{where}: bbox {list(bbox)} lies outside image {image_id} ({image.width}x{image.height})"
            )

    score = raw.get("score")
    if score is not None and not _is_finite_number(score):
        raise CocoFormatError(f"{where}: score must be a finite number, got {score!r}")
    attributes = raw.get("attributes")
    attributes = dict(attributes) if isinstance(attributes, dict) else {}

    if not polygons and rle is None and bbox is None and not any(v > 0 for v in (keypoints or ())[2::3]):
        raise CocoFormatError(f"{where}: has no segmentation, no bbox and no labelled keypoints")

    try:
        inst = Instance(
            category=category.name,
            polygons=polygons,
            rle=rle,
            bbox_xywh=bbox,
            area=area,
            keypoints=keypoints,
            iscrowd=bool(iscrowd),
            score=float(score) if score is not None else None,
            source="imported",
            id=aid,
            attributes=attributes,
        )
        if bbox is None or area is None:  # recompute only what the file leaves out
            box, mask_area = instance_bbox_area(inst, image.size_wh)
            inst = replace(
                inst,
                bbox_xywh=bbox if bbox is not None else box,
                area=area if area is not None else float(mask_area),
            )
    except ValidationError as exc:
        raise _wrap(exc, where) from None
    return image_id, inst


def coco_to_dataset(
    obj: dict[str, Any], *, source: str, images_dir: Path | None = None, split: str | None = None
) -> Dataset:
    """Read a COCO dict (already parsed JSON) into a Dataset; ``source`` names the file in messages."""
    if not isinstance(obj, dict):
        kind = "a list (a results file?)" if isinstance(obj, list) else type(obj).__name__
        raise CocoFormatError(f"{source}: the top level must be a COCO object with 'images', got {kind}")
    if split is not None:
        norm = normalize_split(split)
        if norm not in SPLITS:
            raise CocoFormatError(f"{source}: split must be one of {SPLITS}, got {split!r}")
        split = norm
    raw_images = _require_list(obj, "images", source)
    raw_categories = _require_list(obj, "categories", source)
    raw_annotations = _require_list(obj, "annotations", source, required=False)
    warnings: list[str] = []

    kp_counts = _keypoint_counts_by_category(raw_annotations)
    categories: dict[int, Category] = {}
    names: dict[str, int] = {}
    for index, raw in enumerate(raw_categories):
        cat = _parse_category(raw, index, source, kp_counts, warnings)
        if cat.id in categories:
            raise CocoFormatError(f"{source}: duplicate category id {cat.id} ({cat.name!r})")
        if cat.name in names:
            raise CocoFormatError(
                f"{source}: duplicate category name {cat.name!r} (ids {names[cat.name]} and {cat.id})"
            )
        assert cat.id is not None
        categories[cat.id] = cat
        names[cat.name] = cat.id

    images: dict[int, ImageRecord] = {}
    file_names: dict[str, int] = {}
    for index, raw in enumerate(raw_images):
        try:
            record = _parse_image(raw, index, source, images_dir, split)
        except CocoFormatError:
            raise
        except ValidationError as exc:
            raise _wrap(exc, f"{source}: image #{index}") from None
        assert record.id is not None
        if record.id in images:
            raise CocoFormatError(f"{source}: duplicate image id {record.id} ({record.file_name})")
        if record.file_name in file_names:
            warnings.append(
                f"{source}: images {file_names[record.file_name]} and {record.id} share the file name "
                f"{record.file_name!r}"
            )
        images[record.id] = record
        file_names[record.file_name] = record.id

    instances: dict[int, list[Instance]] = {iid: [] for iid in images}
    seen_ids: set[int] = set()
    clipped: list[int] = []
    for index, raw in enumerate(raw_annotations):
        if isinstance(raw, dict) and _is_int(raw.get("id")):
            if raw["id"] in seen_ids:
                raise CocoFormatError(f"{source}: duplicate annotation id {raw['id']}")
            seen_ids.add(raw["id"])
        image_id, inst = _parse_annotation(raw, index, source, images, categories, clipped)
        instances[image_id].append(inst)

    if clipped:
        shown = ", ".join(map(str, clipped[:_MAX_LISTED])) + (" ..." if len(clipped) > _MAX_LISTED else "")
        warnings.append(
            f"{source}: {len(clipped)} annotation(s) had polygons beyond their image, clipped to it "
            f"(bbox and area recomputed): {shown}"
        )
    invisible = _drop_shapes_without_pixels(instances, images)
    if invisible:
        shown = ", ".join(f"{aid} ({name})" for aid, name in invisible[:_MAX_LISTED])
        more = f" and {len(invisible) - _MAX_LISTED} more" if len(invisible) > _MAX_LISTED else ""
        warnings.append(
            f"{source}: {len(invisible)} annotation(s) cover no pixel of their image (a shape inside one "
            f"pixel, or thinner than the gap between pixel centres) and were skipped: {shown}{more}"
        )
    items = [AnnotatedImage(image=rec, instances=tuple(instances[iid])) for iid, rec in images.items()]
    return Dataset(categories=list(categories.values()), items=items, warnings=warnings)


def _drop_shapes_without_pixels(
    instances: dict[int, list[Instance]], images: dict[int, ImageRecord]
) -> list[tuple[int | None, str]]:
    """Remove (in place) the instances whose shape rasterises to no pixel; ``(annotation id, file)`` of each.

    Stored, they would be invisible instances of area 0 that training and COCOeval see as empty
    masks. Only shapes the cheap bulk pre-filter flags (small or thin polygons, RLEs) are rasterised.
    """
    shaped = [inst for insts in instances.values() for inst in insts]
    counts = np.fromiter(map(len, map(attrgetter("polygons"), shaped)), dtype=np.int64, count=len(shaped))
    flags = polygons_may_cover_no_pixel(list(chain.from_iterable(map(attrgetter("polygons"), shaped))))
    # an instance may be empty only when every part is flagged (a part that surely covers a pixel
    # makes the union cover it); RLEs and instances without polygons are looked at one by one
    unflagged = np.bincount(np.repeat(np.arange(len(shaped)), counts), weights=~flags, minlength=len(shaped))
    suspects = {id(shaped[i]) for i in np.flatnonzero(unflagged == 0)}
    out: list[tuple[int | None, str]] = []
    for iid, insts in instances.items():
        if not any(id(inst) in suspects for inst in insts):
            continue
        size_wh = images[iid].size_wh
        kept = []
        for inst in insts:
            if id(inst) in suspects and covers_no_pixel(inst, size_wh):
                out.append((inst.id, images[iid].file_name))
            else:
                kept.append(inst)
        instances[iid] = kept
    return out


# --------------------------------------------------------------------------------------------------
# Dataset -> COCO dict


def _assign_ids(current: list[int | None], what: str) -> list[int]:
    """Keep stored ids (stable across exports); number the missing ones after the largest one."""
    taken = [i for i in current if i is not None]
    if len(set(taken)) != len(taken):
        dupes = sorted({i for i in taken if taken.count(i) > 1})[:_MAX_LISTED]
        raise ValidationError(f"cannot export COCO: duplicate {what} ids {dupes}")
    next_id = max(taken, default=0) + 1
    out = []
    for i in current:
        if i is None:
            out.append(next_id)
            next_id += 1
        else:
            out.append(i)
    return out


def _category_to_coco(cat: Category, cid: int) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": cid, "name": cat.name, "supercategory": cat.supercategory}
    if cat.keypoints is not None:
        entry["keypoints"] = list(cat.keypoints.names)
        entry["skeleton"] = [[a + 1, b + 1] for a, b in cat.keypoints.skeleton]
        if cat.keypoints.flip_pairs:
            entry["flip_pairs"] = [[a + 1, b + 1] for a, b in cat.keypoints.flip_pairs]
    return entry


def dataset_to_coco(
    ds: Dataset, *, info: dict[str, Any] | None = None, box_only_as_polygon: bool = False
) -> dict[str, Any]:
    """Write a Dataset as a COCO dict that pycocotools and torchvision's CocoDetection load.

    Ignore regions (IGNORE_LABEL) are left out: COCO has no such notion and training skips them.
    Box-only instances (no polygons, no RLE) get ``segmentation: []`` as datumaro and roboflow
    write them, which reads back as box-only; but pycocotools' ``annToRLE`` (so segm COCOeval)
    raises IndexError on ``[]``: pass ``box_only_as_polygon=True`` to write their box as a
    4-corner polygon instead when the file feeds a segm evaluation.
    """
    cats = [c for c in ds.categories if not c.is_ignore]
    if len({c.name for c in cats}) != len(cats):
        raise ValidationError("cannot export COCO: two categories share a name")
    stored = [c.id for c in cats]
    if all(i is not None and i > 0 for i in stored) and len(set(stored)) == len(stored):
        cat_ids = [int(i) for i in stored if i is not None]
    else:
        cat_ids = list(range(1, len(cats) + 1))
    by_name = {c.name: (c, cid) for c, cid in zip(cats, cat_ids, strict=True)}

    image_ids = _assign_ids([item.image.id for item in ds.items], "image")
    kept = [[inst for inst in item.instances if inst.category != IGNORE_LABEL] for item in ds.items]
    ann_ids = iter(_assign_ids([inst.id for insts in kept for inst in insts], "annotation"))

    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for item, image_id, insts in zip(ds.items, image_ids, kept, strict=True):
        rec = item.image
        images.append(_image_to_coco(rec, image_id))
        for inst in insts:
            ann_id = next(ann_ids)
            where = f"image {rec.file_name}, instance {inst.id if inst.id is not None else ann_id}"
            if inst.category not in by_name:
                raise ValidationError(f"cannot export COCO: {where} has unknown category {inst.category!r}")
            cat, cid = by_name[inst.category]
            annotations.append(
                _instance_to_coco(inst, cat, cid, ann_id, image_id, rec, where, box_only_as_polygon)
            )

    categories = [_category_to_coco(c, cid) for c, cid in zip(cats, cat_ids, strict=True)]
    return {
        "info": dict(info) if info is not None else {"description": "exported by workbench"},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": categories,
    }


def _instance_to_coco(
    inst: Instance,
    cat: Category,
    cid: int,
    ann_id: int,
    image_id: int,
    rec: ImageRecord,
    where: str,
    box_only_as_polygon: bool = False,
) -> dict[str, Any]:
    bbox, area = inst.bbox_xywh, inst.area
    if bbox is None or area is None:
        if not inst.has_shape and bbox is None and not inst.num_keypoints:
            raise ValidationError(f"cannot export COCO: {where} has no shape, no box and no keypoints")
        box, mask_area = instance_bbox_area(inst, rec.size_wh)
        bbox = bbox if bbox is not None else box
        area = area if area is not None else mask_area

    if inst.rle is not None:
        segmentation: Any = inst.rle.to_coco()
    else:
        segmentation = [list(map(float, poly)) for poly in inst.polygons]
    if not segmentation and box_only_as_polygon and bbox[2] > 0 and bbox[3] > 0:
        x, y, w, h = (float(c) for c in bbox)
        segmentation = [[x, y, x + w, y, x + w, y + h, x, y + h]]
    ann: dict[str, Any] = {
        "id": ann_id,
        "image_id": image_id,
        "category_id": cid,
        "segmentation": segmentation,
        "area": float(area),
        "bbox": [float(c) for c in bbox],
        "iscrowd": int(inst.iscrowd),
    }
    if cat.keypoints is not None:
        k = cat.keypoints.num_keypoints
        kps = inst.keypoints if inst.keypoints is not None else (0.0, 0.0, 0) * k
        if len(kps) != 3 * k:
            raise ValidationError(
                f"cannot export COCO: {where} has {len(kps) // 3} keypoints, category {cat.name!r} has {k}"
            )
        flat: list[float | int] = []
        for i in range(0, len(kps), 3):
            v = int(kps[i + 2])
            flat.extend((float(kps[i]) if v else 0.0, float(kps[i + 1]) if v else 0.0, v))
        ann["keypoints"] = flat
        ann["num_keypoints"] = sum(1 for v in flat[2::3] if v > 0)
    elif inst.keypoints is not None:
        raise ValidationError(
            f"cannot export COCO: {where} has keypoints but category {cat.name!r} has no keypoint schema"
        )
    if inst.score is not None:
        ann["score"] = float(inst.score)
    if inst.attributes:
        ann["attributes"] = dict(inst.attributes)
    return ann


StoreRow = tuple[
    int,
    int,
    int,
    "str | None",
    "str | None",
    "float | None",
    bool,
    "str | None",
    "float | None",
    "str | None",
]
"""An annotation as the store hands it to exports: ``(id, image_id, category_id, segmentation,
bbox, area, iscrowd, keypoints, score, attributes)``, JSON columns still unparsed text."""


def rows_to_coco(
    categories: Sequence[Category],
    images: Sequence[ImageRecord],
    rows: Iterable[StoreRow],
    *,
    info: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The COCO dict that ``dataset_to_coco`` gives, built from store rows without domain records.

    Exports of large projects go this way: the JSON columns are parsed once with orjson and laid
    out as COCO directly, which keeps a 200k-annotation export close to ``json.dumps`` of its result.
    Categories get ids 1..N in their order (store ids map to them); image and annotation ids are
    the store's, so they are stable across exports. Tests check it equals ``dataset_to_coco``.
    """
    cats = [c for c in categories if not c.is_ignore]
    export_ids = {c.id: i for i, c in enumerate(cats, 1)}
    schema_k = {c.id: (c.keypoints.num_keypoints if c.keypoints is not None else None) for c in cats}
    by_id = {im.id: im for im in images}
    loads = orjson.loads
    annotations: list[dict[str, Any]] = []
    for ann_id, image_id, cat_id, seg, bbox, area, iscrowd, kps, score, attrs in rows:
        if image_id not in by_id or cat_id not in export_ids:
            continue
        segmentation = loads(seg) if seg else []
        if bbox is None or area is None:
            rec = by_id[image_id]
            probe = Instance(
                category="-",
                polygons=tuple(tuple(p) for p in segmentation) if isinstance(segmentation, list) else (),
                rle=Rle(tuple(segmentation["size"]), segmentation["counts"])
                if isinstance(segmentation, dict)
                else None,
                bbox_xywh=tuple(loads(bbox)) if bbox else None,
            )
            box, mask_area = instance_bbox_area(probe, rec.size_wh)
            box_list = list(probe.bbox_xywh or box)
            area = mask_area if area is None else area
        else:
            box_list = loads(bbox)
        ann: dict[str, Any] = {
            "id": ann_id,
            "image_id": image_id,
            "category_id": export_ids[cat_id],
            "segmentation": segmentation,
            "area": float(area),
            "bbox": box_list,
            "iscrowd": int(iscrowd),
        }
        k = schema_k[cat_id]
        if k is not None:
            flat = loads(kps) if kps else [0.0, 0.0, 0] * k
            for i in range(2, len(flat), 3):
                flat[i] = v = int(flat[i])
                if not v:
                    flat[i - 2] = flat[i - 1] = 0.0
            ann["keypoints"] = flat
            ann["num_keypoints"] = sum(1 for v in flat[2::3] if v > 0)
        if score is not None:
            ann["score"] = float(score)
        if attrs:
            extra = loads(attrs)
            if extra:
                ann["attributes"] = extra
        annotations.append(ann)
    return {
        "info": dict(info) if info is not None else {"description": "exported by workbench"},
        "licenses": [],
        "images": [_image_to_coco(im, im.id) for im in images],  # type: ignore[arg-type]
        "annotations": annotations,
        "categories": [_category_to_coco(c, i) for i, c in enumerate(cats, 1)],
    }


def _image_to_coco(rec: ImageRecord, image_id: int) -> dict[str, Any]:
    return {"id": image_id, "file_name": rec.file_name, "width": rec.width, "height": rec.height}


# --------------------------------------------------------------------------------------------------
# files

_DATUMARO_RE = re.compile(r"^(?P<task>instances|person_keypoints)_(?P<split>.+)\.json$")


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise CocoFormatError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CocoFormatError(f"{path}: cannot read the file ({exc})") from None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise CocoFormatError(
            f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from None


def _split_from_layout(path: Path) -> str | None:
    """``annotations/instances_val.json`` -> ``val``; ``valid/_annotations.coco.json`` -> ``valid``."""
    m = _DATUMARO_RE.match(path.name)
    if m:
        return m.group("split")
    if path.name == "_annotations.coco.json":
        return path.parent.name
    return None


def _image_dir_candidates(path: Path) -> list[Path]:
    folder = path.parent
    candidates = [folder]
    layout_split = _split_from_layout(path)
    if folder.name == "annotations":
        root = folder.parent
        if layout_split:
            candidates.append(root / "images" / layout_split)
            candidates.append(root / layout_split)
        candidates += [root / "images", root]
    else:
        candidates.append(folder / "images")
    return candidates


def _missing_message(source: str, missing: list[str], where: Iterable[Path]) -> str:
    shown = ", ".join(missing[:_MAX_LISTED])
    more = f" and {len(missing) - _MAX_LISTED} more" if len(missing) > _MAX_LISTED else ""
    looked = ", ".join(str(p) for p in where)
    return f"{source}: {len(missing)} image file(s) missing: {shown}{more} (looked in {looked})"


def _existing(path: Path) -> str | None:
    return str(path) if path.is_file() else None


def load_coco(
    path: Path,
    *,
    images_dir: Path | None = None,
    split: str | None = None,
    known_names: Collection[str] = (),
) -> Dataset:
    """Read a COCO JSON file and find its images.

    Images are looked for in ``images_dir`` when given, else beside the JSON (roboflow), else in the
    datumaro/COCO layout ``<root>/images/<split>/`` for ``<root>/annotations/instances_<split>.json``.
    A split name outside SPLITS (datumaro's ``default``) leaves images without a split, with a warning.
    A missing file whose name is in ``known_names`` (images already in the project) is no error: its
    item keeps ``path=None`` and the importer matches it by name.
    """
    path = Path(path)
    obj = _read_json(path)
    source = str(path)
    warnings: list[str] = []
    norm_split = normalize_split(split)
    if norm_split is not None and norm_split not in SPLITS:
        warnings.append(f"{source}: split {split!r} is not one of {SPLITS}; images were left without a split")
        norm_split = None

    probe = coco_to_dataset(obj, source=source, images_dir=None, split=norm_split)
    known = set(known_names)
    file_names = [item.image.file_name for item in probe.items]
    candidates = [Path(images_dir)] if images_dir is not None else _image_dir_candidates(path)
    best, best_missing = candidates[0], None
    for cand in candidates:
        missing = [f for f in file_names if not (cand / f).is_file() and f not in known]
        if best_missing is None or len(missing) < len(best_missing):
            best, best_missing = cand, missing
        if not missing:
            break
    if best_missing:
        raise CocoFormatError(_missing_message(source, best_missing, candidates))

    probe.items = [
        AnnotatedImage(
            image=replace(item.image, path=_existing(best / item.image.file_name)), instances=item.instances
        )
        for item in probe.items
    ]
    probe.warnings = warnings + probe.warnings
    return probe


def find_coco_files(folder: Path) -> list[tuple[str, Path]]:
    """Every COCO JSON of a datumaro or roboflow export as ``(split, file)``, instances files first.

    Several files may share a split (``instances_train.json`` and ``person_keypoints_train.json``):
    the caller imports each of them into that split. Split names are normalised (``valid`` -> ``val``).
    """
    folder = Path(folder)
    found: list[tuple[int, str, Path]] = []
    ann_dir = folder / "annotations"
    if ann_dir.is_dir():
        for p in sorted(ann_dir.glob("*.json")):
            m = _DATUMARO_RE.match(p.name)
            if m:
                order = 0 if m.group("task") == "instances" else 1
                found.append((order, normalize_split(m.group("split")) or "", p))
    for p in sorted(folder.glob("*/_annotations.coco.json")):
        found.append((0, normalize_split(p.parent.name) or "", p))
    if (folder / "_annotations.coco.json").is_file():
        found.append((0, normalize_split(folder.name) or "", folder / "_annotations.coco.json"))
    rank = {s: i for i, s in enumerate(SPLITS)}
    found.sort(key=lambda t: (rank.get(t[1], len(SPLITS)), t[1], t[0], str(t[2])))
    return [(split, path) for _, split, path in found]


def find_coco_splits(folder: Path) -> dict[str, Path]:
    """Split name -> COCO JSON for datumaro (``annotations/instances_train.json``) and roboflow
    (``train/_annotations.coco.json``, ``valid`` -> ``val``) layouts.

    Where a split has several files (instances and person_keypoints), the first keeps the split
    name as key and the others get ``<split>.<task>`` (``train.person_keypoints``); ``load_coco``
    and ``normalize_split`` read such a key as its split.
    """
    out: dict[str, Path] = {}
    for split, path in find_coco_files(folder):
        key = split
        if key in out:
            m = _DATUMARO_RE.match(path.name)
            key = f"{split}.{m.group('task') if m else path.stem}"
            n = 2
            while key in out:
                key = f"{split}.{path.stem}{n}"
                n += 1
        out[key] = path
    return out


def save_coco(obj: dict[str, Any], path: Path) -> None:
    """Write compact COCO JSON atomically: a temp file in the same folder, then ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError as exc:
        raise ValidationError(f"{path}: cannot write COCO JSON ({exc})") from None
    atomic_write_text(path, text)
