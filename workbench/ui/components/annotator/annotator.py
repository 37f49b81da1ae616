"""Python side of the annotator: registers the component and converts shapes both ways.

The browser speaks plain JSON (``instance_to_payload``); the store speaks domain Instances. RLE masks
go to the browser as a crop of runs (``services.mask_crops``); a mask painted there (brush, eraser)
comes back as a crop and becomes the instance's Rle, and an unpainted one keeps the loaded
instance's mask (``payload_to_instances``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import streamlit as st

from workbench.domain import Category, Instance, ValidationError
from workbench.services.mask_crops import crop_to_rle, rle_to_crop

ANNOTATOR_KEY = "wb_annotator"
"""Fixed widget key: changing ``data`` under a fixed key updates the component instead of remounting."""

_HERE = Path(__file__).resolve().parent
JS_PARTS = (
    "annotator.js",
    "box.js",
    "view_tools.js",
    "review.js",
    "tiles.js",
    "mask.js",
    "attributes.js",
    "shape_tools.js",
    "render_cache.js",
    "assist.js",
)
"""The browser code, one ES module cut into files by concern and joined in this order: only
annotator.js exports (the component's entry point); the other files define functions it calls."""
CSS_PARTS = ("annotator.css", "review.css", "mask.css", "attributes.css", "shape_tools.css", "assist.css")


def _joined(names: Sequence[str]) -> str:
    return "\n".join((_HERE / n).read_text(encoding="utf-8") for n in names)


_COMPONENT = st.components.v2.component(
    "workbench_annotator",
    html=(_HERE / "annotator.html").read_text(encoding="utf-8"),
    css=_joined(CSS_PARTS),
    js=_joined(JS_PARTS),
)


def category_to_payload(cat: Category) -> dict[str, Any]:
    kp = None
    if cat.keypoints is not None:
        kp = {"names": list(cat.keypoints.names), "skeleton": [list(p) for p in cat.keypoints.skeleton]}
    attributes = [{"name": a.name, "kind": a.kind, "options": list(a.options)} for a in cat.all_attributes]
    return {"id": cat.id, "name": cat.name, "color": cat.color, "keypoints": kp, "attributes": attributes}


def instance_to_payload(inst: Instance) -> dict[str, Any]:
    return {
        "id": inst.id,
        "category": inst.category,
        "polygons": [list(p) for p in inst.polygons],
        "keypoints": list(inst.keypoints) if inst.keypoints is not None else None,
        "bbox": list(inst.bbox_xywh) if inst.bbox_xywh is not None else None,
        "rle": inst.rle is not None,
        "mask": rle_to_crop(inst.rle) if inst.rle is not None else None,  # brush and eraser edit it
        "source": inst.source,
        "score": inst.score,
        "attributes": dict(inst.attributes),
        "z_order": inst.z_order,  # shape_tools.js: bring to front / send to back
    }


def _floats(values: Sequence[Any], what: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in values)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"annotator sent a {what} with a non-number: {values!r}") from exc


def _keypoints(raw: Sequence[Any] | None) -> tuple[float, ...] | None:
    """COCO keypoints from the browser: v an int in {0, 1, 2}, x = y = 0 where v = 0."""
    if raw is None:
        return None
    kp = _floats(raw, "keypoint list")
    if len(kp) % 3:
        raise ValidationError(f"annotator sent {len(kp)} keypoint numbers, not (x, y, v) triples")
    out: list[float] = []
    for n in range(0, len(kp), 3):
        v = int(kp[n + 2])
        out.extend((kp[n], kp[n + 1], v) if v > 0 else (0.0, 0.0, 0))
    return tuple(out)


def payload_to_instances(items: Sequence[Mapping[str, Any]], loaded: Sequence[Instance]) -> list[Instance]:
    """Instances from the browser's shape list; ``loaded`` supplies what the browser does not edit.

    Shapes with neither a polygon, a mask nor a visible keypoint are dropped (nothing to save).
    """
    return [inst for _, inst in payload_to_indexed_instances(items, loaded)]


def payload_to_indexed_instances(
    items: Sequence[Mapping[str, Any]], loaded: Sequence[Instance]
) -> list[tuple[int, Instance]]:
    """Like ``payload_to_instances``, each instance with the index of the item it came from.

    The index lets the page tell the browser which row id each of its shapes got.
    """
    by_id = {i.id: i for i in loaded if i.id is not None}
    out: list[tuple[int, Instance]] = []
    for n, item in enumerate(items):
        old = by_id.get(item.get("id")) if item.get("id") is not None else None
        category = str(item["category"])
        keypoints = _keypoints(item.get("keypoints"))
        source = item.get("source") or "manual"
        score = item.get("score")
        if item.get("mask") is not None:  # painted in the browser (brush, eraser): the mask it sent
            rle = crop_to_rle(item["mask"], where=f"annotator mask (id {item.get('id')})")
            if rle is None:
                continue  # every pixel erased
            shape: dict[str, Any] = dict(
                category=category, polygons=(), rle=rle, keypoints=keypoints, source=source, score=score
            )
            new = Instance(**shape) if old is None else replace(old, **shape, bbox_xywh=None, area=None)
            out.append((n, new))
            continue
        if item.get("rle"):
            if old is None or old.rle is None:
                raise ValidationError(
                    f"annotator sent a mask shape (id {item.get('id')}) that this image does not have"
                )
            out.append((n, replace(old, category=category, keypoints=keypoints, source=source, score=score)))
            continue
        polygons = tuple(_floats(p, "polygon") for p in item.get("polygons") or [] if len(p))
        fields: dict[str, Any] = dict(
            category=category, polygons=polygons, rle=None, keypoints=keypoints, source=source, score=score
        )
        box = item.get("box")
        if box is not None and not polygons:  # drawn or edited with the rectangle tool
            out.append((n, _box_instance(_floats(box, "box"), fields, old)))
            continue
        if not polygons and old is not None and _has_own_box(old):
            # A box without a shape (COCO 'segmentation: []' from CVAT or datumaro): the browser does not
            # edit boxes, so the box stays, with or without keypoints. Dropping it here deleted an
            # imported box whenever anything else on its image was saved.
            out.append((n, replace(old, **fields)))
            continue
        if not polygons and not (keypoints and any(keypoints[2::3])):
            continue
        if old is None:
            out.append((n, Instance(**fields)))
        elif not polygons and old.keypoints == keypoints and not old.polygons:
            out.append((n, replace(old, **fields)))  # an untouched box-only instance keeps its box
        else:
            out.append((n, replace(old, **fields, bbox_xywh=None, area=None)))
    return [(n, _with_z_order(_with_attributes(inst, items[n]), items[n])) for n, inst in out]


def _box_instance(box: tuple[float, ...], fields: dict[str, Any], old: Instance | None) -> Instance:
    """A box-only instance from the browser's box; an unchanged stored box keeps its row as it is."""
    if len(box) != 4 or box[2] <= 0 or box[3] <= 0:
        raise ValidationError(f"annotator sent a box that is not [x, y, w, h] with w, h > 0: {list(box)}")
    if (
        old is not None
        and old.bbox_xywh is not None
        and all(abs(a - b) <= 0.006 for a, b in zip(old.bbox_xywh, box, strict=True))
    ):
        return replace(old, **fields)
    if old is None:
        return Instance(**fields, bbox_xywh=box)
    return replace(old, **fields, bbox_xywh=box, area=None)


def _with_z_order(inst: Instance, item: Mapping[str, Any]) -> Instance:
    """The drawing order the browser sent (shape_tools.js changes it); kept where it sent none."""
    z = item.get("z_order")
    if z is None:
        return inst
    if isinstance(z, bool) or not isinstance(z, int | float) or z != int(z):
        raise ValidationError(f"annotator sent a z_order that is not an integer: {z!r}")
    return replace(inst, z_order=int(z))


def _with_attributes(inst: Instance, item: Mapping[str, Any]) -> Instance:
    """The attribute values the browser sent (its panel edits them; keys it does not know, an import's,
    come back as they went). Their types are checked against the class's definitions on save."""
    if "attributes" not in item:
        return inst
    attrs = item["attributes"]
    if attrs is None:
        attrs = {}
    if not isinstance(attrs, Mapping):
        raise ValidationError(f"annotator sent attributes that are not an object: {attrs!r}")
    return replace(inst, attributes={str(k): v for k, v in attrs.items() if v is not None})


def _keypoint_box(keypoints: Sequence[float] | None) -> tuple[float, float, float, float] | None:
    """The box of the visible keypoints (what a save gives an instance made of keypoints alone)."""
    if not keypoints:
        return None
    pts = [(keypoints[k], keypoints[k + 1]) for k in range(0, len(keypoints), 3) if keypoints[k + 2] > 0]
    if not pts:
        return None
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    return (min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys))


def _has_own_box(inst: Instance) -> bool:
    """True for a stored box with no polygon or mask that is not just the box of its keypoints."""
    if inst.polygons or inst.rle is not None or inst.bbox_xywh is None:
        return False
    derived = _keypoint_box(inst.keypoints)
    box = tuple(float(v) for v in inst.bbox_xywh)
    return derived is None or any(abs(a - b) > 1e-6 for a, b in zip(box, derived, strict=True))


def annotator(
    data: Mapping[str, Any],
    *,
    on_action: Callable[[], None],
    on_tiles: Callable[[], None] | None = None,
    on_assist: Callable[[], None] | None = None,
    key: str = ANNOTATOR_KEY,
) -> Any:
    """Mount the annotator. ``data`` is built by the Annotate page; actions arrive through ``on_action``.

    Read the action inside the callback with ``st.session_state[key]["action"]``; ``on_tiles`` gets the
    browser's asks for native-pixel tiles (``st.session_state[key]["tiles"]``, see tiles.py); ``on_assist``
    its assist requests (``st.session_state[key]["assist"]``, see assist.js).
    """
    extra = {"on_tiles_change": on_tiles} if on_tiles is not None else {}
    if on_assist is not None:
        extra["on_assist_change"] = on_assist
    return _COMPONENT(key=key, data=dict(data), on_action_change=on_action, height="content", **extra)
