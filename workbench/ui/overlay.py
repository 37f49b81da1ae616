"""Ground truth and predictions drawn over an image's display copy with PIL (the Review page).

Shapes are in the stored image's pixel space; the display copy may be smaller, so coordinates are
scaled by ``display / stored``. Masks (RLE) are decoded at full size and resized with nearest
neighbour; polygons are drawn directly at display scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageColor, ImageDraw

from workbench.domain import Instance

HIGHLIGHT = "#ffd400"
MISSED = "#ff1744"


@dataclass(frozen=True)
class Layer:
    """Instances drawn in one style: ``filled`` fills masks with ``opacity``, ``boxes`` adds boxes."""

    instances: Sequence[Instance]
    filled: bool = True
    boxes: bool = False
    labels: bool = False
    color: str | None = None
    """One colour for the whole layer (e.g. missed objects); None: each class's colour."""
    width_px: int = 2


def _rgb(color: str) -> tuple[int, int, int]:
    try:
        return ImageColor.getrgb(color)[:3]  # type: ignore[return-value]
    except ValueError:
        return (255, 0, 255)


def _mask_at(inst: Instance, size_wh: tuple[int, int], disp_wh: tuple[int, int]) -> np.ndarray | None:
    from workbench.geometry import rle_to_mask

    if inst.rle is None:
        return None
    m = rle_to_mask(inst.rle).astype(np.uint8) * 255
    if (m.shape[1], m.shape[0]) != disp_wh:
        m = np.asarray(Image.fromarray(m).resize(disp_wh, Image.NEAREST))
    return m > 127


def draw_overlay(
    image: Image.Image,
    size_wh: tuple[int, int],
    layers: Sequence[Layer],
    colors: dict[str, str],
    *,
    opacity: float = 0.4,
) -> Image.Image:
    """The image (display copy) with every layer drawn over it, in order; returns a new RGB image."""
    base = image.convert("RGB")
    disp_wh = base.size
    sx, sy = disp_wh[0] / size_wh[0], disp_wh[1] / size_wh[1]
    alpha = int(round(min(max(opacity, 0.0), 1.0) * 255))
    fill_layer = Image.new("RGBA", disp_wh, (0, 0, 0, 0))
    lines = Image.new("RGBA", disp_wh, (0, 0, 0, 0))
    fdraw, ldraw = ImageDraw.Draw(fill_layer), ImageDraw.Draw(lines)
    for layer in layers:
        for inst in layer.instances:
            rgb = _rgb(layer.color or colors.get(inst.category, "#ff00ff"))
            polys = [[(p[k] * sx, p[k + 1] * sy) for k in range(0, len(p), 2)] for p in inst.polygons]
            if layer.filled and alpha:
                mask = _mask_at(inst, size_wh, disp_wh)
                if mask is not None:
                    tint = Image.new("RGBA", disp_wh, (*rgb, alpha))
                    fill_layer.paste(tint, (0, 0), Image.fromarray((mask * 255).astype(np.uint8)))
                for pts in polys:
                    fdraw.polygon(pts, fill=(*rgb, alpha))
            for pts in polys:
                ldraw.line([*pts, pts[0]], fill=(*rgb, 255), width=layer.width_px)
            box = inst.bbox_xywh
            if box is not None and (layer.boxes or not polys and inst.rle is None):
                x, y, w, h = box
                ldraw.rectangle([x * sx, y * sy, (x + w) * sx, (y + h) * sy], outline=(*rgb, 255),
                                width=layer.width_px)
            if inst.keypoints:
                kp = inst.keypoints
                for k in range(0, len(kp), 3):
                    if kp[k + 2] > 0:
                        cx, cy = kp[k] * sx, kp[k + 1] * sy
                        ldraw.ellipse([cx - 3, cy - 3, cx + 3, cy + 3], fill=(*rgb, 255), outline=(0, 0, 0, 255))
            if layer.labels and box is not None:
                text = inst.category + (f" {inst.score:.2f}" if inst.score is not None else "")
                ldraw.text((box[0] * sx + 2, max(box[1] * sy - 12, 0)), text, fill=(*rgb, 255))
    out = Image.alpha_composite(base.convert("RGBA"), fill_layer)
    return Image.alpha_composite(out, lines).convert("RGB")
