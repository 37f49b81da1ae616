"""Pascal VOC <-> domain records: ``Annotations/*.xml`` boxes and the segmentation palette PNGs.

Layout (what VOC2012, datumaro and CVAT write)::

    Annotations/<stem>.xml           one <object> per instance: name, bndbox (1-based, inclusive pixel
                                     indices), truncated / difficult / occluded, datumaro's <attributes>
    JPEGImages/<stem>.<ext>          the images
    SegmentationClass/<stem>.png     palette PNG: 0 background, class i -> i, 255 void (ignore)
    SegmentationObject/<stem>.png    palette PNG: 0 background, object n of the XML -> n, 255 void
    ImageSets/Main/<split>.txt       the stems of each split (ImageSets/Segmentation/ too)
    labelmap.txt                     datumaro's class list ``name:r,g,b::``; background first

Import: an object's mask is its index in the object map (instances), its class the XML's, else the
majority of the class map under it; without an object map, instances are the class map's
connected components. Boxes convert as Detectron2 does: COCO ``x0 = xmin - 1``, ``x1 = xmax``.
Export (:mod:`workbench.formats.voc_write`, its names re-exported here): masks by z-order, crowd and
ignore regions void; VOC has no keypoints (the notes count what was left out).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from workbench.domain import (
    IGNORE_LABEL,
    AnnotatedImage,
    AttributeDef,
    Category,
    Dataset,
    ImageRecord,
    Instance,
    ValidationError,
    palette_color,
)
from workbench.formats.folders import (
    images_by_stem,
    mask_instances,
    read_label_png,
    upright_size,
)
from workbench.formats.labelmaps import IGNORE_INDEX, palette
from workbench.formats.paths import DatasetRoot
from workbench.formats.voc_write import FLAGS, VOID_NAMES, VocExport, dataset_to_voc, save_index_png
from workbench.formats.xmlsafe import finite_float, read_xml_file
from workbench.geometry import mask_to_rle, with_bbox_area

__all__ = [
    "VOC_CLASSES",
    "VocExport",
    "VocFormatError",
    "dataset_to_voc",
    "load_voc",
    "save_index_png",
    "xml_to_item",
]

VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip
"""VOC2012's classes by class-map index, for datasets that ship no labelmap.txt."""


class VocFormatError(ValidationError):
    """A VOC dataset breaks a rule; the message names the file and the problem."""


# --------------------------------------------------------------------------------------------------
# VOC -> domain


def _text(el: ET.Element | None, tag: str) -> str | None:
    child = el.find(tag) if el is not None else None
    return child.text.strip() if child is not None and child.text is not None else None


def _number(el: ET.Element | None, tag: str, where: str) -> float:
    raw = _text(el, tag)
    v = finite_float(raw)
    if v is None:
        raise VocFormatError(f"{where}: <{tag}> must be a number, got {raw!r}")
    return v


def _attr_value(raw: str, d: AttributeDef | None) -> Any:
    """datumaro writes every attribute as text: read it back as the class defines it."""
    low = raw.lower()
    if (d is not None and d.kind == "number") or (d is None and _is_number_text(raw)):
        try:
            v = float(raw)
            return int(v) if v.is_integer() and "." not in raw else v
        except ValueError:
            return raw
    if (d is None or d.kind == "checkbox") and low in ("true", "false"):
        return low == "true"
    return raw


def _is_number_text(raw: str) -> bool:
    try:
        return math.isfinite(float(raw))
    except ValueError:
        return False


def xml_to_item(
    root_el: ET.Element, *, src: str, categories: dict[str, Category] | None = None
) -> tuple[str, tuple[int, int] | None, list[Instance]]:
    """One annotation XML: the image's file name, its size (None if missing) and box instances."""
    cats = categories or {}
    filename = _text(root_el, "filename") or ""
    size_el = root_el.find("size")
    size = None
    if size_el is not None and _text(size_el, "width") and _text(size_el, "height"):
        w, h = _number(size_el, "width", src), _number(size_el, "height", src)
        if w > 0 and h > 0 and w.is_integer() and h.is_integer():
            size = (int(w), int(h))
    out: list[Instance] = []
    for n, obj in enumerate(root_el.findall("object"), 1):
        name = _text(obj, "name")
        where = f"{src}: object {n}"
        if not name:
            raise VocFormatError(f"{where}: <name> is missing")
        attrs: dict[str, Any] = {}
        for flag in FLAGS:
            raw = _text(obj, flag)
            if raw not in (None, "", "0", "false", "False"):
                attrs[flag] = True
        pose = _text(obj, "pose")
        if pose and pose != "Unspecified":
            attrs["pose"] = pose
        defs = {a.name: a for a in cats[name].all_attributes} if name in cats else {}
        for a in obj.findall("attributes/attribute"):
            key, raw = _text(a, "name"), _text(a, "value")
            if key and raw is not None and key not in FLAGS:
                attrs[key] = _attr_value(raw, defs.get(key))
        box_el = obj.find("bndbox")
        box = None
        if box_el is not None:
            x0, y0 = _number(box_el, "xmin", where), _number(box_el, "ymin", where)
            x1, y1 = _number(box_el, "xmax", where), _number(box_el, "ymax", where)
            if x1 < x0 or y1 < y0:
                raise VocFormatError(f"{where}: bndbox max is below min ({x0:g}, {y0:g}, {x1:g}, {y1:g})")
            box = (x0 - 1, y0 - 1, x1 - x0 + 1, y1 - y0 + 1)
        crowd = attrs.pop("is_crowd", False) is True  # datumaro writes COCO's iscrowd as this attribute
        out.append(Instance(name, bbox_xywh=box, iscrowd=crowd, source="imported", attributes=attrs))
    return filename, size, out


def _parse_xml(path: Path) -> ET.Element:
    root_el = read_xml_file(path, error=VocFormatError)
    if root_el.tag != "annotation":
        raise VocFormatError(f"{path}: not a VOC annotation (the root element is <{root_el.tag}>)")
    return root_el


def read_labelmap(path: Path) -> list[tuple[str, tuple[int, int, int] | None]]:
    """datumaro's ``labelmap.txt``: ``name:r,g,b:parts:actions`` per line, background first."""
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, _, rest = line.partition(":")
        color_text = rest.split(":", 1)[0].strip()
        color = None
        if color_text:
            try:
                r, g, b = (int(v) for v in color_text.split(","))
            except ValueError:
                raise VocFormatError(f"{path}: line {n}: colour must be r,g,b, got {color_text!r}") from None
            color = (r, g, b)
        out.append((name.strip(), color))
    return out


def _splits(folder: Path) -> dict[str, str]:
    """stem -> split from ImageSets/Main (or Segmentation) lists; trainval only where no train/val."""
    out: dict[str, str] = {}
    for sub in ("Main", "Segmentation"):
        for split, file in (("train", "train"), ("val", "val"), ("test", "test"), ("train", "trainval")):
            p = folder / "ImageSets" / sub / f"{file}.txt"
            if p.is_file():
                for line in p.read_text(encoding="utf-8", errors="replace").split():
                    out.setdefault(line.strip(), split)
    return out


def _class_of(values: np.ndarray) -> int | None:
    vals = values[(values > 0) & (values != IGNORE_INDEX)]
    return int(np.bincount(vals).argmax()) if vals.size else None


def _to_indices(arr: np.ndarray, colors: dict[tuple[int, int, int], int], path: Path) -> np.ndarray:
    """An RGB colour map as indices through the labelmap's (or VOC's) colours."""
    if arr.ndim == 2:
        return arr
    key = (arr[..., 0] << 16) | (arr[..., 1] << 8) | arr[..., 2]
    out = np.full(key.shape, -1, dtype=np.int64)
    for (r, g, b), i in colors.items():
        out[key == (r << 16 | g << 8 | b)] = i
    if (out < 0).any():
        y, x = np.argwhere(out < 0)[0]
        raise VocFormatError(f"{path}: colour {tuple(int(v) for v in arr[y, x])} at ({x}, {y}) is no class of the labelmap")
    return out


def load_voc(path: Path) -> Dataset:
    """Read a VOC folder (``Annotations``, ``JPEGImages``, ``Segmentation*``, ``ImageSets``)."""
    folder = Path(path)
    if not folder.is_dir():
        raise VocFormatError(f"{folder}: a VOC dataset is a folder (with Annotations/ or SegmentationClass/)")
    root = DatasetRoot(folder)
    ann_dir, cls_dir, obj_dir = folder / "Annotations", folder / "SegmentationClass", folder / "SegmentationObject"
    if not (ann_dir.is_dir() or cls_dir.is_dir()):
        raise VocFormatError(f"{folder}: not a VOC folder (no Annotations/ or SegmentationClass/)")
    warnings: list[str] = []
    skipped: list[tuple[str, str]] = []
    labelmap = read_labelmap(folder / "labelmap.txt") if (folder / "labelmap.txt").is_file() else None
    names = [n if n not in VOID_NAMES else IGNORE_LABEL for n, _ in labelmap] if labelmap else list(VOC_CLASSES)
    pal = palette()
    # a label without a colour has VOC's colour of its index (datumaro's generate_colormap)
    colors = {c or (pal[3 * i], pal[3 * i + 1], pal[3 * i + 2]): IGNORE_INDEX if n in VOID_NAMES else i
              for i, (n, c) in enumerate(labelmap)} if labelmap else {
        (pal[3 * i], pal[3 * i + 1], pal[3 * i + 2]): i for i in range(len(VOC_CLASSES))
    }
    colors.setdefault((pal[3 * IGNORE_INDEX], pal[3 * IGNORE_INDEX + 1], pal[3 * IGNORE_INDEX + 2]), IGNORE_INDEX)
    colors.setdefault((0, 0, 0), 0)
    split_of = _splits(folder)
    images = images_by_stem(folder / "JPEGImages", root) if (folder / "JPEGImages").is_dir() else {}
    stems = sorted({p.stem for p in ann_dir.glob("*.xml")} if ann_dir.is_dir() else set())
    stems += sorted({p.stem for p in cls_dir.glob("*.png")} - set(stems)) if cls_dir.is_dir() else []
    used: list[str] = []
    items: list[AnnotatedImage] = []
    for stem in stems:
        xml = ann_dir / f"{stem}.xml"
        filename, size, instances = "", None, []
        if xml.is_file():
            filename, size, instances = xml_to_item(_parse_xml(xml), src=str(xml))
        image = None
        if filename:
            got = root.resolve(folder / "JPEGImages", filename)
            if got.escapes:
                skipped.append((filename, f"{got.escapes} (filename in {xml})"))
                continue
            image = got.path
        image = image or images.get(stem)
        if image is None:
            skipped.append((filename or stem, "no image in JPEGImages/ for this annotation"))
            continue
        real_size = upright_size(image, VocFormatError)
        if size is not None and size != real_size:
            warnings.append(f"{xml}: <size> says {size[0]}x{size[1]}, the image is {real_size[0]}x{real_size[1]}; the image's is used")
        size_wh = real_size
        instances, ignore = _masks(stem, instances, size_wh, cls_dir, obj_dir, colors, names, warnings)
        if ignore is not None:
            instances.append(ignore)
        for inst in instances:
            if inst.category not in used:
                used.append(inst.category)
        record = ImageRecord(filename or image.name, size_wh[0], size_wh[1], path=str(image), split=split_of.get(stem))
        items.append(AnnotatedImage(record, tuple(with_bbox_area(i, size_wh) for i in instances)))
    order = [n for n in names if n in used] + [n for n in used if n not in names]
    difficult = (AttributeDef("difficult"),)
    categories = [Category(n, color=palette_color(i, n), attributes=() if n == IGNORE_LABEL else difficult)
                  for i, n in enumerate(order)]
    return Dataset(categories=categories, items=items, warnings=warnings, skipped=skipped)


def _masks(
    stem: str, instances: list[Instance], size_wh: tuple[int, int], cls_dir: Path, obj_dir: Path,
    colors: dict[tuple[int, int, int], int], names: list[str], warnings: list[str],
) -> tuple[list[Instance], Instance | None]:
    """The XML's instances with their masks from the object map, plus class-map-only instances and
    the void region (an ignore instance)."""
    cls_png, obj_png = cls_dir / f"{stem}.png", obj_dir / f"{stem}.png"
    cls_map = obj_map = None
    for p, which in ((cls_png, "cls"), (obj_png, "obj")):
        if p.is_file():
            arr = read_label_png(p, VocFormatError)
            if arr.shape[:2] != (size_wh[1], size_wh[0]):
                raise VocFormatError(f"{p}: is {arr.shape[1]}x{arr.shape[0]}, the image is {size_wh[0]}x{size_wh[1]}")
            if which == "cls":
                cls_map = _to_indices(arr, colors, p)
            else:
                obj_map = arr if arr.ndim == 2 else _object_ids(arr)
    out = list(instances)
    void = None
    if obj_map is not None:
        ids = [int(v) for v in np.unique(obj_map) if 0 < v < IGNORE_INDEX]
        taken: set[int] = set()
        for oid in ids:
            m = obj_map == oid
            c = _class_of(cls_map[m]) if cls_map is not None else None
            k = _owner(oid, m, out, taken, names[c] if c is not None and c < len(names) else None)
            if k is not None:
                taken.add(k)
                out[k] = replace(out[k], rle=mask_to_rle(m), bbox_xywh=None, area=None)
            else:
                if c is None or c >= len(names):
                    warnings.append(f"{obj_dir / (stem + '.png')}: object {oid} has no class in the class map; skipped")
                    continue
                out.append(Instance(names[c], rle=mask_to_rle(m), source="imported"))
        void = obj_map == IGNORE_INDEX
    elif cls_map is not None:
        present = [int(v) for v in np.unique(cls_map) if 0 < v < IGNORE_INDEX]
        for c in present:
            if c >= len(names):
                raise VocFormatError(f"{cls_dir / (stem + '.png')}: class index {c} is beyond the {len(names)} classes known")
            out += mask_instances(cls_map == c, names[c], size_wh)
        void = cls_map == IGNORE_INDEX
    ignore = None
    if void is not None and void.any():
        ignore = Instance(IGNORE_LABEL, rle=mask_to_rle(void), source="imported")
    return out, ignore


def _box_iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def _owner(oid: int, mask: np.ndarray, objects: list[Instance], taken: set[int], cls: str | None) -> int | None:
    """The XML object a mask of the object map belongs to: object ``oid`` as VOC numbers them, when
    its box fits the mask; else the free object of the mask's class whose box fits best (datumaro
    numbers its object maps in its own order)."""
    ys, xs = np.nonzero(mask)
    box = (float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1))

    def fit(k: int) -> float:
        b = objects[k].bbox_xywh
        return _box_iou(box, b) if b is not None else 0.0

    if oid <= len(objects) and oid - 1 not in taken and (objects[oid - 1].bbox_xywh is None or fit(oid - 1) >= 0.5):
        return oid - 1
    free = [k for k in range(len(objects)) if k not in taken and not objects[k].has_shape
            and (cls is None or objects[k].category == cls)]
    best = max(free, key=fit, default=None)
    return best if best is not None and fit(best) >= 0.5 else None


def _object_ids(rgb: np.ndarray) -> np.ndarray:
    """An RGB object map (VOC colours) back to object indices."""
    pal = palette()
    lut = {(pal[3 * i], pal[3 * i + 1], pal[3 * i + 2]): i for i in range(256)}
    return _to_indices(rgb, lut, Path("SegmentationObject"))
