"""The one overlay drawer: objects drawn over an image, for the Review page and the Augment preview.

:func:`draw_shapes` draws :class:`Shape` records already in the drawn image's pixels: tinted
masks and polygons (all tints on one layer composited once, so overlapping objects do not
darken each other), outlines, boxes, skeleton edges, keypoints and labels (on a second layer,
opaque, above every tint). Callers turn their objects into shapes: :func:`draw_overlay` does it
for stored :class:`~workbench.domain.Instance` objects over a display copy (coordinates scaled
by ``display / stored``; RLE masks decoded at full size and resized with nearest neighbour), the
Augment preview for the augmented training samples.

A box is outlined through the pixels its corners name, both included (PIL's rectangle): a
caller with pixel-corner boxes (20 to 80 covers pixels 20..79) that wants the outline on the
object's last column passes 79.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageColor, ImageDraw

from workbench.domain import Instance
from workbench.geometry import rle_to_mask

HIGHLIGHT = "#ffd400"
MISSED = "#ff1744"
"""Ground-truth objects no prediction found, on the Review page."""
UNKNOWN_COLOR = "#ff00ff"
"""Objects of a class without a colour (or with an unreadable one)."""


def color_rgb(color: str) -> tuple[int, int, int]:
    """``#rrggbb`` (or any colour PIL reads) as RGB; :data:`UNKNOWN_COLOR` when unreadable."""
    try:
        return ImageColor.getrgb(color)[:3]  # type: ignore[return-value]
    except ValueError:
        return ImageColor.getrgb(UNKNOWN_COLOR)[:3]  # type: ignore[return-value]


@dataclass(frozen=True)
class Shape:
    """One object to draw, in the drawn image's pixel coordinates."""

    rgb: tuple[int, int, int]
    mask: np.ndarray | None = None
    """Boolean H x W of the drawn image's size, tinted when ``filled``."""
    polygons: Sequence[Sequence[tuple[float, float]]] = ()
    """Outlined; tinted too when ``filled``."""
    filled: bool = True
    box_xyxy: tuple[float, float, float, float] | None = None
    """The outline's corners, both included (see the module's note)."""
    keypoints: Sequence[tuple[float, float, float]] = ()
    """(x, y, visibility): only visible ones (v > 0) are drawn, as dots of ``dot_radius``."""
    dot_radius: float = 3.0
    skeleton: Sequence[tuple[int, int]] = ()
    """Edges between keypoint indices, drawn when both ends are visible."""
    label: str | None = None
    label_xy: tuple[float, float] | None = None
    """Where the label's top-left corner goes."""
    width_px: int = 2


def draw_shapes(image: Image.Image, shapes: Sequence[Shape], *, opacity: float = 0.4) -> Image.Image:
    """``image`` with every shape drawn over it, in order; returns a new RGB image of the same size."""
    base = image.convert("RGB")
    size_wh = base.size
    alpha = int(round(min(max(opacity, 0.0), 1.0) * 255))
    tints = Image.new("RGBA", size_wh, (0, 0, 0, 0))
    lines = Image.new("RGBA", size_wh, (0, 0, 0, 0))
    tdraw, ldraw = ImageDraw.Draw(tints), ImageDraw.Draw(lines)
    for shape in shapes:
        rgba = (*shape.rgb, 255)
        if shape.filled and alpha:
            if shape.mask is not None:
                stencil = Image.fromarray(np.asarray(shape.mask, dtype=bool).astype(np.uint8) * 255)
                tints.paste(Image.new("RGBA", size_wh, (*shape.rgb, alpha)), (0, 0), stencil)
            for pts in shape.polygons:
                tdraw.polygon(list(pts), fill=(*shape.rgb, alpha))
        for pts in shape.polygons:
            ldraw.line([*pts, pts[0]], fill=rgba, width=shape.width_px)
        if shape.box_xyxy is not None:
            x0, y0, x1, y1 = shape.box_xyxy
            ldraw.rectangle([x0, y0, max(x0, x1), max(y0, y1)], outline=rgba, width=shape.width_px)
        kps = shape.keypoints
        for a, b in shape.skeleton:
            if a < len(kps) and b < len(kps) and kps[a][2] > 0 and kps[b][2] > 0:
                ldraw.line([(kps[a][0], kps[a][1]), (kps[b][0], kps[b][1])], fill=rgba, width=shape.width_px)
        radius = shape.dot_radius
        for x, y, v in kps:
            if v > 0:
                ldraw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=rgba, outline=(0, 0, 0, 255))
        if shape.label is not None and shape.label_xy is not None:
            ldraw.text(shape.label_xy, shape.label, fill=rgba)
    out = Image.alpha_composite(base.convert("RGBA"), tints)
    return Image.alpha_composite(out, lines).convert("RGB")


# ------------------------------------------------------------------------------ stored instances


@dataclass(frozen=True)
class Layer:
    """Instances drawn in one style: ``filled`` tints masks, ``boxes`` adds boxes, ``labels`` names."""

    instances: Sequence[Instance]
    filled: bool = True
    boxes: bool = False
    labels: bool = False
    color: str | None = None
    """One colour for the whole layer (e.g. missed objects); None: each class's colour."""
    width_px: int = 2


def _mask_at(inst: Instance, disp_wh: tuple[int, int]) -> np.ndarray | None:
    if inst.rle is None:
        return None
    m = rle_to_mask(inst.rle).astype(np.uint8) * 255
    if (m.shape[1], m.shape[0]) != disp_wh:
        m = np.asarray(Image.fromarray(m).resize(disp_wh, Image.NEAREST))
    return m > 127


def instance_shape(
    inst: Instance, layer: Layer, colors: Mapping[str, str], scale_xy: tuple[float, float],
    disp_wh: tuple[int, int],
) -> Shape:
    """A stored instance as a shape at display scale, in its layer's style.

    The box is drawn when the layer asks for boxes, and for an object with no other shape (a box
    alone); a label sits above the box's corner, drawn or not.
    """
    sx, sy = scale_xy
    polys = tuple(tuple((p[k] * sx, p[k + 1] * sy) for k in range(0, len(p), 2)) for p in inst.polygons)
    box = inst.bbox_xywh
    box_xyxy = None if box is None else (box[0] * sx, box[1] * sy, (box[0] + box[2]) * sx, (box[1] + box[3]) * sy)
    show_box = layer.boxes or not polys and inst.rle is None
    label = None
    if layer.labels and box_xyxy is not None:
        label = inst.category + (f" {inst.score:.2f}" if inst.score is not None else "")
    kp = inst.keypoints or ()
    return Shape(
        rgb=color_rgb(layer.color or colors.get(inst.category, UNKNOWN_COLOR)),
        mask=_mask_at(inst, disp_wh) if layer.filled else None,
        polygons=polys,
        filled=layer.filled,
        box_xyxy=box_xyxy if show_box else None,
        keypoints=tuple((kp[k] * sx, kp[k + 1] * sy, kp[k + 2]) for k in range(0, len(kp), 3)),
        label=label,
        label_xy=None if box_xyxy is None else (box_xyxy[0] + 2, max(box_xyxy[1] - 12, 0)),
        width_px=layer.width_px,
    )


def draw_overlay(
    image: Image.Image,
    size_wh: tuple[int, int],
    layers: Sequence[Layer],
    colors: Mapping[str, str],
    *,
    opacity: float = 0.4,
) -> Image.Image:
    """The image (a display copy of a stored image of ``size_wh``) with every layer drawn, in order."""
    disp_wh = image.size
    scale = (disp_wh[0] / size_wh[0], disp_wh[1] / size_wh[1])
    shapes = [instance_shape(inst, layer, colors, scale, disp_wh) for layer in layers for inst in layer.instances]
    return draw_shapes(image, shapes, opacity=opacity)


__all__ = [
    "HIGHLIGHT",
    "MISSED",
    "UNKNOWN_COLOR",
    "Layer",
    "Shape",
    "color_rgb",
    "draw_overlay",
    "draw_shapes",
    "instance_shape",
]
