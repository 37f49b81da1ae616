"""Three-way merge of one image's shapes, for two tabs (or a tab and the CLI) editing the same image.

Each stored shape has its own version, bumped only when the shape changes. A tab knows the shapes it
loaded (the base); when its save meets a newer image version, its edits and the other side's are
merged shape by shape: a shape only one side touched takes that side's state, new shapes of both
sides are kept, and only a shape that both sides changed differently is a clash for the user.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from workbench.domain import Instance

TOLERANCE_PX = 0.006
"""The browser rounds coordinates to 0.01 px: a shape within this of its base is unchanged."""


@dataclass(frozen=True)
class Clash:
    """One shape both sides changed: ``mine`` or ``theirs`` is None where that side deleted it."""

    id: int
    mine: Instance | None
    theirs: Instance | None


@dataclass(frozen=True)
class Merged:
    instances: list[Instance]
    """The merged shapes (with mine taken for every clash, so 'keep mine' is this list as it is)."""
    clashes: list[Clash] = field(default_factory=list)

    def taking_theirs(self) -> list[Instance]:
        """The merged shapes with the other side's state for every clash."""
        theirs = {c.id: c.theirs for c in self.clashes}
        out = [i for i in self.instances if i.id not in theirs]
        out.extend(t for t in theirs.values() if t is not None)
        return out


def _close(a: Sequence[float] | None, b: Sequence[float] | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return len(a) == len(b) and all(abs(x - y) <= TOLERANCE_PX for x, y in zip(a, b, strict=True))


def same_shape(a: Instance, b: Instance) -> bool:
    """True where two states of a shape say the same thing (coordinates within the browser's rounding)."""
    return (
        a.category == b.category
        and len(a.polygons) == len(b.polygons)
        and all(_close(p, q) for p, q in zip(a.polygons, b.polygons, strict=True))
        and a.rle == b.rle
        and (a.has_shape or b.has_shape or _close(a.bbox_xywh, b.bbox_xywh))  # a box-only instance's box
        and _close(a.keypoints, b.keypoints)
        and a.iscrowd == b.iscrowd
        and a.source == b.source
        and dict(a.attributes) == dict(b.attributes)
        and getattr(a, "z_order", 0) == getattr(b, "z_order", 0)
    )


def merge_shapes(base: Sequence[Instance], mine: Sequence[Instance], theirs: Sequence[Instance]) -> Merged:
    """Merge my shapes and theirs, both edited from ``base`` (instances with row ids and versions)."""
    base_by_id = {b.id: b for b in base if b.id is not None}
    theirs_by_id = {t.id: t for t in theirs if t.id is not None}
    out: list[Instance] = []
    clashes: list[Clash] = []
    seen: set[int] = set()
    for m in mine:
        b = base_by_id.get(m.id) if m.id is not None else None
        if b is None or m.id is None:
            if m.id is not None and m.id in theirs_by_id:
                seen.add(m.id)  # a row this tab saved after its base: the same shape on both sides
            out.append(m)
            continue
        seen.add(m.id)
        t = theirs_by_id.get(m.id)
        mine_changed = not same_shape(m, b)
        if t is None:  # they deleted it
            if mine_changed:
                clashes.append(Clash(m.id, mine=m, theirs=None))
                out.append(m)
            continue
        theirs_changed = t.version != b.version and not same_shape(t, b)
        if mine_changed and theirs_changed and not same_shape(m, t):
            clashes.append(Clash(m.id, mine=m, theirs=t))
            out.append(m)
        else:
            out.append(m if mine_changed else t)
    for b in base:
        if b.id is None or b.id in seen:
            continue
        seen.add(b.id)
        t = theirs_by_id.get(b.id)  # I deleted it
        if t is not None and t.version != b.version and not same_shape(t, b):
            clashes.append(Clash(b.id, mine=None, theirs=t))
    out.extend(t for t in theirs if t.id is not None and t.id not in seen and t.id not in base_by_id)
    return Merged(instances=out, clashes=clashes)
