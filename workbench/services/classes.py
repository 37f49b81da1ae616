"""Class (category) use cases: add, list, rename, recolour, keypoint schema, attributes, delete."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace

from workbench.domain import (
    ATTRIBUTE_KINDS,
    BUILTIN_ATTRIBUTES,
    AttributeDef,
    Category,
    KeypointSchema,
    ValidationError,
    check_flip_pairs,
)
from workbench.services.permissions import requires
from workbench.services.workspace import Workspace
from workbench.store import categories as category_repo
from workbench.store import projects as project_repo


@requires("project.read")
def list_categories(ws: Workspace, slug: str) -> list[Category]:
    with ws.store.transaction() as s:
        return category_repo.list_categories(s, project_repo.project_id(s, slug))


@requires("classes.edit")
def add_category(ws: Workspace, slug: str, category: Category) -> Category:
    """Add a class; its name is stripped as a rename strips it (``" pad "`` is the class ``pad``)."""
    name = category.name.strip()
    if not name:
        raise ValidationError(f"a class name cannot be empty or only spaces, got {category.name!r}")
    category = replace(category, name=name)
    if category.keypoints is not None:
        check_flip_pairs(category.keypoints)
    with ws.store.transaction() as s:
        return category_repo.add_category(s, project_repo.project_id(s, slug), category)


@requires("classes.edit")
def update_category(
    ws: Workspace,
    slug: str,
    category_id: int,
    *,
    name: str | None = None,
    color: str | None = None,
    keypoints: KeypointSchema | None | bool = False,
    attributes: Iterable[AttributeDef] | None = None,
) -> Category:
    """Change a class; ``attributes`` replaces its attribute definitions (None leaves them)."""
    if isinstance(keypoints, KeypointSchema):
        check_flip_pairs(keypoints)
    with ws.store.transaction() as s:
        return category_repo.update_category(
            s,
            project_repo.project_id(s, slug),
            category_id,
            name=name,
            color=color,
            keypoints=keypoints,
            attributes=attributes,
        )


@requires("classes.edit")
def delete_category(ws: Workspace, slug: str, category_id: int, *, delete_annotations: bool = False) -> int:
    with ws.store.transaction() as s:
        return category_repo.delete_category(
            s, project_repo.project_id(s, slug), category_id, delete_annotations=delete_annotations
        )


@requires("project.read")
def category_annotation_counts(ws: Workspace, slug: str) -> dict[int, int]:
    with ws.store.transaction() as s:
        return category_repo.category_annotation_counts(s, project_repo.project_id(s, slug))


def parse_pairs(text: str, names: list[str]) -> tuple[tuple[int, int], ...]:
    """Parse ``"a-b, b-c"`` (names or 1-based numbers) into 0-based index pairs.

    Keypoint names may hold '-' themselves (``left-eye-right-eye``): the pair is split at the one
    '-' (or ':') whose two sides are both keypoints; two such places is an ambiguity, said so.
    """

    def index_of(end: str) -> int | None:
        if end in names:
            return names.index(end)
        if end.isdigit() and 1 <= int(end) <= len(names):
            return int(end) - 1
        return None

    pairs: list[tuple[int, int]] = []
    for part in [p.strip() for p in text.split(",") if p.strip()]:
        cuts = [i for i, ch in enumerate(part) if ch in "-:"]
        if not cuts:
            raise ValueError(f"a pair looks like 'left_eye-right_eye' or '1-2', got {part!r}")
        found = []
        for i in cuts:
            a, b = index_of(part[:i].strip()), index_of(part[i + 1 :].strip())
            if a is not None and b is not None:
                found.append((a, b))
        if len(found) > 1:
            raise ValueError(f"{part!r} splits into two keypoints in more than one way; use 1-based numbers")
        if not found:
            if len(cuts) == 1:
                for end in (part[: cuts[0]].strip(), part[cuts[0] + 1 :].strip()):
                    if index_of(end) is None:
                        raise ValueError(f"{end!r} is not one of the keypoints {names} (or a 1-based number)")
            raise ValueError(
                f"{part!r} is not two of the keypoints {names} (or 1-based numbers) joined by '-'"
            )
        pairs.append(found[0])
    return tuple(pairs)


_ATTRIBUTE_LINE = re.compile(r"^(?P<name>[^:]+?)\s*(?::\s*(?P<kind>[a-z]+)\s*(?:\((?P<options>.*)\))?)?$")


def parse_attributes(text: str) -> tuple[AttributeDef, ...]:
    """Attribute definitions from text, one a line: ``name: kind`` with kind checkbox (the default),
    text, number or ``select(option, option, ...)``; e.g. ``colour: select(red, green)``."""
    defs: list[AttributeDef] = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        m = _ATTRIBUTE_LINE.match(line)
        kind = (m.group("kind") or "checkbox") if m else ""
        if m is None or kind not in ATTRIBUTE_KINDS:
            raise ValueError(
                f"attribute line {n} {line!r}: write 'name: kind', kind one of {', '.join(ATTRIBUTE_KINDS)}, "
                "e.g. 'colour: select(red, green)'"
            )
        options = m.group("options")
        if (options is not None) != (kind == "select"):
            raise ValueError(
                f"attribute line {n} {line!r}: options in (...) go with select, and select needs them"
            )
        opts = tuple(o.strip() for o in (options or "").split(",") if o.strip())
        name = m.group("name").strip()
        if name in BUILTIN_ATTRIBUTES or name in [d.name for d in defs]:
            why = "every class has it already" if name in BUILTIN_ATTRIBUTES else "a line above has it"
            raise ValueError(f"attribute line {n} {line!r}: {name!r} is taken ({why})")
        defs.append(AttributeDef(name=name, kind=kind, options=opts))
    return tuple(defs)


def attributes_text(defs: Iterable[AttributeDef]) -> str:
    """The text ``parse_attributes`` reads back to the same definitions."""
    return "\n".join(
        f"{a.name}: select({', '.join(a.options)})" if a.kind == "select" else f"{a.name}: {a.kind}"
        for a in defs
    )
