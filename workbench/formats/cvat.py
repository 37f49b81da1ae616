"""CVAT for images 1.1 XML -> domain records (the writer is ``formats/cvat_write.py``).

The file is ``<annotations>`` with ``<meta>`` (the labels: colour, attributes, skeleton sublabels
and edges) and one ``<image name width height>`` per image holding its shapes. Shapes map onto
instances like this:

- ``polygon`` -> a polygon; ``box`` -> a box-only instance (a rotated box: its 4 corners as a
  polygon); ``ellipse`` -> a 32-point polygon; all clipped to the image;
- ``mask`` -> an RLE mask. CVAT's RLE is a list of run lengths over the box ``left, top, width,
  height``, row by row, starting with a background run (which may be 0);
- ``skeleton`` -> keypoints of the skeleton label's schema (sublabels in node order, edges from
  the label's SVG): ``outside`` -> v = 0, ``occluded`` -> v = 1, else v = 2; ``points`` -> visible
  keypoints of a schema ``1..N``;
- shapes of one label sharing a ``group_id`` on an image are one instance (CVAT's grouping, which
  its COCO export merges the same way): parts of a polygon, or an outline with its skeleton;
- ``occluded="1"`` -> the attribute ``occluded``; ``<attribute>`` values are typed by the label's
  definitions (checkbox, select/radio, number, text); ``z_order`` -> ``Instance.z_order``;
- ``polyline``, ``cuboid``, ``tag`` and video ``track`` elements are skipped, counted in a warning.

Images are found by their ``name`` in ``images/`` beside the XML (CVAT's export), ``images/<subset>/``,
or beside the XML, inside the dataset folder only; an image that is not there is matched by name to
the project's images.
"""

from __future__ import annotations

import math
import os
import re
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from workbench.domain import (
    BUILTIN_ATTRIBUTES,
    SPLITS,
    AnnotatedImage,
    AttributeDef,
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
from workbench.formats.coco.layouts import normalize_split
from workbench.formats.cvat_parts import (
    attribute_value,
    cvat_rle_to_mask,
    ellipse,
    parse_skeleton_svg,
    rotated,
)
from workbench.formats.paths import DatasetRoot
from workbench.formats.xmlsafe import finite_float, read_xml_file
from workbench.geometry import (
    clip_polygon,
    covers_no_pixel,
    mask_to_rle,
    merge_rles,
    polygons_may_cover_no_pixel,
    polygons_to_rle,
    validate_polygon,
    with_bbox_area,
)

__all__ = ["DEFAULT_SUBSET", "CvatFormatError", "load_cvat", "parse_cvat"]

MAX_MASK_PIXELS = 1 << 28
"""The largest image a mask is decoded for (the import refuses images over 179 million pixels anyway):
width and height are numbers in the file, and a mask is a byte per pixel of the image."""
DEFAULT_SUBSET = "default"
"""The subset of images without a split (datumaro's name for it; CVAT's project export too)."""

_SKIPPED = ("polyline", "cuboid", "tag")
_SHAPES = ("box", "polygon", "points", "ellipse", "mask", "skeleton")
_MAX_LISTED = 5
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")


class CvatFormatError(ValidationError):
    """A CVAT XML file breaks a rule; the message names the file and the shape."""


@dataclass
class _Label:
    name: str
    color: str | None = None
    kind: str = "any"
    attributes: list[AttributeDef] = field(default_factory=list)
    svg: str = ""
    sublabels: list[str] = field(default_factory=list)


def _text(el: ET.Element | None, tag: str) -> str:
    child = el.find(tag) if el is not None else None
    return (child.text or "").strip() if child is not None else ""


def _attribute_def(el: ET.Element, label: str, src: str, warnings: list[str]) -> AttributeDef | None:
    name = _text(el, "name")
    kind = _text(el, "input_type").lower()
    values = [v.strip() for v in (el.findtext("values") or "").split("\n") if v.strip()]
    if name in BUILTIN_ATTRIBUTES:
        return None  # every class has it already
    try:
        if kind in ("select", "radio") and values:
            return AttributeDef(name, "select", options=tuple(dict.fromkeys(values)))
        return AttributeDef(name, {"checkbox": "checkbox", "number": "number"}.get(kind, "text"))
    except ValidationError as exc:
        warnings.append(f"{src}: label {label!r}: attribute left undefined ({exc})")
        return None


def _parse_labels(meta: ET.Element | None, src: str, warnings: list[str]) -> dict[str, _Label]:
    labels: dict[str, _Label] = {}
    parents: list[tuple[str, str]] = []
    for el in meta.iter("label") if meta is not None else ():
        name = _text(el, "name")
        if not name:
            raise CvatFormatError(f"{src}: a <label> in <meta> has no <name>")
        parent = _text(el, "parent")
        if parent:
            parents.append((parent, name))
            continue
        color = _text(el, "color")
        label = labels[name] = _Label(
            name, color if _COLOR.match(color) else None, _text(el, "type") or "any"
        )
        label.svg = _text(el, "svg")
        attrs = el.find("attributes")
        for a in attrs.iter("attribute") if attrs is not None else ():
            d = _attribute_def(a, name, src, warnings)
            if d is not None and all(d.name != x.name for x in label.attributes):
                label.attributes.append(d)
    for parent, name in parents:
        if parent not in labels:
            raise CvatFormatError(f"{src}: sublabel {name!r} names the parent {parent!r}, which is no label")
        labels[parent].sublabels.append(name)
    return labels


def _categories(
    labels: dict[str, _Label], points_k: dict[str, int], seen: dict[str, list[str]], used: list[str]
) -> dict[str, Category]:
    """Categories of the labels (and of labels used but not declared); a skeleton whose sublabels
    the meta does not list takes the point labels its shapes use, in first-seen order."""
    cats: dict[str, Category] = {}
    for name in [*labels, *(u for u in used if u not in labels)]:
        label = labels.get(name, _Label(name))
        schema = None
        if label.sublabels or name in seen:
            schema = parse_skeleton_svg(label.svg, label.sublabels or seen[name])
        elif name in points_k:
            schema = KeypointSchema(tuple(str(i + 1) for i in range(points_k[name])))
        cats[name] = Category(
            name=name,
            color=label.color or palette_color(len(cats), name),
            keypoints=schema,
            attributes=tuple(label.attributes),
        )
    return cats


# --------------------------------------------------------------------------------------------------
# shapes


def _float(el: ET.Element, key: str, where: str) -> float:
    raw = el.get(key)
    v = finite_float(raw)
    if v is None:
        raise CvatFormatError(f"{where}: {key}={raw!r} is not a finite number")
    return v


def _int(el: ET.Element, key: str, where: str, default: int | None = None) -> int:
    raw = el.get(key)
    if raw is None and default is not None:
        return default
    try:
        return int(str(raw).strip())
    except ValueError:
        raise CvatFormatError(f"{where}: {key}={raw!r} is not an integer") from None


def _points(el: ET.Element, where: str) -> list[float]:
    raw = el.get("points")
    if raw is None:
        raise CvatFormatError(f"{where}: no points")
    values = raw.replace(";", ",").split(",")
    if len(values) == 2 * (raw.count(";") + 1):  # the common case at C speed; the loop names the bad point
        try:
            out = [float(v) for v in values]
        except ValueError:
            out = []
        if out and math.isfinite(sum(out)):
            return out
    out = []
    for pair in raw.strip().split(";"):
        xy = pair.split(",")
        try:
            x, y = float(xy[0]), float(xy[1])
        except (ValueError, IndexError):
            raise CvatFormatError(f"{where}: point {pair!r} is not 'x,y'") from None
        if len(xy) != 2 or not math.isfinite(x + y):
            raise CvatFormatError(f"{where}: point {pair!r} is not a pair of finite numbers 'x,y'")
        out += [x, y]
    return out


@dataclass
class _Object:
    """The shapes of one instance: one shape, or the shapes of one label and group."""

    label: str
    polygons: list[Polygon] = field(default_factory=list)
    masks: list[Rle] = field(default_factory=list)
    box: tuple[float, float, float, float] | None = None
    keypoints: dict[str, tuple[float, float, int]] = field(default_factory=dict)
    points: list[float] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)
    z_order: int = 0


class _ImageReader:
    """The shapes of one ``<image>`` element read into objects."""

    def __init__(self, src: str, image: ET.Element, labels: dict[str, _Label], warnings: list[str]) -> None:
        self.src, self.labels, self.warnings = src, labels, warnings
        name = image.get("name") or ""
        self.where = f"{src}: image {name!r}"
        w, h = _int(image, "width", self.where, 0), _int(image, "height", self.where, 0)
        if w <= 0 or h <= 0:
            raise CvatFormatError(f"{self.where}: width and height must be positive integers")
        self.size_wh = (w, h)
        self.objects: dict[Any, _Object] = {}
        self.skipped: Counter[str] = Counter()
        self.polygons: list[tuple[_Object, Polygon, str]] = []  # for drop_invisible
        self.defs: dict[str, dict[str, AttributeDef]] = {}  # per label: its attributes and the built-in ones

    def read(self, image: ET.Element) -> None:
        for n, el in enumerate(image):
            if el.tag in _SKIPPED:
                self.skipped[el.tag] += 1
            elif el.tag in _SHAPES:
                self._shape(n, el)
        self.drop_invisible()

    def _shape(self, n: int, el: ET.Element) -> None:
        label = el.get("label")
        where = f"{self.where}: {el.tag} {n} ({label!r})"
        if not label:
            raise CvatFormatError(f"{where}: no label")
        group = _int(el, "group_id", where, 0)
        key: Any = (label, group) if group else n
        obj = self.objects.setdefault(key, _Object(label))
        obj.z_order = max(obj.z_order, _int(el, "z_order", where, 0))
        defs = self.defs.get(label)
        if defs is None:
            defs = {d.name: d for d in self.labels.get(label, _Label(label)).attributes}
            defs = self.defs[label] = {**defs, **{b: AttributeDef(b) for b in BUILTIN_ATTRIBUTES}}
        if el.get("occluded") == "1":
            obj.attributes["occluded"] = True
        for a in el.findall("attribute"):
            name = a.get("name") or ""
            try:
                obj.attributes.setdefault(name, attribute_value(defs.get(name), a.text or ""))
            except (ValueError, ValidationError):
                self.warnings.append(
                    f"{where}: attribute {name!r} value {a.text!r} does not fit its definition; left out"
                )
        kind = el.tag
        if kind == "skeleton":
            self._skeleton(obj, el, where)
        elif kind == "points":
            obj.points += _points(el, where)
        elif kind == "mask":
            self._mask(obj, el, where)
        elif kind == "box" and not _float_or0(el, "rotation"):
            x0, y0 = max(0.0, _float(el, "xtl", where)), max(0.0, _float(el, "ytl", where))
            x1 = min(float(self.size_wh[0]), _float(el, "xbr", where))
            y1 = min(float(self.size_wh[1]), _float(el, "ybr", where))
            if x1 <= x0 or y1 <= y0:
                self.warnings.append(f"{where}: box has no area inside the image; skipped")
            elif obj.box is None:
                obj.box = (x0, y0, x1 - x0, y1 - y0)
        else:
            if kind == "box":
                x0, y0, x1, y1 = (_float(el, k, where) for k in ("xtl", "ytl", "xbr", "ybr"))
                corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
                flat = rotated((x0 + x1) / 2, (y0 + y1) / 2, corners, _float_or0(el, "rotation"))
            elif kind == "ellipse":
                cx, cy, rx, ry = (_float(el, k, where) for k in ("cx", "cy", "rx", "ry"))
                flat = ellipse(cx, cy, abs(rx), abs(ry), _float_or0(el, "rotation"))
            else:
                flat = _points(el, where)
            try:
                poly = validate_polygon(flat, where=where)
            except ValidationError as exc:
                raise CvatFormatError(str(exc)) from None
            w, h = self.size_wh
            xs, ys = poly[0::2], poly[1::2]
            inside = min(xs) >= 0 and min(ys) >= 0 and max(xs) <= w and max(ys) <= h
            clipped = poly if inside else clip_polygon(poly, self.size_wh)
            if clipped is None:
                self.warnings.append(f"{where}: {kind} lies outside the image; skipped")
            else:
                obj.polygons.append(clipped)
                self.polygons.append((obj, clipped, f"{where}: {kind}"))

    def drop_invisible(self) -> None:
        """Polygons that cover no pixel (inside one pixel, a sliver) go, with a warning; one numpy
        pass over the image's polygons finds the few that need rasterising."""
        if not self.polygons:
            return
        maybe = polygons_may_cover_no_pixel([p for _, p, _ in self.polygons])
        for (obj, poly, what), flag in zip(self.polygons, maybe, strict=True):
            if flag and covers_no_pixel(Instance("-", polygons=(poly,)), self.size_wh):
                obj.polygons.remove(poly)
                self.warnings.append(f"{what} covers no pixel of the image; skipped")
        self.polygons.clear()

    def _skeleton(self, obj: _Object, el: ET.Element, where: str) -> None:
        for p in el.findall("points"):
            name = p.get("label") or ""
            xy = _points(p, f"{where}: point {name!r}")
            if p.get("outside") == "1":
                obj.keypoints.setdefault(name, (0.0, 0.0, 0))
            else:
                obj.keypoints.setdefault(name, (xy[0], xy[1], 1 if p.get("occluded") == "1" else 2))

    def _mask(self, obj: _Object, el: ET.Element, where: str) -> None:
        try:
            counts = [int(c) for c in (el.get("rle") or "").replace(" ", "").split(",") if c != ""]
        except ValueError:
            raise CvatFormatError(f"{where}: rle must be comma-separated integers") from None
        left, top = _int(el, "left", where), _int(el, "top", where)
        width, height = _int(el, "width", where), _int(el, "height", where)
        w, h = self.size_wh
        if width * height > max(w * h, 1) * 4 or w * h > MAX_MASK_PIXELS:
            raise CvatFormatError(
                f"{where}: a {width}x{height} mask on a {w}x{h} image is more than this reader decodes"
            )
        crop = cvat_rle_to_mask(counts, width, height, where=where, error=CvatFormatError)
        x0, y0, x1, y1 = max(left, 0), max(top, 0), min(left + width, w), min(top + height, h)
        if x0 != left or y0 != top or x1 != left + width or y1 != top + height:
            self.warnings.append(f"{where}: mask reaches outside the image; clipped to it")
        visible = crop[y0 - top : y1 - top, x0 - left : x1 - left] if x1 > x0 and y1 > y0 else crop[:0]
        if not visible.any():
            self.warnings.append(f"{where}: mask covers no pixel of the image; skipped")
            return
        full = np.zeros((h, w), dtype=np.uint8, order="F")  # what the RLE encoder reads: no transposing copy
        full[y0:y1, x0:x1] = visible
        obj.masks.append(mask_to_rle(full))  # compressed at once: many full-size masks would not fit memory


def _float_or0(el: ET.Element, key: str) -> float:
    try:
        v = float(el.get(key) or 0)
    except ValueError:
        return 0.0
    return v if math.isfinite(v) else 0.0


def _instance(obj: _Object, cat: Category, size_wh: tuple[int, int]) -> Instance | None:
    keypoints = None
    schema = cat.keypoints
    if schema is not None and obj.keypoints:
        keypoints = tuple(v for name in schema.names for v in obj.keypoints.get(name, (0.0, 0.0, 0)))
    elif schema is not None and obj.points:
        pts = obj.points
        flat: list[float] = []
        for i in range(schema.num_keypoints):
            flat += [pts[2 * i], pts[2 * i + 1], 2] if 2 * i < len(pts) else [0.0, 0.0, 0]
        keypoints = tuple(flat)
    common: dict[str, Any] = {
        "category": cat.name, "keypoints": keypoints, "source": "imported",
        "attributes": obj.attributes, "z_order": obj.z_order,
    }  # fmt: skip
    if obj.masks:
        parts = obj.masks + ([polygons_to_rle(obj.polygons, size_wh)] if obj.polygons else [])
        rle = merge_rles(parts) if len(parts) > 1 else parts[0]
        return with_bbox_area(Instance(rle=rle, **common), size_wh)
    if obj.polygons:
        xs = [v for p in obj.polygons for v in p[0::2]]
        ys = [v for p in obj.polygons for v in p[1::2]]
        x0, y0 = min(xs), min(ys)  # COCO's box of the points (as polygons_bbox_xywh), without numpy per shape
        box = (x0, y0, max(xs) - x0, max(ys) - y0)
        return with_bbox_area(Instance(polygons=tuple(obj.polygons), bbox_xywh=box, **common), size_wh)
    if obj.box is not None:
        return Instance(bbox_xywh=obj.box, area=obj.box[2] * obj.box[3], **common)
    if keypoints is not None and sum(1 for v in keypoints[2::3] if v) == 1 and not obj.box:
        i = next(i for i in range(0, len(keypoints), 3) if keypoints[i + 2])
        x, y = keypoints[i], keypoints[i + 1]
        return Instance(bbox_xywh=(x - 0.5, y - 0.5, 1.0, 1.0), area=1.0, **common)
    if keypoints is not None and any(keypoints[2::3]):
        return with_bbox_area(Instance(**common), size_wh)
    return None


def parse_cvat(root: ET.Element, *, source: str) -> Dataset:
    """The images of a CVAT XML tree with their instances (``image.path`` unset), its labels as
    categories, and warnings for what was skipped."""
    if root.tag != "annotations":
        raise CvatFormatError(
            f"{source}: not a CVAT XML file (the root element is <{root.tag}>, not <annotations>)"
        )
    warnings: list[str] = []
    version = (root.findtext("version") or "").strip()
    if version and not version.startswith("1."):
        warnings.append(f"{source}: CVAT XML version {version}; read as 1.1")
    labels = _parse_labels(root.find("meta"), source, warnings)
    readers: list[tuple[ET.Element, _ImageReader]] = []
    skipped: Counter[str] = Counter()
    for image in root.iter("image"):
        reader = _ImageReader(source, image, labels, warnings)
        reader.read(image)
        skipped.update(reader.skipped)
        readers.append((image, reader))
    tracks = len(root.findall("track"))
    if tracks:
        warnings.append(
            f"{source}: {tracks} track(s) (video annotation) not imported; export the task as images"
        )
    for kind, n in sorted(skipped.items()):
        warnings.append(f"{source}: {n} {kind} shape(s) not imported (no instance shape in the workbench)")
    points_k: dict[str, int] = {}
    seen: dict[str, list[str]] = {}
    used: list[str] = []
    for _, reader in readers:
        for obj in reader.objects.values():
            if obj.label not in used:
                used.append(obj.label)
            if obj.keypoints:
                names = seen.setdefault(obj.label, [])
                names += [n for n in obj.keypoints if n not in names]
            if obj.points and not obj.keypoints:
                points_k[obj.label] = max(points_k.get(obj.label, 0), len(obj.points) // 2)
    unknown = [u for u in used if u not in labels]
    if unknown and labels:
        warnings.append(f"{source}: labels {unknown} are not in <meta>; added as classes without attributes")
    cats = _categories(labels, points_k, seen, used)
    items: list[AnnotatedImage] = []
    odd_subsets: list[str] = []
    for image, reader in readers:
        instances = []
        for obj in reader.objects.values():
            inst = _instance(obj, cats[obj.label], reader.size_wh)
            if inst is None:
                warnings.append(f"{reader.where}: an object of {obj.label!r} has no shape left; skipped")
            else:
                instances.append(inst)
        subset = (image.get("subset") or "").strip()
        split = normalize_split(subset) if subset else None
        if split not in SPLITS:
            if split not in (None, DEFAULT_SUBSET) and subset not in odd_subsets:
                odd_subsets.append(subset)
            split = None
        try:
            record = ImageRecord(file_name=image.get("name") or "", width=reader.size_wh[0],
                                 height=reader.size_wh[1], split=split)  # fmt: skip
        except ValidationError as exc:
            raise CvatFormatError(f"{reader.where}: {exc}") from None
        if not record.file_name:
            raise CvatFormatError(f"{reader.where}: the <image> has no name")
        items.append(AnnotatedImage(image=record, instances=tuple(instances)))
    if odd_subsets:
        warnings.append(
            f"{source}: subsets {odd_subsets} are no split ({', '.join(SPLITS)}); their images have none"
        )
    return Dataset(categories=list(cats.values()), items=items, warnings=warnings)


def _annotation_file(path: Path) -> Path:
    """The XML of a file or folder: CVAT's ``annotations.xml``, else the folder's only ``*.xml``
    (datumaro writes ``<subset>.xml``)."""
    if not path.is_dir():
        if not os.path.lexists(path):
            raise CvatFormatError(f"{path}: no such file or folder")
        return path
    if os.path.lexists(path / "annotations.xml"):
        return path / "annotations.xml"
    found = sorted(p.name for p in path.glob("*.xml"))
    if len(found) == 1:
        return path / found[0]
    if not found:
        raise CvatFormatError(f"{path}: no annotations.xml (nor any other .xml) in this folder")
    raise CvatFormatError(f"{path}: several XML files ({', '.join(found)}); import them one at a time")


def load_cvat(
    path: Path, *, images_dir: Path | None = None, known_names: Collection[str] = (), root: Path | None = None
) -> Dataset:
    """Read a CVAT XML file (or the XML of an export folder, see ``_annotation_file``) and find its images.

    Images are looked for in ``images_dir`` when given, else ``images/`` beside the XML (also
    ``images/<subset>/``), else beside it, inside ``root`` (default: ``images_dir``, else the XML's
    folder) only. A name leading outside is not read: its image goes to ``Dataset.skipped``. An
    image missing everywhere whose name is in ``known_names`` is matched by name by the importer;
    other missing images are one error listing them.
    """
    path = _annotation_file(Path(path))
    tree = read_xml_file(path, error=CvatFormatError)
    ds = parse_cvat(tree, source=str(path))
    subsets = [(image.get("subset") or "").strip() for image in tree.iter("image")]  # one per item
    base = path.parent
    inside = DatasetRoot(
        Path(root) if root is not None else Path(images_dir) if images_dir is not None else base
    )
    known = set(known_names)
    items, missing = [], []
    for item, subset_name in zip(ds.items, subsets, strict=True):
        name = item.image.file_name
        subset = [base / "images" / subset_name] if subset_name and "/" not in subset_name else []
        folders = [Path(images_dir)] if images_dir is not None else [base / "images", *subset, base]
        escapes = None
        for folder in folders:
            found = inside.resolve(folder, name)
            escapes = escapes or found.escapes
            if found.path is not None:
                items.append(replace(item, image=replace(item.image, path=str(found.path))))
                break
        else:
            if name in known:
                items.append(item)
            elif escapes is not None:
                ds.skipped.append((name, f"{escapes} (image name in {path})"))
            else:
                missing.append(name)
    if missing:
        shown = ", ".join(missing[:_MAX_LISTED]) + (
            f" and {len(missing) - _MAX_LISTED} more" if len(missing) > _MAX_LISTED else ""
        )
        where = ", ".join(
            str(f) for f in ([images_dir] if images_dir is not None else [base / "images", base])
        )
        raise CvatFormatError(f"{path}: {len(missing)} image file(s) missing (looked in {where}): {shown}")
    ds.items = items
    return ds
