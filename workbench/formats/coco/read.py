"""COCO JSON -> domain records: ``load_coco`` reads a file and finds its images, ``coco_to_dataset``
converts an already parsed dict.

Users fix these files by hand, so every error names the file (``source``) and the category, image
or annotation it is about. The parsers raise bare messages; :func:`_parse_entry` is the one place
that gives them their file and entry.
"""

from __future__ import annotations

import math
import operator
import os
import stat
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field, replace
from functools import partial
from itertools import chain
from operator import attrgetter
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from workbench.domain import (
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
    palette_color,
)
from workbench.formats.coco.bulk import suspect_polygons
from workbench.formats.coco.fields import (
    is_finite_number,
    is_int,
    is_number,
    outside,
    parse_bbox,
    parse_keypoints,
    parse_pairs,
    size_int,
)
from workbench.formats.coco.layouts import dataset_root, image_dir_candidates, normalize_split
from workbench.formats.paths import DatasetRoot, Resolved
from workbench.geometry import (
    clip_polygon,
    coco_rle_to_rle,
    covers_no_pixel,
    polygons_may_cover_no_pixel,
    validate_polygon,
    with_bbox_area,
)
from workbench.utils.jsonfile import MAX_STORED_DEPTH, nested_too_deeply, read_json_file

__all__ = [
    "CocoFormatError",
    "coco_to_dataset",
    "load_coco",
]

_MAX_LISTED = 5
_T = TypeVar("_T")


class CocoFormatError(ValidationError):
    """A COCO file breaks a rule; the message names the file, the image/annotation and the problem."""


def _require_list(obj: dict[str, Any], key: str, source: str, *, required: bool = True) -> list[Any]:
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


def _where(raw: Any, index: int, kind: str, source: str) -> str:
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


def _parse_entry(
    raw: Any, index: int, kind: str, source: str, parse: Callable[[dict[str, Any]], _T]
) -> tuple[str, _T]:
    """``parse(raw)`` with its errors (its own, the domain's, geometry's) led by the file and entry."""
    where = _where(raw, index, kind, source)
    try:
        return where, parse(raw)
    except ValidationError as exc:
        raise CocoFormatError(f"{where}: {exc}") from None


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


def _parse_category(
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


def _parse_image(raw: dict[str, Any], images_dir: Path | None, split: str | None) -> ImageRecord:
    file_name = raw.get("file_name")
    if not isinstance(file_name, str) or not file_name.strip():
        raise CocoFormatError(f"file_name must be a non-empty string, got {file_name!r}")
    if "width" not in raw or "height" not in raw:
        raise CocoFormatError("missing width/height")
    width = size_int(raw["width"], "width")
    height = size_int(raw["height"], "height")
    path = str(images_dir / file_name) if images_dir is not None else None
    return ImageRecord(file_name=file_name, width=width, height=height, id=raw["id"], path=path, split=split)


@dataclass
class _Tally:
    """What the annotation pass changed on the way in, reported once per file (ids for the messages)."""

    clipped: list[int] = field(default_factory=list)
    """Annotations whose polygons were clipped to their image."""
    flat_parts: list[int] = field(default_factory=list)
    """Annotations that lost a zero-area polygon part (FiftyOne writes them)."""
    flat_only: list[int] = field(default_factory=list)
    """Annotations whose every polygon part had zero area: left out."""
    unlabelled_keypoints: int = 0
    """Annotations of a category without keypoints that carried only ``v = 0`` keypoints."""
    crowd_masks: int = 0
    """RLE masks marked ``iscrowd = 1``."""
    plain_shapes: int = 0
    """Shapes (polygons or RLE) not marked crowd."""


_PLAIN = {int, float}
_COMMON_KEYS = frozenset({"id", "image_id", "category_id", "segmentation", "area", "bbox", "iscrowd"})
"""An annotation with only these keys has no optional field to look at."""
_ZERO_AREA = "has zero area"  # validate_polygon's wording for a part whose points lie on one line


def _plain_parts(seg: list[Any]) -> list[tuple[float, ...]] | None:
    """Every part as floats when all are plain lists of ints/floats of even length >= 6, else None.

    The finiteness, area and image-bounds checks of such parts are left to the bulk pass
    (:mod:`workbench.formats.coco.bulk`)."""
    parts = []
    for part in seg:
        if type(part) is not list or len(part) < 6 or len(part) % 2 or not set(map(type, part)) <= _PLAIN:
            return None
        parts.append(tuple(map(float, part)))
    return parts


def _polygon_parts(seg: list[Any], aid: int, tally: _Tally) -> list[tuple[float, ...]]:
    """The parts of a polygon segmentation, checked; zero-area parts are dropped into ``tally``."""
    parts = []
    flat = False
    for part in seg:
        if type(part) is list and len(part) >= 6 and not len(part) % 2 and set(map(type, part)) <= _PLAIN:
            # the common case, as validate_polygon's own fast path (plain finite numbers, area > 0)
            poly = tuple(map(float, part))
            if math.isfinite(sum(poly)):
                xs, ys = poly[0::2], poly[1::2]
                twice_area = sum(map(operator.mul, xs, ys[1:] + ys[:1])) - sum(map(operator.mul, ys, xs[1:] + xs[:1]))
                span = max(max(xs) - min(xs), max(ys) - min(ys), 1.0)
                if abs(twice_area) > 1e-6 * span * span:
                    parts.append(poly)
                    continue
        if not isinstance(part, list):
            raise CocoFormatError(f"segmentation must be a list of polygons (lists of numbers), got part {part!r}")
        try:
            parts.append(tuple(validate_polygon(part)))
        except ValidationError as exc:
            if _ZERO_AREA not in str(exc):
                raise
            flat = True
    if flat:
        (tally.flat_parts if parts else tally.flat_only).append(aid)
    return parts


def _parse_annotation(
    raw: dict[str, Any],
    images: dict[int, ImageRecord],
    categories: dict[int, Category],
    tally: _Tally,
    crowd_as_instances: bool = False,
    deferred: list[Instance] | None = None,
) -> tuple[int, Instance | None]:
    """The annotation's image id and instance (None: every polygon part had zero area, left out).

    Runs once per annotation of files with hundreds of thousands: the common case (plain numbers,
    no optional fields) takes the short branches; anything else gets the full checks. With
    ``deferred``, plain polygons are taken unchecked and their instance is appended there for the
    bulk pass, which sends the suspect ones back here without ``deferred``.
    """
    aid = raw["id"]
    get = raw.get
    image_id = get("image_id")
    image = images.get(image_id) if type(image_id) is int or is_int(image_id) else None
    if image is None:
        raise CocoFormatError(f"unknown image id {image_id!r} (no such entry in 'images')")
    category_id = get("category_id")
    category = categories.get(category_id) if type(category_id) is int or is_int(category_id) else None
    if category is None:
        raise CocoFormatError(f"unknown category id {category_id!r}; known ids are {sorted(categories)}")
    optional = not (raw.keys() <= _COMMON_KEYS)  # score, attributes, keypoints, z_order, ... to look at

    iscrowd = get("iscrowd", 0)
    if not (type(iscrowd) is int and 0 <= iscrowd <= 1) and (
        not (is_number(iscrowd) or isinstance(iscrowd, bool)) or iscrowd not in (0, 1)
    ):
        raise CocoFormatError(f"iscrowd must be 0 or 1, got {iscrowd!r}")

    polygons: tuple[tuple[float, ...], ...] = ()
    rle: Rle | None = None
    seg = get("segmentation")
    if seg is None:
        seg = []
    plain = None
    if isinstance(seg, list):
        plain = _plain_parts(seg) if seg and deferred is not None else None
        parts = plain if plain is not None else _polygon_parts(seg, aid, tally) if seg else []
        if seg and not parts:
            return image_id, None
        if plain is None and parts and any(outside(part, image.width, image.height) for part in parts):
            # clipped to the image as every other way in does; the file's box and area described
            # the unclipped shape, so they are recomputed from what is kept
            kept = [c for c in (clip_polygon(part, image.size_wh) for part in parts) if c is not None]
            if not kept:
                raise CocoFormatError(f"polygon lies entirely outside image {image_id} ({image.file_name})")
            parts = kept
            tally.clipped.append(aid)
            raw = {**raw, "bbox": None, "area": None}
            get = raw.get
        polygons = tuple(parts)
    elif isinstance(seg, dict):
        rle = coco_rle_to_rle(seg)
        if tuple(rle.size_hw) != (image.height, image.width):
            raise CocoFormatError(
                f"RLE size [h, w] = {list(rle.size_hw)} does not match image {image_id} "
                f"({image.file_name}) of height {image.height} and width {image.width}"
            )
        if iscrowd:
            tally.crowd_masks += 1
            if crowd_as_instances:
                iscrowd = 0
    else:
        raise CocoFormatError(
            f"segmentation must be a list of polygons or an RLE object, got {type(seg).__name__}"
        )
    if (polygons or rle is not None) and not iscrowd:
        tally.plain_shapes += 1

    keypoints = None
    kps = get("keypoints") if optional else None
    if kps is not None and kps != []:  # some tools write [] on plain categories
        if category.keypoints is None and _all_unlabelled(kps):
            tally.unlabelled_keypoints += 1  # FiftyOne: zeros on a category that declares no keypoints
        else:
            keypoints = parse_keypoints(kps, category.keypoints, category.name)

    box = get("bbox")
    if type(box) is list and len(box) == 4 and set(map(type, box)) <= _PLAIN and math.isfinite(sum(box)):
        bbox = (float(box[0]), float(box[1]), float(box[2]), float(box[3]))
        if bbox[2] < 0 or bbox[3] < 0:
            bbox = parse_bbox(box)  # refuses it
    else:
        bbox = parse_bbox(box) if box is not None else None
    area = get("area")
    if area is not None:
        if type(area) is not float and (not is_finite_number(area) or area < 0):
            raise CocoFormatError(f"area must be a finite number >= 0, got {area!r}")
        if not (area >= 0 and area != math.inf):  # a float: NaN and infinity fail this
            raise CocoFormatError(f"area must be a finite number >= 0, got {area!r}")
        area = float(area)
    if bbox is not None:
        x, y, w, h = bbox
        if x >= image.width or y >= image.height or x + w <= 0 or y + h <= 0:
            if plain is not None:  # the polygons may need clipping, which drops the file's box: read carefully
                return image_id, _careful(raw, images, categories, tally, crowd_as_instances)
            raise CocoFormatError(f"bbox {list(bbox)} lies outside image {image_id} ({image.width}x{image.height})")

    score = get("score") if optional else None
    if score is not None and not is_finite_number(score):
        raise CocoFormatError(f"score must be a finite number, got {score!r}")
    attributes = get("attributes") if optional else None
    if attributes:
        attributes = dict(attributes) if isinstance(attributes, dict) else {}
        if nested_too_deeply(attributes):
            raise CocoFormatError(f"attributes nested too deeply (over {MAX_STORED_DEPTH} levels)")
    else:
        attributes = {}

    if not polygons and rle is None and bbox is None and not any(v > 0 for v in (keypoints or ())[2::3]):
        raise CocoFormatError("has no segmentation, no bbox and no labelled keypoints")
    z_order = get("z_order", 0) if optional else 0
    if type(z_order) is not int and (
        isinstance(z_order, bool) or not isinstance(z_order, int | float) or z_order != int(z_order)
    ):
        raise CocoFormatError(f"z_order must be an integer, got {z_order!r}")

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
        z_order=int(z_order),
    )
    if plain is not None:
        deferred.append(inst)  # type: ignore[union-attr]  # box and area once the bulk pass has passed it
        return image_id, inst
    if bbox is not None and area is not None:
        return image_id, inst
    return image_id, with_bbox_area(inst, image.size_wh)  # only what the file leaves out


def _careful(
    raw: dict[str, Any], images: dict[int, ImageRecord], categories: dict[int, Category], tally: _Tally,
    crowd_as_instances: bool,
) -> Instance | None:
    """The annotation read again with every check; only what that reading adds joins ``tally``
    (the counts the first reading took stand)."""
    scratch = _Tally()
    _, inst = _parse_annotation(raw, images, categories, scratch, crowd_as_instances)
    tally.clipped += scratch.clipped
    tally.flat_parts += scratch.flat_parts
    tally.flat_only += scratch.flat_only
    if inst is None:
        tally.plain_shapes -= 1
    return inst


def _all_unlabelled(kps: Any) -> bool:
    """``[x, y, v] * K`` of plain numbers with every ``v = 0``: keypoints that say nothing."""
    return (
        isinstance(kps, list)
        and len(kps) % 3 == 0
        and all(is_finite_number(c) for c in kps)
        and not any(kps[2::3])
    )


def _listed(ids: list[int]) -> str:
    return ", ".join(map(str, ids[:_MAX_LISTED])) + (" ..." if len(ids) > _MAX_LISTED else "")


def _tally_notes(tally: _Tally, source: str, crowd_as_instances: bool) -> list[str]:
    notes = []
    if tally.clipped:
        notes.append(
            f"{source}: {len(tally.clipped)} annotation(s) had polygons beyond their image, clipped to it "
            f"(bbox and area recomputed): {_listed(tally.clipped)}"
        )
    if tally.flat_parts:
        notes.append(
            f"{source}: {len(tally.flat_parts)} annotation(s) had a polygon part of zero area (its points "
            f"on one line), left out of the shape; the other parts were kept: {_listed(tally.flat_parts)}"
        )
    if tally.flat_only:
        notes.append(
            f"{source}: {len(tally.flat_only)} annotation(s) had only polygon parts of zero area (their points "
            f"on one line) and were skipped: {_listed(tally.flat_only)}"
        )
    if tally.unlabelled_keypoints:
        notes.append(
            f"{source}: {tally.unlabelled_keypoints} annotation(s) of classes that declare no keypoints carried "
            "keypoints all marked v=0 (not labelled); read as no keypoints"
        )
    if tally.crowd_masks and crowd_as_instances:
        notes.append(f"{source}: {tally.crowd_masks} RLE mask(s) marked iscrowd=1 imported as ordinary instances")
    elif tally.crowd_masks and not tally.plain_shapes:
        notes.append(
            f"{source}: every mask ({tally.crowd_masks}) is an RLE marked iscrowd=1 (CVAT and supervision write "
            "masks with holes so); training and COCO evaluation ignore crowd regions as objects. If they are "
            "objects, import again with --crowd-as-instances"
        )
    return notes


def coco_to_dataset(
    obj: dict[str, Any],
    *,
    source: str,
    images_dir: Path | None = None,
    split: str | None = None,
    crowd_as_instances: bool = False,
) -> Dataset:
    """Read a COCO dict (already parsed JSON) into a Dataset; ``source`` names the file in messages.

    ``crowd_as_instances`` imports RLE masks marked ``iscrowd = 1`` as ordinary instances (CVAT and
    supervision mark every mask with holes crowd)."""
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
        notes: list[str] = []
        where, cat = _parse_entry(
            raw, index, "category", source, partial(_parse_category, index=index, kp_counts=kp_counts, notes=notes)
        )
        warnings.extend(f"{where}: {note}" for note in notes)
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
    parse_image = partial(_parse_image, images_dir=images_dir, split=split)
    for index, raw in enumerate(raw_images):
        _, record = _parse_entry(raw, index, "image", source, parse_image)
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
    tally = _Tally()
    parse_annotation = partial(
        _parse_annotation, images=images, categories=categories, tally=tally, crowd_as_instances=crowd_as_instances
    )
    seen_ids: set[int] = set()
    repeated: list[tuple[int, int]] = []  # (image id, index there; -1 if left out) of reused ids
    deferred: list[Instance] = []
    at_of: dict[int, tuple[int, int, int]] = {}  # id(deferred instance) -> (raw index, image id, index there)
    for index, raw in enumerate(raw_annotations):
        if type(raw) is not dict or not is_int(raw.get("id")):
            _where(raw, index, "annotation", source)  # refuses it, naming it by its position
        n_deferred = len(deferred)
        try:
            image_id, inst = parse_annotation(raw, deferred=deferred)
        except ValidationError as exc:
            raise CocoFormatError(f"{_where(raw, index, 'annotation', source)}: {exc}") from None
        aid = raw["id"]
        if aid in seen_ids:
            repeated.append((image_id, len(instances[image_id]) if inst is not None else -1))
        seen_ids.add(aid)
        if inst is not None:
            if len(deferred) > n_deferred:
                at_of[id(inst)] = (index, image_id, len(instances[image_id]))
            instances[image_id].append(inst)
    careful = partial(
        _careful, images=images, categories=categories, tally=tally, crowd_as_instances=crowd_as_instances
    )
    _check_deferred(deferred, at_of, instances, images, raw_annotations, careful, source)

    if repeated:
        # datumaro writes ids restarting on every image; the store gives its own ids anyway, and
        # these are renumbered after the largest id so that messages name one annotation each
        next_id = max(seen_ids) + 1
        for image_id, at in repeated:
            if at >= 0 and instances[image_id][at] is not None:
                instances[image_id][at] = replace(instances[image_id][at], id=next_id)
                next_id += 1
        warnings.append(
            f"{source}: {len(repeated)} annotation(s) reuse an id an earlier annotation has (datumaro writes "
            f"ids that restart on every image); all were imported, the repeats renumbered from "
            f"{max(seen_ids) + 1}"
        )
    for image_id, insts in instances.items():
        if None in insts:
            instances[image_id] = [inst for inst in insts if inst is not None]
    warnings.extend(_tally_notes(tally, source, crowd_as_instances))
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


def _check_deferred(
    deferred: list[Instance],
    at_of: dict[int, tuple[int, int, int]],
    instances: dict[int, list[Instance]],
    images: dict[int, ImageRecord],
    raw_annotations: list[Any],
    careful: Callable[[dict[str, Any]], Instance | None],
    source: str,
) -> None:
    """The bulk pass over the polygons taken unchecked: suspects are read again with every check
    (which clips, drops flat parts or refuses, naming the annotation); the rest get box and area."""
    polys = [p for inst in deferred for p in inst.polygons]
    owner = np.repeat(np.arange(len(deferred)), [len(inst.polygons) for inst in deferred])
    sizes = np.array([images[at_of[id(inst)][1]].size_wh for inst in deferred], dtype=np.float64).reshape(-1, 2)
    suspect = np.zeros(len(deferred), dtype=bool)
    suspect[owner[suspect_polygons(polys, sizes[owner])]] = True
    for k, inst in enumerate(deferred):
        index, image_id, at = at_of[id(inst)]
        if suspect[k]:
            raw = raw_annotations[index]
            try:
                again = careful(raw)
            except ValidationError as exc:
                raise CocoFormatError(f"{_where(raw, index, 'annotation', source)}: {exc}") from None
        elif inst.bbox_xywh is not None and inst.area is not None:
            continue
        else:
            again = with_bbox_area(inst, images[image_id].size_wh)
        instances[image_id][at] = again  # type: ignore[call-overload]  # None: left out, filtered after


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
# files


def _read_json(path: Path) -> Any:
    return read_json_file(path, error=CocoFormatError)


def _missing_message(source: str, missing: list[str], where: Iterable[Path]) -> str:
    shown = ", ".join(missing[:_MAX_LISTED])
    more = f" and {len(missing) - _MAX_LISTED} more" if len(missing) > _MAX_LISTED else ""
    looked = ", ".join(str(p) for p in where)
    return f"{source}: {len(missing)} image file(s) missing: {shown}{more} (looked in {looked})"


def load_coco(
    path: Path,
    *,
    images_dir: Path | None = None,
    split: str | None = None,
    known_names: Collection[str] = (),
    root: Path | None = None,
    crowd_as_instances: bool = False,
) -> Dataset:
    """Read a COCO JSON file and find its images.

    Images are looked for in ``images_dir`` when given, else beside the JSON (roboflow), else in the
    datumaro/COCO layout ``<root>/images/<split>/`` for ``<root>/annotations/instances_<split>.json``.
    A split name outside SPLITS (datumaro's ``default``) leaves images without a split, with a warning.
    A missing file whose name is in ``known_names`` (images already in the project) is no error: its
    item keeps ``path=None`` and the importer matches it by name. File names resolve inside the
    dataset folder (``root`` when given, else ``images_dir``, else the layout's root) only: one that
    is absolute or climbs out of it (also as ``..\\`` or URL-encoded) is left out, its image named
    in ``Dataset.skipped`` with the reason. Two habits of real tools are met, each with a note: a
    Label Studio upload path (``../../label-studio/media/upload/1/x.jpg``) that is not found falls
    back to its base name in the images folder, and an image that is a symbolic link to a regular
    file (FiftyOne's symlink exports) is read from its target.
    """
    path = Path(path)
    obj = _read_json(path)
    source = str(path)
    warnings: list[str] = []
    norm_split = normalize_split(split)
    if norm_split is not None and norm_split not in SPLITS:
        warnings.append(f"{source}: split {split!r} is not one of {SPLITS}; images were left without a split")
        norm_split = None

    probe = coco_to_dataset(
        obj, source=source, images_dir=None, split=norm_split, crowd_as_instances=crowd_as_instances
    )
    known = set(known_names)
    file_names = list(dict.fromkeys(item.image.file_name for item in probe.items))
    candidates = [Path(images_dir)] if images_dir is not None else image_dir_candidates(path)
    if root is None:
        root = Path(images_dir) if images_dir is not None else dataset_root(path)
    inside = DatasetRoot(Path(root))
    best: dict[str, Resolved] = {}
    best_missing: list[str] | None = None
    fell_back: list[str] = []
    for cand in candidates:
        found = {f: inside.resolve(cand, f) for f in file_names}
        by_basename = _upload_path_fallback(found, inside, cand)
        # not found: missing inside the folder, or an upload path whose base name is not here either
        missing = [
            f for f, r in found.items()
            if r.path is None and f not in known and (r.escapes is None or _is_upload_path(f))
        ]
        if best_missing is None or len(missing) < len(best_missing):
            best, best_missing, fell_back = found, missing, by_basename
        if not missing:
            break
    best_missing = [f for f in best_missing or () if best[f].escapes is None]
    if best_missing:
        raise CocoFormatError(_missing_message(source, best_missing, candidates))
    if fell_back:
        warnings.append(
            f"{source}: {len(fell_back)} file_name(s) are Label Studio upload paths (e.g. {fell_back[0]!r}); "
            "each was found by its base name in the images folder"
        )

    items = []
    followed = 0
    for item in probe.items:
        where = best[item.image.file_name]
        if where.escapes is not None and where.path is None and item.image.file_name not in known:
            probe.skipped.append((item.image.file_name, f"{where.escapes} (file_name in {source})"))
            continue
        found_path = str(where.path) if where.path is not None else None
        if found_path is not None and os.path.islink(found_path):
            target = _link_target(found_path)
            if target is not None:
                found_path, followed = target, followed + 1
        items.append(AnnotatedImage(image=replace(item.image, path=found_path), instances=item.instances))
    if followed:
        warnings.append(
            f"{source}: {followed} image(s) are symbolic links (as FiftyOne exports with symlinks); each was "
            "read from the regular file it points to"
        )
    probe.items = items
    probe.warnings = warnings + probe.warnings
    return probe


_UPLOAD_PARTS = ("/media/upload/", "/data/upload/")
"""Where Label Studio keeps uploaded files; its COCO export writes paths there relative to itself."""


def _is_upload_path(name: str) -> bool:
    slashed = "/" + name.replace("\\", "/")
    return any(part in slashed for part in _UPLOAD_PARTS)


def _last_part(name: str) -> str:
    return name.replace("\\", "/").rsplit("/", 1)[-1]


def _upload_path_fallback(found: dict[str, Resolved], inside: DatasetRoot, base: Path) -> list[str]:
    """Label Studio upload paths not found as written, looked for by base name in ``base`` (in place).

    Only names of that shape: any other name that climbs out of the folder stays refused.
    """
    out = []
    for name, where in found.items():
        if where.path is not None or not _is_upload_path(name):
            continue
        by_name = inside.resolve(base, _last_part(name))
        if by_name.path is not None:
            found[name] = Resolved(path=by_name.path, escapes=where.escapes)
            out.append(name)
    return out


def _link_target(path: str) -> str | None:
    """The file a symbolic link points to, when that is a regular file (else None: the decoder says why)."""
    try:
        target = os.path.realpath(path, strict=True)
        return target if stat.S_ISREG(os.stat(target).st_mode) else None
    except (OSError, RuntimeError):
        return None
