"""COCO annotations -> instances: the per-annotation reading of :func:`~workbench.formats.coco.read.coco_to_dataset`.

It runs once per annotation of files with hundreds of thousands. :func:`plain_annotation` takes
the common shape (plain polygons, box and area, nothing optional) in a few checks and leaves the
polygons' finiteness, area and bounds to the bulk pass (:mod:`workbench.formats.coco.bulk`);
anything else, and every annotation that pass flags, goes through :func:`parse_annotation`'s full
checks, which decide and say why. What the reading changed on the way in is counted in a
:class:`Tally` and reported once per file.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field
from typing import Any

from workbench.domain import Category, ImageRecord, Instance, Rle, ValidationError
from workbench.formats.coco.entries import MAX_LISTED, CocoFormatError
from workbench.formats.coco.fields import (
    is_finite_number,
    is_int,
    is_number,
    outside,
    parse_bbox,
    parse_keypoints,
)
from workbench.geometry import clip_polygon, coco_rle_to_rle, validate_polygon, with_bbox_area
from workbench.utils.jsonfile import MAX_STORED_DEPTH, nested_too_deeply

__all__ = ["COMMON_KEYS", "Tally", "careful", "parse_annotation", "plain_annotation", "tally_notes"]


@dataclass
class Tally:
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
_FLOAT = {float}
COMMON_KEYS = frozenset({"id", "image_id", "category_id", "segmentation", "area", "bbox", "iscrowd"})
"""An annotation with only these keys has no optional field to look at."""
_ZERO_AREA = "has zero area"  # validate_polygon's wording for a part whose points lie on one line


def _plain_parts(seg: list[Any]) -> list[tuple[float, ...]] | None:
    """Every part as floats when all are plain lists of ints/floats of even length >= 6, else None.

    The finiteness, area and image-bounds checks of such parts are left to the bulk pass
    (:mod:`workbench.formats.coco.bulk`)."""
    parts = []
    for part in seg:
        if type(part) is not list or len(part) < 6 or len(part) % 2:
            return None
        kinds = set(map(type, part))
        if kinds == _FLOAT:
            parts.append(tuple(part))
        elif kinds <= _PLAIN:
            parts.append(tuple(map(float, part)))
        else:
            return None
    return parts


def _polygon_parts(seg: list[Any], aid: int, tally: Tally) -> list[tuple[float, ...]]:
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


def parse_annotation(
    raw: dict[str, Any],
    images: dict[int, ImageRecord],
    categories: dict[int, Category],
    tally: Tally,
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
    optional = not (raw.keys() <= COMMON_KEYS)  # score, attributes, keypoints, z_order, ... to look at

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
                return image_id, careful(raw, images, categories, tally, crowd_as_instances)
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


def plain_annotation(
    raw: dict[str, Any], images: dict[int, ImageRecord], categories: dict[int, Category]
) -> tuple[int, Instance] | None:
    """The common annotation read in a few checks: ``(image id, instance)``, or None for anything
    else (which :func:`parse_annotation` then reads, and refuses with the reason where it must).

    Common: only :data:`COMMON_KEYS`, known integer image and category ids, ``iscrowd`` 0 or 1, a
    non-empty list of plain polygons, a plain finite box that meets its image and a finite area.
    The polygons' own checks are the bulk pass's; its caller counts the shape in the tally.
    """
    if not raw.keys() <= COMMON_KEYS:
        return None
    get = raw.get
    image = images.get(image_id) if type(image_id := get("image_id")) is int else None
    category = categories.get(cid) if type(cid := get("category_id")) is int else None
    iscrowd = get("iscrowd", 0)
    seg = get("segmentation")
    box = get("bbox")
    area = get("area")
    if (
        image is None
        or category is None
        or type(iscrowd) is not int
        or not 0 <= iscrowd <= 1
        or type(seg) is not list
        or not seg
        or type(box) is not list
        or len(box) != 4
        or not set(map(type, box)) <= _PLAIN
        or not (type(area) is float or type(area) is int)
    ):
        return None
    x, y, w, h = box
    if not (
        math.isfinite(x + y + w + h) and w >= 0 and h >= 0 and 0 <= area < math.inf
        and x < image.width and y < image.height and x + w > 0 and y + h > 0
    ):
        return None
    parts = _plain_parts(seg)
    if parts is None:
        return None
    return image_id, Instance(
        category=category.name,
        polygons=tuple(parts),
        bbox_xywh=(float(x), float(y), float(w), float(h)),
        area=float(area),
        iscrowd=bool(iscrowd),
        source="imported",
        id=raw["id"],
        attributes={},
    )


def careful(
    raw: dict[str, Any], images: dict[int, ImageRecord], categories: dict[int, Category], tally: Tally,
    crowd_as_instances: bool,
) -> Instance | None:
    """The annotation read again with every check; only what that reading adds joins ``tally``
    (the counts the first reading took stand)."""
    scratch = Tally()
    _, inst = parse_annotation(raw, images, categories, scratch, crowd_as_instances)
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
    return ", ".join(map(str, ids[:MAX_LISTED])) + (" ..." if len(ids) > MAX_LISTED else "")


def tally_notes(tally: Tally, source: str, crowd_as_instances: bool) -> list[str]:
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
