"""Which heatmap channels belong to which class, and which keypoints a mirror swaps.

One model serves every class with a keypoint schema: class c owns the channels
``offset[c] .. offset[c] + K_c - 1``, so two classes never share a channel (Mask R-CNN's keypoint
head shares K_max channels across classes; a heatmap model has no reason to). A crop of class c is
supervised on its own channels only (the others weigh 0).

Flip pairs: the schema's explicit ``flip_pairs`` when it has any; otherwise pairs read from the
names (``left_eye`` / ``right_eye``, ``l_knee`` / ``r_knee``, ``eye_left`` / ``eye_right``,
``left`` / ``right``, any case).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from workbench.domain import KeypointSchema, ValidationError

_PREFIX = re.compile(r"^(left|right|l|r)([_\- ].+)?$", re.I)
_SUFFIX = re.compile(r"^(.+[_\- ])(left|right|l|r)$", re.I)
_OTHER = {"left": "right", "l": "r", "right": "left", "r": "l"}


def _mirror_name(name: str) -> str | None:
    """The name of the other side (case kept as written), or None for a keypoint on the midline."""
    m = _PREFIX.match(name)
    if m:
        return _swap_case(m.group(1), _OTHER[m.group(1).lower()]) + (m.group(2) or "")
    m = _SUFFIX.match(name)
    if m:
        return m.group(1) + _swap_case(m.group(2), _OTHER[m.group(2).lower()])
    return None


def _swap_case(like: str, word: str) -> str:
    return word.upper() if like.isupper() else word.capitalize() if like[:1].isupper() else word


def inferred_flip_pairs(names: Sequence[str]) -> tuple[tuple[int, int], ...]:
    """Left/right pairs read from keypoint names (each keypoint in at most one pair)."""
    index = {n: i for i, n in enumerate(names)}
    pairs: list[tuple[int, int]] = []
    seen: set[int] = set()
    for i, name in enumerate(names):
        other = _mirror_name(name)
        j = index.get(other) if other is not None else None
        if j is None or j == i or i in seen or j in seen:
            continue
        pairs.append((min(i, j), max(i, j)))
        seen.update((i, j))
    return tuple(sorted(pairs))


def flip_pairs(schema: KeypointSchema) -> tuple[tuple[int, int], ...]:
    """The schema's flip pairs, or those its names imply when it gives none."""
    return tuple(schema.flip_pairs) if schema.flip_pairs else inferred_flip_pairs(schema.names)


def flip_permutation(schema: KeypointSchema, pairs: Sequence[tuple[int, int]] | None = None) -> list[int]:
    perm = list(range(schema.num_keypoints))
    for a, b in (flip_pairs(schema) if pairs is None else pairs):
        perm[a], perm[b] = b, a
    return perm


@dataclass(frozen=True)
class ChannelLayout:
    """The keypoint classes in order, each with its schema, its flip pairs and its first channel."""

    classes: tuple[tuple[str, KeypointSchema, tuple[tuple[int, int], ...]], ...]

    @classmethod
    def from_schemas(
        cls, schemas: Sequence[tuple[str, KeypointSchema]], explicit_pairs: Mapping[str, Sequence[Sequence[int]]] | None = None
    ) -> ChannelLayout:
        """``explicit_pairs`` (class -> pairs) overrides the schema's and the names' pairs."""
        if not schemas:
            raise ValidationError("a heatmap model needs at least one class with a keypoint schema")
        given = dict(explicit_pairs or {})
        unknown = sorted(set(given) - {name for name, _ in schemas})
        if unknown:
            raise ValidationError(f"flip pairs given for {unknown}, which are not keypoint classes")
        out = []
        for name, schema in schemas:
            pairs = tuple(tuple(int(v) for v in p) for p in given[name]) if name in given else flip_pairs(schema)
            for p in pairs:
                if len(p) != 2 or not all(0 <= v < schema.num_keypoints for v in p) or p[0] == p[1]:
                    raise ValidationError(f"{name}: flip pair {list(p)} is not two keypoints among 0..{schema.num_keypoints - 1}")
            used = [v for p in pairs for v in p]
            if len(set(used)) != len(used):
                raise ValidationError(f"{name}: a keypoint is in more than one flip pair {[list(p) for p in pairs]}")
            # the schema kept here carries the pairs in force, so the layout reads back from its dict
            out.append((name, replace(schema, flip_pairs=pairs), pairs))  # type: ignore[arg-type]
        return cls(tuple(out))

    @property
    def num_channels(self) -> int:
        return sum(s.num_keypoints for _, s, _ in self.classes)

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(name for name, _, _ in self.classes)

    def offset(self, name: str) -> int:
        off = 0
        for n, s, _ in self.classes:
            if n == name:
                return off
            off += s.num_keypoints
        raise KeyError(name)

    def schema(self, name: str) -> KeypointSchema:
        return next(s for n, s, _ in self.classes if n == name)

    def channels(self, name: str) -> slice:
        off = self.offset(name)
        return slice(off, off + self.schema(name).num_keypoints)

    def class_flip_permutation(self, name: str) -> list[int]:
        """Within the class's own K keypoints."""
        _, schema, pairs = next(c for c in self.classes if c[0] == name)
        return flip_permutation(schema, pairs)

    def channel_flip_permutation(self) -> list[int]:
        """Over all channels: what mirroring a heatmap stack does to its channel order."""
        perm: list[int] = []
        for name, _, _ in self.classes:
            off = self.offset(name)
            perm += [off + j for j in self.class_flip_permutation(name)]
        return perm

    def to_dict(self) -> dict[str, Any]:
        return {
            "classes": [
                {"name": n, "keypoints": list(s.names), "skeleton": [list(p) for p in s.skeleton],
                 "flip_pairs": [list(p) for p in pairs]}
                for n, s, pairs in self.classes
            ]
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChannelLayout:
        classes = []
        for c in data["classes"]:
            pairs = tuple(tuple(p) for p in c["flip_pairs"])
            schema = KeypointSchema(tuple(c["keypoints"]), tuple(tuple(p) for p in c.get("skeleton", ())), pairs)
            classes.append((c["name"], schema, pairs))
        return cls(tuple(classes))  # type: ignore[arg-type]
