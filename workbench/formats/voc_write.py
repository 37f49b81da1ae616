"""Domain records -> Pascal VOC: per image the annotation XML, the class and object palette PNGs, and
the labelmap (see :mod:`workbench.formats.voc` for the layout; the reader lives there).

Masks go into the maps by z-order (overlaps lose the lower shape's pixels), crowd and ignore
regions are void (255); VOC has no keypoints, and the notes count what was left out.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from workbench.domain import IGNORE_LABEL, AnnotatedImage, Dataset, ImageRecord, Instance, plural
from workbench.formats.folders import unique_stems
from workbench.formats.labelmaps import IGNORE_INDEX, label_classes, palette, semantic_index_map
from workbench.formats.labelmaps import _save_png as _save_palette_png
from workbench.geometry import instance_to_mask, with_bbox_area

__all__ = ["FLAGS", "VOID_NAMES", "VocExport", "VocFile", "dataset_to_voc", "item_to_xml", "save_index_png"]

FLAGS = ("truncated", "difficult", "occluded")
"""The object flags VOC writes as 0/1 elements (attributes of the same names in the domain)."""
_MAX_OBJECTS = 254
VOID_NAMES = ("ignored", "void", IGNORE_LABEL)
"""Label-map names of the void colour (255): datumaro's 'ignored', VOC's 'void', ours."""


@dataclass
class VocFile:
    image: ImageRecord
    stem: str
    xml: str
    class_map: np.ndarray
    object_map: np.ndarray


@dataclass
class VocExport:
    labelmap: str
    files: list[VocFile] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _el(parent: ET.Element, tag: str, text: Any = None) -> ET.Element:
    e = ET.SubElement(parent, tag)
    if text is not None:
        e.text = str(text)
    return e


def _bool(v: Any) -> str:
    return "1" if v else "0"


def item_to_xml(item: AnnotatedImage, instances: list[Instance], file_name: str) -> str:
    """The annotation XML of one image: an <object> per instance, in the given order (object n is
    value n of the object map)."""
    ann = ET.Element("annotation")
    _el(ann, "folder", "VOC")
    _el(ann, "filename", file_name)
    size = _el(ann, "size")
    _el(size, "width", item.image.width)
    _el(size, "height", item.image.height)
    _el(size, "depth", 3)
    _el(ann, "segmented", 1)
    for inst in instances:
        obj = _el(ann, "object")
        attrs = dict(inst.attributes)
        _el(obj, "name", inst.category)
        _el(obj, "pose", attrs.pop("pose", "Unspecified"))
        for flag in FLAGS:
            _el(obj, flag, _bool(attrs.pop(flag, False)))
        x, y, w, h = inst.bbox_xywh or (0.0, 0.0, 0.0, 0.0)
        box = _el(obj, "bndbox")
        _el(box, "xmin", int(math.floor(x)) + 1)
        _el(box, "ymin", int(math.floor(y)) + 1)
        _el(box, "xmax", max(int(math.ceil(x + w)), int(math.floor(x)) + 1))
        _el(box, "ymax", max(int(math.ceil(y + h)), int(math.floor(y)) + 1))
        plain = {k: v for k, v in attrs.items() if isinstance(v, str | int | float | bool)}
        if plain:
            el = _el(obj, "attributes")
            for k, v in plain.items():
                a = _el(el, "attribute")
                _el(a, "name", k)
                _el(a, "value", str(v).lower() if isinstance(v, bool) else v)
    ET.indent(ann)
    return ET.tostring(ann, encoding="unicode") + "\n"


def save_index_png(index_map: np.ndarray, path: Path) -> None:
    """A class or object map as a VOC palette PNG (pixel values are the indices)."""
    _save_palette_png(index_map, path, palette())


def dataset_to_voc(ds: Dataset) -> VocExport:
    """The VOC form of ``ds``: per image the XML and both maps, the labelmap, and notes on what VOC
    cannot hold (keypoints, crowds, more than 254 objects, overlaps)."""
    classes = label_classes(ds.categories)
    pal = palette()
    lines = ["# label:color_rgb:parts:actions", "background:0,0,0::"]
    lines += [f"{c.name}:{pal[3 * (i + 1)]},{pal[3 * (i + 1) + 1]},{pal[3 * (i + 1) + 2]}::" for i, c in enumerate(classes)]
    v = 3 * IGNORE_INDEX  # the void colour, declared as datumaro's own VOC label map declares it
    lines.append(f"{VOID_NAMES[0]}:{pal[v]},{pal[v + 1]},{pal[v + 2]}::")
    left: Counter[str] = Counter()
    ignore_names = {c.name for c in ds.categories if c.is_ignore}
    stems = unique_stems([Path(it.image.file_name.replace("\\", "/")).name for it in ds.items], [it.image.id for it in ds.items])
    out = VocExport("\n".join(lines) + "\n")
    for item, stem in zip(ds.items, stems, strict=True):
        size_wh = item.image.size_wh
        objects, crowds = [], []
        for inst in item.instances:
            if inst.category in ignore_names:
                continue
            inst = with_bbox_area(inst, size_wh)
            if inst.keypoints is not None and inst.num_keypoints:
                left["instance's keypoints left out (VOC has none)"] += 1
            if inst.iscrowd:
                crowds.append(inst)
                left["crowd region written as void (255), not as an object"] += 1
                continue
            objects.append(inst)
        if len(objects) > _MAX_OBJECTS:
            left[f"object beyond the {_MAX_OBJECTS} a VOC object map holds left out"] += len(objects) - _MAX_OBJECTS
            objects = objects[:_MAX_OBJECTS]
        cls_map = semantic_index_map(item, ds.categories)
        obj_map = np.zeros_like(cls_map)
        order = sorted(range(len(objects)), key=lambda k: objects[k].z_order)
        masks = {}
        for k in order:
            if objects[k].has_shape:
                masks[k] = instance_to_mask(objects[k], size_wh).astype(bool)
                obj_map[masks[k]] = k + 1
        for k, m in masks.items():
            if m.any() and not (obj_map[m] == k + 1).any():
                left["shape entirely under higher shapes (no pixel left in the object map)"] += 1
        void = np.zeros(cls_map.shape, dtype=bool)
        for inst in crowds:
            void |= instance_to_mask(inst, size_wh).astype(bool)
        void |= cls_map == IGNORE_INDEX
        cls_map[void] = IGNORE_INDEX
        obj_map[void] = IGNORE_INDEX
        suffix = Path(item.image.path or item.image.file_name).suffix or ".png"
        out.files.append(VocFile(item.image, stem, item_to_xml(item, objects, f"{stem}{suffix}"), cls_map, obj_map))
    out.notes = [f"{plural(n, 'instance')}: {what}" for what, n in left.items()]
    return out
