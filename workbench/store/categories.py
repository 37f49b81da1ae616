"""Classes of a project: add, merge by name (imports), rename/recolour, keypoint schemas, delete.

A class's keypoint schema gives meaning to the keypoints stored on its annotations, so a change
that would no longer fit them is refused here, where the annotations can be counted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from workbench.domain import (
    AttributeDef,
    Category,
    KeypointSchema,
    NotFoundError,
    ValidationError,
    WorkbenchError,
    check_name_length,
    palette_color,
)
from workbench.store.models import AnnotationRow, CategoryRow


def _category_from_row(row: CategoryRow) -> Category:
    schema = None
    if row.keypoint_names:
        schema = KeypointSchema(
            names=tuple(row.keypoint_names),
            skeleton=tuple(tuple(p) for p in row.skeleton or ()),
            flip_pairs=tuple(tuple(p) for p in row.flip_pairs or ()),
        )
    return Category(
        name=row.name,
        id=row.id,
        color=row.color,
        supercategory=row.supercategory,
        keypoints=schema,
        attributes=attributes_from_json(row.attributes),
    )


def attributes_from_json(raw: list[Any] | None) -> tuple[AttributeDef, ...]:
    return tuple(
        AttributeDef(name=a["name"], kind=a.get("kind", "checkbox"), options=tuple(a.get("options") or ()))
        for a in raw or ()
    )


def attributes_to_json(defs: Iterable[AttributeDef]) -> list[dict[str, Any]] | None:
    out = [
        {"name": a.name, "kind": a.kind, **({"options": list(a.options)} if a.options else {})} for a in defs
    ]
    return out or None


def _schema_columns(schema: KeypointSchema | None) -> dict[str, Any]:
    if schema is None:
        return {"keypoint_names": None, "skeleton": None, "flip_pairs": None}
    return {
        "keypoint_names": list(schema.names),
        "skeleton": [list(p) for p in schema.skeleton],
        "flip_pairs": [list(p) for p in schema.flip_pairs],
    }


def list_categories(s: Session, pid: int) -> list[Category]:
    rows = s.scalars(
        select(CategoryRow)
        .where(CategoryRow.project_id == pid)
        .order_by(CategoryRow.position, CategoryRow.id)
    )
    return [_category_from_row(r) for r in rows]


def add_category(s: Session, pid: int, cat: Category) -> Category:
    check_name_length("class name", cat.name)
    check_name_length("supercategory", cat.supercategory)
    if s.scalar(select(CategoryRow.id).where(CategoryRow.project_id == pid, CategoryRow.name == cat.name)):
        raise ValidationError(f"class {cat.name!r} already exists in this project")
    position = s.scalar(select(func.count(CategoryRow.id)).where(CategoryRow.project_id == pid)) or 0
    color = (
        cat.color
        if cat.color != Category.__dataclass_fields__["color"].default
        else palette_color(position)
    )
    if not re.fullmatch(r"#[0-9a-fA-F]{6}", color):
        raise ValidationError(f"colour must look like #rrggbb, got {color!r}")
    row = CategoryRow(
        project_id=pid,
        name=cat.name,
        color=color,
        supercategory=cat.supercategory,
        position=position,
        attributes=attributes_to_json(cat.attributes),
        **_schema_columns(cat.keypoints),
    )
    s.add(row)
    s.flush()
    return _category_from_row(row)


def merge_categories(s: Session, pid: int, cats: Iterable[Category]) -> tuple[dict[str, int], list[str]]:
    """Map each category name to its id in the project, adding the new ones (merge by name).

    A keypoint schema is taken over when the project's class has none; a different schema for an
    existing class is refused, since it would change the meaning of stored keypoints.
    """
    existing = {c.name: c for c in list_categories(s, pid)}
    ids: dict[str, int] = {}
    notes: list[str] = []
    for cat in cats:
        have = existing.get(cat.name)
        if have is None:
            have = add_category(s, pid, cat)
            existing[cat.name] = have
            notes.append(f"added class {cat.name!r}")
        elif cat.keypoints is not None and have.keypoints is None:
            s.execute(
                update(CategoryRow).where(CategoryRow.id == have.id).values(**_schema_columns(cat.keypoints))
            )
            notes.append(f"class {cat.name!r} takes the keypoint schema {list(cat.keypoints.names)}")
        elif cat.keypoints is not None and have.keypoints.names != cat.keypoints.names:
            raise ValidationError(
                f"class {cat.name!r} has keypoints {list(have.keypoints.names)} in this project, "
                f"the import has {list(cat.keypoints.names)}"
            )
        assert have.id is not None
        ids[cat.name] = have.id
    return ids, notes


def update_category(
    s: Session,
    pid: int,
    category_id: int,
    *,
    name: str | None = None,
    color: str | None = None,
    keypoints: KeypointSchema | None | bool = False,
    attributes: Iterable[AttributeDef] | None = None,
) -> Category:
    """Rename, recolour, change the keypoint schema (``keypoints=None`` removes it) or the attribute
    definitions (``attributes``; None leaves them). Stored values of a dropped or changed attribute
    stay on the annotations, as an import's unknown keys do."""
    row = s.get(CategoryRow, category_id)
    if row is None or row.project_id != pid:
        raise NotFoundError(f"no class with id {category_id} in this project")
    if name is not None and name != row.name:
        name = name.strip()
        Category(name=name)  # validates
        check_name_length("class name", name)
        if s.scalar(select(CategoryRow.id).where(CategoryRow.project_id == pid, CategoryRow.name == name)):
            raise ValidationError(f"class {name!r} already exists in this project")
        row.name = name
    if color is not None:
        if not re.fullmatch(r"#[0-9a-fA-F]{6}", color):
            raise ValidationError(f"colour must look like #rrggbb, got {color!r}")
        row.color = color
    if keypoints is not False:
        assert keypoints is None or isinstance(keypoints, KeypointSchema)
        old_k = len(row.keypoint_names or [])
        new_k = 0 if keypoints is None else keypoints.num_keypoints
        if old_k != new_k and category_annotation_counts(s, pid).get(category_id, 0):
            n_kp = s.scalar(
                select(func.count(AnnotationRow.id)).where(
                    AnnotationRow.category_id == category_id, AnnotationRow.keypoints.is_not(None)
                )
            )
            if n_kp:
                raise ValidationError(
                    f"class {row.name!r} has {n_kp} annotations with {old_k} keypoints; "
                    f"a schema with {new_k} keypoints would not fit them"
                )
        for k, v in _schema_columns(keypoints).items():
            setattr(row, k, v)
    if attributes is not None:
        row.attributes = attributes_to_json(Category(name=row.name, attributes=tuple(attributes)).attributes)
    s.flush()
    return _category_from_row(row)


def category_annotation_counts(s: Session, pid: int) -> dict[int, int]:
    rows = s.execute(
        select(AnnotationRow.category_id, func.count())
        .join(CategoryRow, CategoryRow.id == AnnotationRow.category_id)
        .where(CategoryRow.project_id == pid)
        .group_by(AnnotationRow.category_id)
    ).all()
    return {cid: n for cid, n in rows}


def delete_category(s: Session, pid: int, category_id: int, *, delete_annotations: bool = False) -> int:
    """Delete a class; with annotations it needs ``delete_annotations=True``. Returns rows removed."""
    row = s.get(CategoryRow, category_id)
    if row is None or row.project_id != pid:
        raise NotFoundError(f"no class with id {category_id} in this project")
    n = category_annotation_counts(s, pid).get(category_id, 0)
    if n and not delete_annotations:
        raise WorkbenchError(
            f"class {row.name!r} has {n} annotations; delete them with it explicitly "
            "(--delete-annotations) or move them to another class first"
        )
    if n:
        s.execute(delete(AnnotationRow).where(AnnotationRow.category_id == category_id))
    s.delete(row)
    s.flush()
    return n


def category_ids_by_name(s: Session, pid: int) -> dict[str, int]:
    return dict(
        s.execute(select(CategoryRow.name, CategoryRow.id).where(CategoryRow.project_id == pid)).all()
    )
