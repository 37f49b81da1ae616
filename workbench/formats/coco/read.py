"""COCO JSON -> domain records: ``load_coco`` reads a file and finds its images, ``coco_to_dataset``
converts an already parsed dict.

Users fix these files by hand, so every error names the file (``source``) and the category, image
or annotation it is about. The parsers raise bare messages; :func:`_parse_entry` is the one place
that gives them their file and entry.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import replace
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


def _parse_annotation(
    raw: dict[str, Any],
    images: dict[int, ImageRecord],
    categories: dict[int, Category],
    clipped: list[int],
) -> tuple[int, Instance]:
    """The annotation's image id and instance; ids of annotations whose polygons were clipped go to ``clipped``."""
    aid = raw["id"]
    image_id = raw.get("image_id")
    if not is_int(image_id) or image_id not in images:
        raise CocoFormatError(f"unknown image id {image_id!r} (no such entry in 'images')")
    image = images[image_id]
    category_id = raw.get("category_id")
    if not is_int(category_id) or category_id not in categories:
        raise CocoFormatError(f"unknown category id {category_id!r}; known ids are {sorted(categories)}")
    category = categories[category_id]

    iscrowd = raw.get("iscrowd", 0)
    if not (is_number(iscrowd) or isinstance(iscrowd, bool)) or iscrowd not in (0, 1):
        raise CocoFormatError(f"iscrowd must be 0 or 1, got {iscrowd!r}")

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
                    f"segmentation must be a list of polygons (lists of numbers), got part {part!r}"
                )
            parts.append(tuple(validate_polygon(part)))
        if any(outside(part, image.width, image.height) for part in parts):
            # clipped to the image as every other way in does; the file's box and area described
            # the unclipped shape, so they are recomputed from what is kept
            kept = [c for c in (clip_polygon(part, image.size_wh) for part in parts) if c is not None]
            if not kept:
                raise CocoFormatError(f"polygon lies entirely outside image {image_id} ({image.file_name})")
            parts = kept
            clipped.append(aid)
            raw = {**raw, "bbox": None, "area": None}
        polygons = tuple(parts)
    elif isinstance(seg, dict):
        rle = coco_rle_to_rle(seg)
        if tuple(rle.size_hw) != (image.height, image.width):
            raise CocoFormatError(
                f"RLE size [h, w] = {list(rle.size_hw)} does not match image {image_id} "
                f"({image.file_name}) of height {image.height} and width {image.width}"
            )
    else:
        raise CocoFormatError(
            f"segmentation must be a list of polygons or an RLE object, got {type(seg).__name__}"
        )

    keypoints = None
    if raw.get("keypoints") not in (None, []):  # some tools write [] on plain categories
        keypoints = parse_keypoints(raw["keypoints"], category.keypoints, category.name)

    bbox = parse_bbox(raw["bbox"]) if raw.get("bbox") is not None else None
    area = raw.get("area")
    if area is not None and (not is_finite_number(area) or area < 0):
        raise CocoFormatError(f"area must be a finite number >= 0, got {area!r}")
    area = float(area) if area is not None else None
    if bbox is not None:
        x, y, w, h = bbox
        if x >= image.width or y >= image.height or x + w <= 0 or y + h <= 0:
            raise CocoFormatError(f"bbox {list(bbox)} lies outside image {image_id} ({image.width}x{image.height})")

    score = raw.get("score")
    if score is not None and not is_finite_number(score):
        raise CocoFormatError(f"score must be a finite number, got {score!r}")
    attributes = raw.get("attributes")
    attributes = dict(attributes) if isinstance(attributes, dict) else {}
    if nested_too_deeply(attributes):
        raise CocoFormatError(f"attributes nested too deeply (over {MAX_STORED_DEPTH} levels)")

    if not polygons and rle is None and bbox is None and not any(v > 0 for v in (keypoints or ())[2::3]):
        raise CocoFormatError("has no segmentation, no bbox and no labelled keypoints")
    z_order = raw.get("z_order", 0)
    if isinstance(z_order, bool) or not isinstance(z_order, int | float) or z_order != int(z_order):
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
    return image_id, with_bbox_area(inst, image.size_wh)  # only what the file leaves out


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
    seen_ids: set[int] = set()
    clipped: list[int] = []
    parse_annotation = partial(_parse_annotation, images=images, categories=categories, clipped=clipped)
    for index, raw in enumerate(raw_annotations):
        if isinstance(raw, dict) and is_int(raw.get("id")):
            if raw["id"] in seen_ids:
                raise CocoFormatError(f"{source}: duplicate annotation id {raw['id']}")
            seen_ids.add(raw["id"])
        _, (image_id, inst) = _parse_entry(raw, index, "annotation", source, parse_annotation)
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
) -> Dataset:
    """Read a COCO JSON file and find its images.

    Images are looked for in ``images_dir`` when given, else beside the JSON (roboflow), else in the
    datumaro/COCO layout ``<root>/images/<split>/`` for ``<root>/annotations/instances_<split>.json``.
    A split name outside SPLITS (datumaro's ``default``) leaves images without a split, with a warning.
    A missing file whose name is in ``known_names`` (images already in the project) is no error: its
    item keeps ``path=None`` and the importer matches it by name. File names resolve inside the
    dataset folder (``root`` when given, else ``images_dir``, else the layout's root) only: one that
    is absolute or climbs out of it (also as ``..\\`` or URL-encoded) is left out, its image named
    in ``Dataset.skipped`` with the reason.
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
    file_names = list(dict.fromkeys(item.image.file_name for item in probe.items))
    candidates = [Path(images_dir)] if images_dir is not None else image_dir_candidates(path)
    if root is None:
        root = Path(images_dir) if images_dir is not None else dataset_root(path)
    inside = DatasetRoot(Path(root))
    best: dict[str, Resolved] = {}
    best_missing: list[str] | None = None
    for cand in candidates:
        found = {f: inside.resolve(cand, f) for f in file_names}
        missing = [f for f, r in found.items() if r.path is None and r.escapes is None and f not in known]
        if best_missing is None or len(missing) < len(best_missing):
            best, best_missing = found, missing
        if not missing:
            break
    if best_missing:
        raise CocoFormatError(_missing_message(source, best_missing, candidates))

    items = []
    for item in probe.items:
        where = best[item.image.file_name]
        if where.escapes is not None and item.image.file_name not in known:
            probe.skipped.append((item.image.file_name, f"{where.escapes} (file_name in {source})"))
            continue
        found_path = str(where.path) if where.path is not None else None
        items.append(AnnotatedImage(image=replace(item.image, path=found_path), instances=item.instances))
    probe.items = items
    probe.warnings = warnings + probe.warnings
    return probe
