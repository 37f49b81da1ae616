"""Domain records -> CVAT for images 1.1 XML, which CVAT (task or project import) and datumaro read.

Instances become shapes as ``formats/cvat.py`` reads them back: polygons -> ``<polygon>`` (parts
of one instance share a ``group_id``), RLE masks -> ``<mask>`` over their tight box (holes kept),
box-only instances -> ``<box>``, keypoints -> a ``<skeleton>`` of the class's schema (a class
with keypoints is a skeleton label whose sublabels are its keypoint names; the instance's outline
or box joins it by ``group_id``). ``occluded`` and ``z_order`` are shape attributes; the other
attribute values are ``<attribute>`` elements, and keys a class does not define are declared as
text attributes so that nothing is dropped on the way into CVAT. Splits are written as CVAT
project subsets (``<image subset>``); without splits the file is a task's.
"""

from __future__ import annotations

import io
from typing import Any
from xml.sax.saxutils import XMLGenerator

from workbench.domain import BUILTIN_ATTRIBUTES, AttributeDef, Category, Dataset, Instance
from workbench.formats.cvat import DEFAULT_SUBSET
from workbench.formats.cvat_parts import mask_to_cvat_rle, skeleton_svg
from workbench.geometry import rle_to_mask

__all__ = ["dataset_to_cvat"]


def _num(v: float) -> str:
    """Shortest text of a coordinate that reads back to the same float (CVAT itself writes 2 decimals,
    which moves points by up to 0.005 px)."""
    text = repr(float(v))
    return "0" if text == "-0.0" else text.removesuffix(".0")


def _value_text(v: Any) -> str | None:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float | str):
        return str(v)
    return None


class _Writer:
    """Indented XML through the standard library's XMLGenerator (it escapes names and values)."""

    def __init__(self, out: io.BytesIO) -> None:
        self.gen = XMLGenerator(out, "utf-8", short_empty_elements=False)
        self.level = 0

    def open(self, tag: str, attrs: dict[str, str] | None = None) -> None:
        self.gen.ignorableWhitespace("\n" + "  " * self.level)
        self.gen.startElement(tag, attrs or {})
        self.level += 1

    def close(self, tag: str, inline: bool = False) -> None:
        self.level -= 1
        if not inline:
            self.gen.ignorableWhitespace("\n" + "  " * self.level)
        self.gen.endElement(tag)

    def leaf(self, tag: str, text: str, attrs: dict[str, str] | None = None) -> None:
        self.open(tag, attrs)
        self.gen.characters(text)
        self.close(tag, inline=True)


def _label_attributes(ds: Dataset) -> dict[str, list[AttributeDef]]:
    """Each class's attributes as the file declares them: its own, then keys its instances carry
    that it does not define (as text, or checkbox for booleans)."""
    out = {c.name: list(c.attributes) for c in ds.categories}
    for item in ds.items:
        for inst in item.instances:
            have = out.setdefault(inst.category, [])
            for key, v in inst.attributes.items():
                if key == "occluded" or _value_text(v) is None or any(d.name == key for d in have):
                    continue
                have.append(AttributeDef(key, "checkbox" if isinstance(v, bool) else "text"))
    return out


def _write_labels(w: _Writer, ds: Dataset, attrs: dict[str, list[AttributeDef]]) -> None:
    w.open("labels")
    for cat in ds.categories:
        w.open("label")
        w.leaf("name", cat.name)
        w.leaf("color", cat.color)
        w.leaf("type", "skeleton" if cat.keypoints is not None else "any")
        w.open("attributes")
        for d in attrs.get(cat.name, []):
            w.open("attribute")
            w.leaf("name", d.name)
            w.leaf("mutable", "False")
            w.leaf("input_type", d.kind)
            default = {"checkbox": "false", "number": "0", "select": d.options[0] if d.options else ""}
            w.leaf("default_value", default.get(d.kind, ""))
            values = {"checkbox": "false\ntrue", "number": "-1000000000\n1000000000\n1"}
            w.leaf("values", "\n".join(d.options) if d.kind == "select" else values.get(d.kind, ""))
            w.close("attribute")
        w.close("attributes")
        if cat.keypoints is not None:
            w.leaf("svg", skeleton_svg(cat.keypoints.names, cat.keypoints.skeleton))
        w.close("label")
        if cat.keypoints is not None:
            for name in cat.keypoints.names:
                w.open("label")
                w.leaf("name", name)
                w.leaf("color", cat.color)
                w.leaf("type", "points")
                w.open("attributes")
                w.close("attributes")
                w.leaf("parent", cat.name)
                w.close("label")
    w.close("labels")


def _shape_attrs(inst: Instance, group: int) -> dict[str, str]:
    out = {
        "label": inst.category,
        "source": "auto" if inst.source == "predicted" else "manual",  # CVAT's word for a model's shapes
        "occluded": "1" if inst.attributes.get("occluded") else "0",
    }
    out["z_order"] = str(int(inst.z_order))
    if group:
        out["group_id"] = str(group)
    return out


def _write_attributes(w: _Writer, inst: Instance, declared: list[AttributeDef]) -> None:
    names = {d.name for d in declared} | set(BUILTIN_ATTRIBUTES)
    for key, v in inst.attributes.items():
        text = _value_text(v)
        if key != "occluded" and key in names and text is not None:
            w.leaf("attribute", text, {"name": key})


def _writes_box(inst: Instance, kp: tuple[float, ...] | None) -> bool:
    """Whether the instance's box is a shape of its own: box-only, and not just what its keypoints
    span (a skeleton alone reads back to that box, and CVAT draws no box for it)."""
    if inst.has_shape or inst.bbox_xywh is None or inst.bbox_xywh[2] <= 0 or inst.bbox_xywh[3] <= 0:
        return False
    if kp is None:
        return True
    vis = [(kp[i], kp[i + 1]) for i in range(0, len(kp), 3) if kp[i + 2] > 0]
    if len(vis) == 1:
        spanned = (vis[0][0] - 0.5, vis[0][1] - 0.5, 1.0, 1.0)
    elif vis:
        xs, ys = [p[0] for p in vis], [p[1] for p in vis]
        spanned = (min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys))
    else:
        return True
    return any(abs(a - b) > 1e-6 for a, b in zip(inst.bbox_xywh, spanned, strict=True))


def _write_instance(
    w: _Writer, inst: Instance, cat: Category | None, size_wh: tuple[int, int], group: int,
    declared: list[AttributeDef], notes: dict[str, int],
) -> bool:  # fmt: skip
    """The instance's shapes; False when it has none that CVAT can hold."""
    schema = cat.keypoints if cat is not None else None
    kp = inst.keypoints if schema is not None and inst.keypoints is not None else None
    wrote = False
    base = _shape_attrs(inst, group)
    if inst.iscrowd:
        notes["crowd"] = notes.get("crowd", 0) + 1
    if any(_value_text(v) is None for v in inst.attributes.values()):
        notes["nested"] = notes.get("nested", 0) + 1
    for poly in inst.polygons:
        pts = ";".join(f"{_num(poly[i])},{_num(poly[i + 1])}" for i in range(0, len(poly), 2))
        w.open("polygon", {**base, "points": pts})
        _write_attributes(w, inst, declared)
        w.close("polygon")
        wrote = True
    if inst.rle is not None:
        enc = mask_to_cvat_rle(rle_to_mask(inst.rle))
        if enc is not None:
            counts, (left, top, width, height) = enc
            w.open("mask", {**base, "rle": ", ".join(map(str, counts)), "left": str(left), "top": str(top),
                            "width": str(width), "height": str(height)})  # fmt: skip
            _write_attributes(w, inst, declared)
            w.close("mask")
            wrote = True
    if _writes_box(inst, kp):
        x, y, bw, bh = inst.bbox_xywh  # type: ignore[misc]
        w.open("box", {**base, "xtl": _num(x), "ytl": _num(y), "xbr": _num(x + bw), "ybr": _num(y + bh)})
        _write_attributes(w, inst, declared)
        w.close("box")
        wrote = True
    if kp is not None and schema is not None:
        w.open("skeleton", {k: v for k, v in base.items() if k != "occluded"})
        for i, name in enumerate(schema.names):
            x, y, v = kp[3 * i], kp[3 * i + 1], kp[3 * i + 2]
            w.open("points", {"label": name, "source": "manual", "outside": "1" if v == 0 else "0",
                              "occluded": "1" if v == 1 else "0", "points": f"{_num(x)},{_num(y)}"})  # fmt: skip
            w.close("points")
        _write_attributes(w, inst, declared)
        w.close("skeleton")
        wrote = True
    return wrote


def dataset_to_cvat(
    ds: Dataset, *, name: str = "workbench export", warnings: list[str] | None = None
) -> bytes:
    """The CVAT for images 1.1 XML of ``ds`` (image names are the items' ``file_name``)."""
    warns: list[str] = warnings if warnings is not None else []
    out = io.BytesIO()
    w = _Writer(out)
    cats = {c.name: c for c in ds.categories}
    attrs = _label_attributes(ds)
    subsets = sorted({it.image.split or DEFAULT_SUBSET for it in ds.items})
    project = any(it.image.split for it in ds.items)
    w.gen.startDocument()
    w.open("annotations")
    w.leaf("version", "1.1")
    w.open("meta")
    w.open("project" if project else "task")
    w.leaf("name", name)
    if not project:
        w.leaf("size", str(len(ds.items)))
        w.leaf("mode", "annotation")
    _write_labels(w, ds, attrs)
    if project:
        w.open("subsets")
        for s in subsets:
            w.leaf("subset", s)
        w.close("subsets")
    w.close("project" if project else "task")
    w.close("meta")
    notes: dict[str, int] = {}
    left_out = 0
    for index, item in enumerate(ds.items):
        im = item.image
        head = {"id": str(index), "name": im.file_name}
        if project:
            head["subset"] = im.split or DEFAULT_SUBSET
        w.open("image", {**head, "width": str(im.width), "height": str(im.height)})
        group = 0
        for inst in item.instances:
            cat = cats.get(inst.category)
            kp = inst.keypoints if cat is not None and cat.keypoints is not None else None
            shapes = len(inst.polygons) + (inst.rle is not None) + (kp is not None) + _writes_box(inst, kp)
            gid = 0
            if shapes > 1:
                group += 1
                gid = group
            if not _write_instance(w, inst, cat, im.size_wh, gid, attrs.get(inst.category, []), notes):
                left_out += 1
        w.close("image")
    w.close("annotations")
    w.gen.endDocument()
    if notes.get("crowd"):
        warns.append(f"{notes['crowd']} crowd region(s) written as ordinary shapes (CVAT has no crowd flag)")
    if notes.get("nested"):
        warns.append(
            f"{notes['nested']} instance(s) hold attribute values that are no text, number or checkbox "
            "(LabelMe's flags); those values were left out"
        )
    if left_out:
        warns.append(f"{left_out} instance(s) without a shape or keypoints left out")
    return out.getvalue() + b"\n"
