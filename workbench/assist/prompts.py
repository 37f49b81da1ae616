"""What the user gives a tool: a box and clicks in natural pixels of the upright image, checked once."""

from __future__ import annotations

import math
from dataclasses import dataclass

from workbench.domain import ValidationError

Point = tuple[float, float, bool]
"""(x, y, positive): a click; a negative one marks background."""


@dataclass(frozen=True)
class Prompt:
    box_xywh: tuple[float, float, float, float] | None = None
    points: tuple[Point, ...] = ()

    @property
    def positives(self) -> list[tuple[float, float]]:
        return [(x, y) for x, y, pos in self.points if pos]

    @property
    def negatives(self) -> list[tuple[float, float]]:
        return [(x, y) for x, y, pos in self.points if not pos]

    def box_xyxy(self) -> tuple[float, float, float, float] | None:
        if self.box_xywh is None:
            return None
        x, y, w, h = self.box_xywh
        return (x, y, x + w, y + h)

    def checked(self, size_wh: tuple[int, int], *, where: str = "") -> Prompt:
        """This prompt, refused when a value is not finite, the box is empty, or a click or the box lies
        outside the image; the box is clipped to the image when it only overhangs it."""
        p = f"{where}: " if where else ""
        w, h = size_wh
        box = self.box_xywh
        if box is not None:
            if len(box) != 4 or not all(math.isfinite(v) for v in box):
                raise ValidationError(f"{p}a box is X,Y,W,H (4 finite numbers), got {box}")
            bx, by, bw, bh = (float(v) for v in box)
            if bw <= 0 or bh <= 0:
                raise ValidationError(f"{p}the box {bx:g},{by:g},{bw:g},{bh:g} has no area (W and H must be > 0)")
            x0, y0, x1, y1 = max(bx, 0.0), max(by, 0.0), min(bx + bw, float(w)), min(by + bh, float(h))
            if x1 - x0 < 1 or y1 - y0 < 1:
                raise ValidationError(f"{p}the box {bx:g},{by:g},{bw:g},{bh:g} lies outside the {w}x{h} image")
            box = (x0, y0, x1 - x0, y1 - y0)
        for x, y, _pos in self.points:
            if not (math.isfinite(x) and math.isfinite(y)) or not (0 <= x < w and 0 <= y < h):
                raise ValidationError(f"{p}the click {x:g},{y:g} lies outside the {w}x{h} image")
        return Prompt(box_xywh=box, points=tuple((float(x), float(y), bool(s)) for x, y, s in self.points))


def parse_box(text: str) -> tuple[float, float, float, float]:
    """``X,Y,W,H`` as the CLI takes it."""
    parts = [s.strip() for s in text.split(",")]
    try:
        values = tuple(float(s) for s in parts)
    except ValueError:
        raise ValidationError(f"--box is X,Y,W,H in pixels, got {text!r}") from None
    if len(values) != 4:
        raise ValidationError(f"--box is X,Y,W,H in pixels (4 numbers), got {text!r}")
    return values  # type: ignore[return-value]


def parse_point(text: str) -> Point:
    """``X,Y`` or ``X,Y,+`` (object) or ``X,Y,-`` (background)."""
    parts = [s.strip() for s in text.split(",")]
    sign = "+"
    if len(parts) == 3:
        sign = parts.pop()
    if len(parts) != 2 or sign not in ("+", "-"):
        raise ValidationError(f"--point is X,Y or X,Y,+ or X,Y,- in pixels, got {text!r}")
    try:
        x, y = float(parts[0]), float(parts[1])
    except ValueError:
        raise ValidationError(f"--point is X,Y[,+|-] in pixels, got {text!r}") from None
    return (x, y, sign == "+")
