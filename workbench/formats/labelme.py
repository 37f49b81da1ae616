"""LabelMe JSON <-> domain records.

One LabelMe file describes one image. Shapes map onto instances like this:

- ``polygon`` -> a polygon; ``rectangle`` -> its 4 corners; ``circle`` -> a 32-point polygon; all
  clipped to the image;
- shapes sharing a label and a ``group_id`` are one instance (a multi-part polygon);
- ``point`` shapes whose ``group_id`` is that of a shape group join that instance as keypoints (the
  point's label is the keypoint name; a category's schema lists point labels in first-seen order);
  other points become single-point keypoint instances of a category named by their label;
- ``__ignore__`` -> an instance of the IGNORE_LABEL category (an ignore region);
- ``line``/``linestrip``/``points``/``mask`` are skipped with a warning.

LabelMe has no visibility flag, so imported keypoints are visible (v = 2).
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

from workbench.domain import (
    AnnotatedImage,
    Category,
    Dataset,
    ImageRecord,
    Instance,
    KeypointSchema,
    Polygon,
    ValidationError,
    palette_color,
)
from workbench.formats.paths import DatasetRoot, json_files
from workbench.geometry import (
    clip_polygon,
    covers_no_pixel,
    mask_to_polygons,
    polygons_may_cover_no_pixel,
    rle_to_mask,
    validate_polygon,
    with_bbox_area,
)
from workbench.utils.jsonfile import MAX_STORED_DEPTH, nested_too_deeply, read_json_file

__all__ = [
    "CIRCLE_POINTS",
    "LabelmeFormatError",
    "dataset_to_labelme",
    "item_to_labelme",
    "labelme_to_item",
    "load_labelme",
]

CIRCLE_POINTS = 32
_SKIPPED_TYPES = ("line", "linestrip", "points", "mask")
_MAX_LISTED = 5


class LabelmeFormatError(ValidationError):
    """A LabelMe file breaks a rule; the message names the file and the shape."""


@dataclass
class _Group:
    """Shapes that become one instance, in the order their first shape appears."""

    label: str
    group_id: int | None
    polygons: list[Polygon] = field(default_factory=list)
    keypoints: dict[str, tuple[float, float]] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)
    single_point: bool = False


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _points(shape: dict[str, Any], where: str) -> list[tuple[float, float]]:
    pts = shape.get("points")
    if not isinstance(pts, list):
        raise LabelmeFormatError(f"{where}: 'points' must be a list of [x, y] pairs, got {pts!r}")
    out = []
    for pt in pts:
        if not (isinstance(pt, list | tuple) and len(pt) == 2 and all(_is_number(c) for c in pt)):
            raise LabelmeFormatError(f"{where}: point {pt!r} is not a pair of finite numbers [x, y]")
        out.append((float(pt[0]), float(pt[1])))
    return out


def _image_size(obj: dict[str, Any], data: bytes | None, src: str) -> tuple[int, int]:
    w, h = obj.get("imageWidth"), obj.get("imageHeight")
    if w is None or h is None:
        if data is None:
            raise LabelmeFormatError(f"{src}: imageWidth/imageHeight missing and no imageData to measure")
        from PIL import Image  # only needed for files that omit the size

        try:
            with Image.open(io.BytesIO(data)) as im:
                return im.size
        except Exception as exc:  # noqa: BLE001 - Pillow raises many kinds
            raise LabelmeFormatError(f"{src}: imageData is not a readable image ({exc})") from None
    for name, v in (("imageWidth", w), ("imageHeight", h)):
        if not _is_number(v) or v != int(v) or v <= 0:
            raise LabelmeFormatError(f"{src}: {name} must be a positive integer, got {v!r}")
    return int(w), int(h)


def _decode_image_data(value: Any, src: str) -> bytes | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise LabelmeFormatError(f"{src}: imageData must be a base64 string, got {type(value).__name__}")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise LabelmeFormatError(f"{src}: imageData is not valid base64") from None


def _guess_extension(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return ".png"
    if data.startswith(b"\xff\xd8"):
        return ".jpg"
    return ".img"


def _circle_polygon(center: tuple[float, float], edge: tuple[float, float]) -> Polygon | None:
    r = math.hypot(edge[0] - center[0], edge[1] - center[1])
    if r <= 0:
        return None
    coords: list[float] = []
    for i in range(CIRCLE_POINTS):
        t = 2 * math.pi * i / CIRCLE_POINTS
        coords += [center[0] + r * math.cos(t), center[1] + r * math.sin(t)]
    return tuple(coords)


def _shape_polygon(
    kind: str, pts: list[tuple[float, float]], size_wh: tuple[int, int], where: str, warnings: list[str]
) -> Polygon | None:
    """The shape's outline as one polygon clipped to the image, or None (with a warning)."""
    if kind == "rectangle":
        if len(pts) < 2:
            raise LabelmeFormatError(f"{where}: a rectangle needs 2 corner points, got {len(pts)}")
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
        if x1 <= x0 or y1 <= y0:
            warnings.append(f"{where}: rectangle has zero width or height; skipped")
            return None
        poly: Polygon | None = (x0, y0, x1, y0, x1, y1, x0, y1)
    elif kind == "circle":
        if len(pts) != 2:
            raise LabelmeFormatError(
                f"{where}: a circle needs a centre and a point on it, got {len(pts)} points"
            )
        poly = _circle_polygon(pts[0], pts[1])
        if poly is None:
            warnings.append(f"{where}: circle has zero radius; skipped")
            return None
    else:
        try:
            poly = validate_polygon([c for p in pts for c in p], where=where)
        except LabelmeFormatError:
            raise
        except ValidationError as exc:
            raise LabelmeFormatError(str(exc)) from None
    clipped = clip_polygon(poly, size_wh)
    if clipped is None:
        warnings.append(f"{where}: {kind} lies outside the image; skipped")
    elif polygons_may_cover_no_pixel([clipped])[0] and covers_no_pixel(
        Instance("-", polygons=(clipped,)), size_wh
    ):
        # an invisible shape of area 0 (inside one pixel, or a sliver between pixel centres)
        warnings.append(f"{where}: {kind} covers no pixel of the image; skipped")
        return None
    return clipped


def labelme_to_item(
    obj: dict[str, Any], *, json_path: Path, warnings: list[str] | None = None
) -> tuple[AnnotatedImage, list[Category]]:
    """Read one LabelMe dict: the image with its instances, and the categories it uses.

    Instance keypoints follow the returned categories' schemas (this file's point labels in
    first-seen order); ``load_labelme`` re-lays them onto schemas merged across files.
    Warnings (skipped shapes) are appended to ``warnings`` when given.
    """
    json_path = Path(json_path)
    src = str(json_path)
    warns: list[str] = warnings if warnings is not None else []
    if not isinstance(obj, dict):
        raise LabelmeFormatError(f"{src}: not a LabelMe file (the top level must be an object)")
    shapes = obj.get("shapes")
    if not isinstance(shapes, list):
        raise LabelmeFormatError(f"{src}: not a LabelMe file ('shapes' must be a list, got {shapes!r})")

    data = _decode_image_data(obj.get("imageData"), src)
    size_wh = _image_size(obj, data, src)
    image_path = obj.get("imagePath")
    if image_path is not None and not isinstance(image_path, str):
        raise LabelmeFormatError(f"{src}: imagePath must be a string, got {image_path!r}")
    image_path = (image_path or "").replace("\\", "/")  # files saved on Windows
    if not image_path and data is None:
        raise LabelmeFormatError(f"{src}: neither imagePath nor imageData says where the image is")
    file_name = (
        PurePosixPath(image_path).name if image_path else json_path.stem + _guess_extension(data or b"")
    )
    path = None if data is not None else os.path.normpath(str(json_path.parent / image_path))
    try:
        record = ImageRecord(file_name=file_name, width=size_wh[0], height=size_wh[1], path=path)
    except ValidationError as exc:
        raise LabelmeFormatError(f"{src}: {exc}") from None

    groups: dict[tuple[str, Any], _Group] = {}
    points: list[tuple[str, int | None, tuple[float, float], str]] = []
    for index, shape in enumerate(shapes):
        where = f"{src}: shape {index}"
        if not isinstance(shape, dict):
            raise LabelmeFormatError(f"{where}: must be an object, got {type(shape).__name__}")
        label = shape.get("label")
        if not isinstance(label, str) or not label.strip():
            raise LabelmeFormatError(f"{where}: label must be a non-empty string, got {label!r}")
        where = f"{src}: shape {index} ({label!r})"
        group_id = shape.get("group_id")
        if group_id is not None and not (isinstance(group_id, int) and not isinstance(group_id, bool)):
            raise LabelmeFormatError(f"{where}: group_id must be an integer or null, got {group_id!r}")
        kind = shape.get("shape_type") or "polygon"
        if kind in _SKIPPED_TYPES:
            warns.append(f"{where}: shape type {kind!r} is not imported; skipped")
            continue
        if kind not in ("polygon", "rectangle", "circle", "point"):
            warns.append(f"{where}: unknown shape type {kind!r}; skipped")
            continue
        pts = _points(shape, where)
        if kind == "point":
            if len(pts) != 1:
                raise LabelmeFormatError(f"{where}: a point shape needs exactly 1 point, got {len(pts)}")
            points.append((label, group_id, pts[0], where))
            continue
        poly = _shape_polygon(kind, pts, size_wh, where, warns)
        key = (label, group_id) if group_id is not None else (label, f"#{index}")
        group = groups.get(key)
        if group is None:
            group = groups[key] = _Group(label=label, group_id=group_id)
            if group_id is not None:
                group.attributes["group_id"] = group_id
        if poly is not None:
            group.polygons.append(poly)
        flags = shape.get("flags")
        if isinstance(flags, dict) and nested_too_deeply(flags):
            raise LabelmeFormatError(f"{where}: flags nested too deeply (over {MAX_STORED_DEPTH} levels)")
        if isinstance(flags, dict) and any(flags.values()):
            group.attributes.setdefault("flags", {}).update(flags)
        description = shape.get("description")
        if isinstance(description, str) and description.strip():
            group.attributes["description"] = description

    # Points join the first shape group with their group_id; the rest stand alone.
    by_group_id: dict[int, list[_Group]] = {}
    for group in groups.values():
        if group.group_id is not None:
            by_group_id.setdefault(group.group_id, []).append(group)
    schema_names: dict[str, list[str]] = {}
    for n, (label, group_id, xy, where) in enumerate(points):
        owners = by_group_id.get(group_id, []) if group_id is not None else []
        if owners:
            owner = owners[0]
            if len(owners) > 1:
                warns.append(
                    f"{where}: group_id {group_id} is shared by {[g.label for g in owners]}; "
                    f"the point joins {owner.label!r}"
                )
            if label in owner.keypoints:
                warns.append(f"{where}: keypoint {label!r} appears twice in group {group_id}; kept the first")
                continue
            owner.keypoints[label] = xy
            names = schema_names.setdefault(owner.label, [])
        else:
            if group_id is not None:
                warns.append(
                    f"{where}: no shape has group_id {group_id}; imported as a single-point instance"
                )
            single = groups[(label, f"#point{n}")] = _Group(label=label, group_id=group_id, single_point=True)
            single.keypoints[label] = xy
            names = schema_names.setdefault(label, [])
        if label not in names:
            names.append(label)

    categories: dict[str, Category] = {}
    instances: list[Instance] = []
    for group in groups.values():
        name = group.label
        if not group.polygons and not group.keypoints:
            warns.append(
                f"{src}: instance {group.label!r} (group_id {group.group_id}) has no shape left; skipped"
            )
            continue
        if name not in categories:
            schema = KeypointSchema(tuple(schema_names[name])) if name in schema_names else None
            categories[name] = Category(
                name=name, color=palette_color(len(categories), name), keypoints=schema
            )
        instances.append(_group_to_instance(group, categories[name], size_wh))
    item = AnnotatedImage(image=record, instances=tuple(instances), data=data)
    return item, list(categories.values())


def _group_to_instance(group: _Group, category: Category, size_wh: tuple[int, int]) -> Instance:
    keypoints = None
    if group.keypoints and category.keypoints is not None:
        keypoints = _layout_keypoints(group.keypoints, category.keypoints.names)
    attributes = dict(group.attributes)
    if group.single_point:
        ((x, y),) = group.keypoints.values()
        return Instance(
            category=category.name,
            bbox_xywh=(x - 0.5, y - 0.5, 1.0, 1.0),
            area=1.0,
            keypoints=keypoints,
            source="imported",
            attributes=attributes,
        )
    inst = Instance(
        category=category.name,
        polygons=tuple(group.polygons),
        keypoints=keypoints,
        source="imported",
        attributes=attributes,
    )
    return with_bbox_area(inst, size_wh)


def _layout_keypoints(points: dict[str, tuple[float, float]], names: tuple[str, ...]) -> tuple[float, ...]:
    """``(x, y, v) * K`` in schema order: v = 2 where a point was placed, (0, 0, 0) elsewhere."""
    flat: list[float] = []
    for name in names:
        if name in points:
            x, y = points[name]
            flat += [x, y, 2]
        else:
            flat += [0.0, 0.0, 0]
    return tuple(flat)


def _relayout(inst: Instance, old: KeypointSchema | None, new: KeypointSchema | None) -> Instance:
    if inst.keypoints is None or old is None or new is None or old.names == new.names:
        return inst
    kp = inst.keypoints
    placed = {name: (kp[3 * i], kp[3 * i + 1]) for i, name in enumerate(old.names) if kp[3 * i + 2] > 0}
    return replace(inst, keypoints=_layout_keypoints(placed, new.names))


def _resolve_image(
    item: AnnotatedImage, obj: dict[str, Any], path: Path, root: DatasetRoot
) -> tuple[AnnotatedImage, str | None]:
    """The item with its image file found inside ``root``, or the reason its imagePath is not read."""
    if item.data is not None or item.image.path is None:
        return item, None
    where = root.resolve(path.parent, obj["imagePath"])
    if where.path is not None:
        return replace(item, image=replace(item.image, path=str(where.path))), None
    if where.escapes is not None:
        return item, f"{where.escapes} (imagePath in {path})"
    return item, None


def load_labelme(folder_or_file: Path) -> Dataset:
    """Read a LabelMe file or every ``*.json`` under a folder (recursive) into one Dataset.

    Categories merge by name across files (keypoint names: union in first-seen order); image files
    that neither exist beside the JSON nor are embedded raise one error listing them. An imagePath
    leading outside the folder given (or the file's folder) is not read: that file's image goes to
    ``Dataset.skipped`` with the reason, and so do ``.json`` entries that are no regular file.
    """
    folder_or_file = Path(folder_or_file)
    warnings: list[str] = []
    merged: dict[str, Category] = {}
    per_file: list[tuple[AnnotatedImage, dict[str, Category]]] = []
    missing: list[str] = []
    skipped: list[tuple[str, str]] = []
    root = DatasetRoot(folder_or_file if folder_or_file.is_dir() else folder_or_file.parent)
    for path in json_files(folder_or_file, skipped, error=LabelmeFormatError, what="LabelMe .json files"):
        obj = read_json_file(path, error=LabelmeFormatError, loads=json.loads)
        try:
            item, cats = labelme_to_item(obj, json_path=path, warnings=warnings)
        except LabelmeFormatError:
            raise
        except ValidationError as exc:
            raise LabelmeFormatError(f"{path}: {exc}") from None
        item, outside = _resolve_image(item, obj, path, root)
        if outside is not None:
            skipped.append((obj["imagePath"], outside))
            continue
        if item.data is None and item.image.path is not None and not os.path.lexists(item.image.path):
            missing.append(item.image.path)
        for cat in cats:
            if cat.name not in merged:
                merged[cat.name] = cat
            elif cat.keypoints is not None:
                have = merged[cat.name].keypoints
                names = list(have.names) if have is not None else []
                names += [n for n in cat.keypoints.names if n not in names]
                merged[cat.name] = Category(
                    name=cat.name, color=merged[cat.name].color, keypoints=KeypointSchema(tuple(names))
                )
        per_file.append((item, {c.name: c for c in cats}))
    if missing:
        shown = ", ".join(missing[:_MAX_LISTED])
        more = f" and {len(missing) - _MAX_LISTED} more" if len(missing) > _MAX_LISTED else ""
        raise LabelmeFormatError(f"{folder_or_file}: {len(missing)} image file(s) missing: {shown}{more}")

    categories = [
        Category(name=c.name, color=palette_color(i, c.name), keypoints=c.keypoints)
        for i, c in enumerate(merged.values())
    ]
    final = {c.name: c for c in categories}
    items = []
    for item, cats in per_file:
        instances = tuple(
            _relayout(inst, cats[inst.category].keypoints, final[inst.category].keypoints)
            for inst in item.instances
        )
        items.append(AnnotatedImage(image=item.image, instances=instances, data=item.data))
    return Dataset(categories=categories, items=items, warnings=warnings, skipped=skipped)


# --------------------------------------------------------------------------------------------------
# domain -> LabelMe (for users who go on editing in labelme)


def _shape_dict(label: str, points: list[list[float]], kind: str, group_id: int | None) -> dict[str, Any]:
    return {
        "label": label,
        "points": points,
        "group_id": group_id,
        "description": "",
        "shape_type": kind,
        "flags": {},
    }


def item_to_labelme(
    item: AnnotatedImage,
    *,
    categories: list[Category],
    image_path: str | None = None,
    warnings: list[str] | None = None,
) -> dict[str, Any]:
    """One image as a LabelMe dict that ``labelme_to_item`` reads back to the same instances.

    Multi-part instances and instances with keypoints get a group_id of their own (LabelMe groups
    by label and group_id); keypoints become point shapes named after the schema. RLE masks become
    their outer polygons (holes cannot be drawn in LabelMe; a warning says so); box-only instances
    become rectangles. ``image_path`` defaults to the image's file name beside the JSON.
    """
    warns: list[str] = warnings if warnings is not None else []
    schemas = {c.name: c.keypoints for c in categories}
    shapes: list[dict[str, Any]] = []
    next_group = 0
    for n, inst in enumerate(item.instances):
        schema = schemas.get(inst.category)
        polygons = inst.polygons
        if inst.rle is not None:
            mask = rle_to_mask(inst.rle)
            polygons = mask_to_polygons(mask)
            warns.append(f"{item.image.file_name}: instance {n} ({inst.category}) RLE written as polygons")
        named = []
        if inst.keypoints is not None and schema is not None:
            kp = inst.keypoints
            named = [
                (schema.names[i], kp[3 * i], kp[3 * i + 1])
                for i in range(len(schema.names))
                if kp[3 * i + 2] > 0
            ]
        single_point = (
            not polygons and inst.bbox_xywh is not None and len(named) == 1 and named[0][0] == inst.category
        )
        if single_point:
            _, x, y = named[0]
            shapes.append(_shape_dict(inst.category, [[x, y]], "point", None))
            continue
        group_id = None
        if len(polygons) > 1 or named:
            group_id, next_group = next_group, next_group + 1
        for poly in polygons:
            pts = [[poly[i], poly[i + 1]] for i in range(0, len(poly), 2)]
            shapes.append(_shape_dict(inst.category, pts, "polygon", group_id))
        if not polygons:
            if inst.bbox_xywh is None or inst.bbox_xywh[2] <= 0 or inst.bbox_xywh[3] <= 0:
                warns.append(f"{item.image.file_name}: instance {n} ({inst.category}) has no shape; left out")
                continue
            x, y, w, h = inst.bbox_xywh
            shapes.append(_shape_dict(inst.category, [[x, y], [x + w, y + h]], "rectangle", group_id))
        for name, x, y in named:
            shapes.append(_shape_dict(name, [[x, y]], "point", group_id))
    data = base64.b64encode(item.data).decode("ascii") if item.data is not None else None
    return {
        "version": "5.4.1",
        "flags": {},
        "shapes": shapes,
        "imagePath": image_path if image_path is not None else item.image.file_name,
        "imageData": data,
        "imageHeight": item.image.height,
        "imageWidth": item.image.width,
    }


def dataset_to_labelme(ds: Dataset, *, warnings: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """JSON file name (the image's stem + ``.json``) -> LabelMe dict, for every image of ``ds``."""
    out: dict[str, dict[str, Any]] = {}
    for item in ds.items:
        name = str(PurePosixPath(item.image.file_name).with_suffix(".json"))
        if name in out:
            raise ValidationError(f"two images would both be written to {name}")
        out[name] = item_to_labelme(item, categories=ds.categories, warnings=warnings)
    return out
