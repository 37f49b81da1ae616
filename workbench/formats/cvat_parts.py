"""CVAT's encodings inside its XML: the mask RLE and the skeleton label's SVG (both ways), rotated
shapes and ellipses as points, and attribute values typed by their definitions.

A ``<mask rle left top width height>`` holds run lengths over its box, row by row (C order),
starting with a background run that may be 0: what CVAT's server and UI write (datumaro reads it
as a W x H column-major RLE and transposes, the same thing). A skeleton label keeps its nodes
(``<circle data-node-id data-label-name>``) and edges (``<line data-node-from data-node-to>``) as
SVG text in ``<svg>``.
"""

from __future__ import annotations

import html
import math
import re
from typing import Any

import numpy as np

from workbench.domain import AttributeDef, KeypointSchema, ValidationError

__all__ = [
    "attribute_value",
    "cvat_rle_to_mask",
    "ellipse",
    "mask_to_cvat_rle",
    "parse_skeleton_svg",
    "rotated",
    "skeleton_svg",
]


def cvat_rle_to_mask(
    counts: list[int], width: int, height: int, *, where: str = "", error: type[Exception] = ValidationError
) -> np.ndarray:
    """The ``height x width`` 0/1 mask of CVAT run lengths (row-major, background run first)."""
    if width <= 0 or height <= 0:
        raise error(f"{where}: mask width and height must be positive, got {width}x{height}")
    if any(c < 0 for c in counts):
        raise error(f"{where}: mask rle holds a negative run length")
    if sum(counts) != width * height:
        raise error(
            f"{where}: mask rle covers {sum(counts)} pixels, its box {width}x{height} has {width * height}"
        )
    values = (np.arange(len(counts), dtype=np.int64) % 2).astype(np.uint8)
    return np.repeat(values, counts).reshape(height, width)


def mask_to_cvat_rle(mask: np.ndarray) -> tuple[list[int], tuple[int, int, int, int]] | None:
    """CVAT's run lengths of a full-image mask over its tight box, and that box (left, top, width,
    height); None for an empty mask."""
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return None
    x0, x1, y0, y1 = int(xs.min()), int(xs.max()), int(ys.min()), int(ys.max())
    flat = np.ascontiguousarray(mask[y0 : y1 + 1, x0 : x1 + 1]).ravel().astype(np.int8)
    bounds = np.concatenate(([0], np.flatnonzero(np.diff(flat)) + 1, [flat.size]))
    runs = np.diff(bounds).tolist()
    if flat[0]:
        runs = [0, *runs]
    return runs, (x0, y0, x1 - x0 + 1, y1 - y0 + 1)


_SVG_TAG = re.compile(r"<(line|circle)\b([^>]*)>")
_SVG_ATTR = re.compile(r'([\w:-]+)\s*=\s*"([^"]*)"')


def parse_skeleton_svg(svg: str, sublabels: list[str]) -> KeypointSchema:
    """A skeleton label's schema: its sublabels in node order and the edges drawn in its SVG."""
    node_label: dict[str, str] = {}
    edges: list[tuple[str, str]] = []
    for tag, body in _SVG_TAG.findall(svg or ""):
        attrs = {k: html.unescape(v) for k, v in _SVG_ATTR.findall(body)}
        if tag == "circle" and "data-node-id" in attrs:
            node_label[attrs["data-node-id"]] = attrs.get("data-label-name", "")
        elif tag == "line" and "data-node-from" in attrs and "data-node-to" in attrs:
            edges.append((attrs["data-node-from"], attrs["data-node-to"]))

    def order(node: str) -> tuple[int, str]:
        return (int(node), "") if node.isdigit() else (1 << 30, node)

    names = [node_label[n] for n in sorted(node_label, key=order) if node_label[n] in sublabels]
    names += [s for s in sublabels if s not in names]
    index = {n: names.index(label) for n, label in node_label.items() if label in names}
    pairs = ((index[a], index[b]) for a, b in edges if a in index and b in index and index[a] != index[b])
    return KeypointSchema(tuple(names), skeleton=tuple(dict.fromkeys(pairs)))


def skeleton_svg(names: tuple[str, ...], edges: tuple[tuple[int, int], ...]) -> str:
    """The SVG CVAT keeps for a skeleton label: nodes on a circle (ids 1..K), the edges between them."""
    k = len(names)
    xy = [
        (
            50 + 40 * math.cos(2 * math.pi * i / k - math.pi / 2),
            50 + 40 * math.sin(2 * math.pi * i / k - math.pi / 2),
        )
        for i in range(k)
    ]
    lines = [
        f'<line x1="{xy[a][0]:.2f}" y1="{xy[a][1]:.2f}" x2="{xy[b][0]:.2f}" y2="{xy[b][1]:.2f}" stroke="black" '
        f'data-type="edge" data-node-from="{a + 1}" stroke-width="0.5" data-node-to="{b + 1}"></line>'
        for a, b in edges
    ]
    circles = [
        f'<circle r="1.5" stroke="black" fill="#b3b3b3" cx="{x:.2f}" cy="{y:.2f}" stroke-width="0.1" '
        f'data-type="element node" data-element-id="{i + 1}" data-node-id="{i + 1}" '
        f'data-label-name="{html.escape(n, quote=True)}"></circle>'
        for i, (n, (x, y)) in enumerate(zip(names, xy, strict=True))
    ]
    return "".join(lines + circles)


ELLIPSE_POINTS = 32


def rotated(cx: float, cy: float, pts: list[tuple[float, float]], degrees: float) -> list[float]:
    """Points turned clockwise (on screen, y down) by ``degrees`` about (cx, cy), flat."""
    t = math.radians(degrees)
    c, s = math.cos(t), math.sin(t)
    out: list[float] = []
    for x, y in pts:
        dx, dy = x - cx, y - cy
        out += [cx + dx * c - dy * s, cy + dx * s + dy * c]
    return out


def ellipse(cx: float, cy: float, rx: float, ry: float, rotation: float) -> list[float]:
    pts = [
        (
            cx + rx * math.cos(2 * math.pi * i / ELLIPSE_POINTS),
            cy + ry * math.sin(2 * math.pi * i / ELLIPSE_POINTS),
        )
        for i in range(ELLIPSE_POINTS)
    ]
    return rotated(cx, cy, pts, rotation)


def attribute_value(d: AttributeDef | None, raw: str) -> Any:
    """The value typed by its definition; ValueError when it does not fit."""
    if d is None:
        return raw
    if d.kind == "checkbox":
        low = raw.strip().lower()
        if low not in ("true", "false", "1", "0", ""):
            raise ValueError(raw)
        return low in ("true", "1")
    if d.kind == "number":
        v = float(raw)
        if not math.isfinite(v):
            raise ValueError(raw)
        return int(v) if v.is_integer() and "." not in raw and "e" not in raw.lower() else v
    return d.check(raw)
