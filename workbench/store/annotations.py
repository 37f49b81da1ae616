"""Annotations in the store: an image's instances saved against its version, bulk inserts for imports,
and the annotation records exports read.

Saves compare the image version in one conditional UPDATE, so two annotators cannot overwrite each
other, and write only the rows named (changed, new or deleted shapes: one moved vertex on an image
of 1,000 shapes writes one row); imports bypass the ORM because a 200k-annotation file would
otherwise spend most of its time in SQLAlchemy's per-value processing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import orjson
from sqlalchemy import Text, case, cast, delete, func, insert, select, update
from sqlalchemy.orm import Session

from workbench.domain import AnnotationRecord, ConflictError, ImageRecord, Instance, Rle, ValidationError
from workbench.store.categories import list_categories
from workbench.store.images import image_row
from workbench.store.models import AnnotationRow, CategoryRow, ImageRow, utcnow


def instance_to_values(inst: Instance, category_id: int, image_id: int) -> dict[str, Any]:
    if inst.polygons:
        seg: Any = inst.polygons  # tuples serialise as JSON arrays
    elif inst.rle is not None:
        seg = inst.rle.to_coco()
    else:
        seg = None
    return {
        "image_id": image_id,
        "category_id": category_id,
        "segmentation": seg,
        "keypoints": inst.keypoints,
        "bbox": inst.bbox_xywh,
        "area": inst.area,
        "iscrowd": bool(inst.iscrowd),
        "source": inst.source,
        "score": inst.score,
        "attributes": inst.attributes or None,
        "z_order": int(inst.z_order),
    }


def instance_from_values(
    category: str,
    seg: Any,
    keypoints: list[float] | None,
    bbox: list[float] | None,
    area: float | None,
    iscrowd: bool,
    source: str,
    score: float | None,
    ann_id: int | None,
    version: int,
    attributes: dict[str, Any] | None,
    z_order: int | None = 0,
) -> Instance:
    polygons: tuple[tuple[float, ...], ...] = ()
    rle = None
    if isinstance(seg, list):
        polygons = tuple(tuple(p) for p in seg)
    elif isinstance(seg, dict):
        rle = Rle(size_hw=(seg["size"][0], seg["size"][1]), counts=seg["counts"])
    return Instance(
        category=category,
        polygons=polygons,
        rle=rle,
        bbox_xywh=tuple(bbox) if bbox is not None else None,  # type: ignore[arg-type]
        area=area,
        keypoints=tuple(keypoints) if keypoints is not None else None,
        iscrowd=bool(iscrowd),
        score=score,
        source=source,
        id=ann_id,
        version=version,
        attributes=attributes or {},  # type: ignore[arg-type]
        z_order=int(z_order or 0),
    )


INSTANCE_COLUMNS = (
    AnnotationRow.image_id,
    CategoryRow.name,
    AnnotationRow.segmentation,
    AnnotationRow.keypoints,
    AnnotationRow.bbox,
    AnnotationRow.area,
    AnnotationRow.iscrowd,
    AnnotationRow.source,
    AnnotationRow.score,
    AnnotationRow.id,
    AnnotationRow.version,
    AnnotationRow.attributes,
    AnnotationRow.z_order,
)


def load_instances(s: Session, image_id: int) -> list[Instance]:
    rows = s.execute(
        select(*INSTANCE_COLUMNS)
        .join(CategoryRow, CategoryRow.id == AnnotationRow.category_id)
        .where(AnnotationRow.image_id == image_id)
        .order_by(AnnotationRow.id)
    )
    return [instance_from_values(*r[1:]) for r in rows]


def load_instances_by_id(s: Session, image_id: int, ids: Sequence[int]) -> dict[int, Instance]:
    """The image's rows with these ids (a save's changed shapes), by id; ids not on it are absent."""
    if not ids:
        return {}
    rows = s.execute(
        select(*INSTANCE_COLUMNS)
        .join(CategoryRow, CategoryRow.id == AnnotationRow.category_id)
        .where(AnnotationRow.image_id == image_id, AnnotationRow.id.in_(sorted(set(ids))))
    )
    return {int(r[9]): instance_from_values(*r[1:]) for r in rows}


def count_instances(s: Session, image_id: int, *, without: Sequence[int] = ()) -> int:
    """How many annotations the image has, not counting the rows in ``without``."""
    q = select(func.count(AnnotationRow.id)).where(AnnotationRow.image_id == image_id)
    if without:
        q = q.where(AnnotationRow.id.not_in(sorted(set(without))))
    return int(s.scalar(q) or 0)


@dataclass(frozen=True)
class WrittenRows:
    """What a save wrote: the image's new version, and for each instance written (in the order given)
    its row id and row version, and the instance as stored (attributes as checked)."""

    version: int
    ids: list[int]
    instances: list[Instance]


def save_image_changes(
    s: Session,
    pid: int,
    image_id: int,
    writes: Sequence[Instance],
    deleted: Sequence[int] = (),
    *,
    expected_version: int,
    status: str | None = None,
) -> WrittenRows:
    """Write some of an image's annotations if nobody saved since ``expected_version``.

    ``writes`` are the instances that changed or are new: each is written as it is (the caller has
    compared them with their rows: the one comparison of a save), an instance whose id is a row of this
    image rewrites that row and bumps its version, any other is inserted as a new row. ``deleted`` are
    row ids to remove. Rows not named keep their version and timestamp. The version check and bump is
    one conditional UPDATE, so two concurrent saves cannot both pass.
    """
    image_row(s, pid, image_id)
    values: dict[str, Any] = {"version": ImageRow.version + 1, "updated_at": utcnow()}
    if status is not None:
        ImageRecord(file_name="-", width=1, height=1, status=status)
        values["status"] = status
    res = s.execute(
        update(ImageRow)
        .where(ImageRow.id == image_id, ImageRow.version == expected_version)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if res.rowcount != 1:
        current = s.scalar(select(ImageRow.version).where(ImageRow.id == image_id))
        raise ConflictError(
            f"image {image_id} was saved elsewhere (version {current}, you had {expected_version}); "
            "reload it to see the other changes; nothing was overwritten"
        )
    cats = {c.name: c for c in list_categories(s, pid)}
    named = sorted({i.id for i in writes if i.id is not None})
    before: dict[int, Any] = {}
    if named:
        before = dict(
            s.execute(
                select(AnnotationRow.id, AnnotationRow.attributes).where(
                    AnnotationRow.image_id == image_id, AnnotationRow.id.in_(named)
                )
            ).all()
        )
    kept: set[int] = set()
    out: list[Instance | None] = []
    new_rows: list[dict[str, Any]] = []
    new_at: list[int] = []
    now = utcnow()
    for inst in writes:
        cat = cats.get(inst.category)
        if cat is None:
            raise ValidationError(f"unknown class {inst.category!r}; classes: {sorted(cats)}")
        _check_keypoints(inst, cat.keypoints.names if cat.keypoints is not None else ())
        # attribute values checked against the class's definitions (what an import left is kept)
        row_id = inst.id if inst.id in before and inst.id not in kept else None
        try:
            checked = cat.check_attributes(inst.attributes, before.get(row_id) if row_id else None)
        except ValidationError as exc:
            raise ValidationError(f"class {inst.category!r}: {exc}") from None
        if checked != inst.attributes:
            inst = replace(inst, attributes=checked)
        vals = instance_to_values(inst, int(cat.id or 0), image_id)
        if row_id is not None:
            kept.add(row_id)
            version = s.scalar(
                update(AnnotationRow)
                .where(AnnotationRow.id == row_id)
                .values(**vals, version=AnnotationRow.version + 1, updated_at=now)
                .returning(AnnotationRow.version)
                .execution_options(synchronize_session=False)
            )
            out.append(replace(inst, id=row_id, version=int(version or 1)))
        else:
            new_at.append(len(out))
            out.append(replace(inst, id=None, version=1))
            new_rows.append(vals)
    gone = sorted(set(deleted) - kept)
    if gone:
        s.execute(delete(AnnotationRow).where(AnnotationRow.image_id == image_id, AnnotationRow.id.in_(gone)))
    if new_rows:
        created = s.scalars(
            insert(AnnotationRow).returning(AnnotationRow.id, sort_by_parameter_order=True), new_rows
        ).all()
        for at, new_id in zip(new_at, created, strict=True):
            out[at] = replace(out[at], id=int(new_id))  # type: ignore[arg-type]
    written = [i for i in out if i is not None]
    return WrittenRows(version=expected_version + 1, ids=[int(i.id or 0) for i in written], instances=written)


def _check_keypoints(inst: Instance, names: Sequence[str]) -> None:
    if not inst.keypoints:
        return
    k, got = len(names), len(inst.keypoints) // 3
    if not k:
        raise ValidationError(
            f"class {inst.category!r} has no keypoints, but an instance brings {got}; define its keypoints first"
        )
    if got != k:
        raise ValidationError(f"class {inst.category!r} has {k} keypoints, an instance brings {got}")


def mark_annotations_imported(s: Session, image_id: int) -> None:
    """Annotations were imported onto an existing image: bump its version (an open annotator then
    reloads instead of overwriting them) and an unlabeled image becomes done, like a new one."""
    s.execute(
        update(ImageRow)
        .where(ImageRow.id == image_id)
        .values(
            version=ImageRow.version + 1,
            status=case((ImageRow.status == "unlabeled", "done"), else_=ImageRow.status),
            updated_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )


def mark_images_imported(s: Session, image_ids: Sequence[int]) -> None:
    """``mark_annotations_imported`` of many images in one statement per chunk (a bulk import used to
    spend most of its time on one UPDATE per image)."""
    ids = sorted(set(image_ids))
    for at in range(0, len(ids), 900):  # SQLite's bound-parameter limit is 999 on old builds
        s.execute(
            update(ImageRow)
            .where(ImageRow.id.in_(ids[at : at + 900]))
            .values(
                version=ImageRow.version + 1,
                status=case((ImageRow.status == "unlabeled", "done"), else_=ImageRow.status),
                updated_at=utcnow(),
            )
            .execution_options(synchronize_session=False)
        )


def annotations_without_keypoints(s: Session, image_id: int) -> list[tuple[int, int, list[float] | None]]:
    """(annotation id, category id, bbox xywh) of the image's annotations that carry no keypoints."""
    rows = s.execute(
        select(AnnotationRow.id, AnnotationRow.category_id, AnnotationRow.bbox)
        .where(AnnotationRow.image_id == image_id, AnnotationRow.keypoints.is_(None))
        .order_by(AnnotationRow.id)
    )
    return [(int(i), int(c), list(b) if b else None) for i, c, b in rows]


def set_annotation_keypoints(s: Session, ann_id: int, keypoints: Sequence[float]) -> None:
    s.execute(
        update(AnnotationRow)
        .where(AnnotationRow.id == ann_id)
        .values(keypoints=list(keypoints))
        .execution_options(synchronize_session=False)
    )


def insert_instances(s: Session, rows: list[dict[str, Any]]) -> None:
    """Bulk insert of prepared annotation rows (imports): Core executemany, no ORM unit of work."""
    if not rows:
        return
    now = utcnow()
    if s.get_bind().dialect.name != "sqlite":
        for r in rows:
            r.setdefault("version", 1)
            r["created_at"] = r["updated_at"] = now
        s.execute(insert(AnnotationRow.__table__), rows)
        return
    # SQLite: JSON columns are TEXT; serialise once with orjson and hand tuples to the driver,
    # skipping SQLAlchemy's per-value processing (a third of a 200k-annotation import otherwise).
    stamp = now.strftime("%Y-%m-%d %H:%M:%S.%f")
    dumps = orjson.dumps
    params = [
        (
            r["image_id"], r["category_id"],
            None if r["segmentation"] is None else dumps(r["segmentation"]).decode(),
            None if r["keypoints"] is None else dumps(r["keypoints"]).decode(),
            None if r["bbox"] is None else dumps(r["bbox"]).decode(),
            r["area"], bool(r["iscrowd"]), r["source"], r["score"],
            None if not r["attributes"] else dumps(r["attributes"]).decode(),
            r.get("version", 1), stamp, stamp, int(r.get("z_order") or 0),
        )
        for r in rows
    ]
    s.connection().exec_driver_sql(
        "INSERT INTO annotations (image_id, category_id, segmentation, keypoints, bbox, area, iscrowd, "
        "source, score, attributes, version, created_at, updated_at, z_order) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        params,
    )


def annotation_records(s: Session, pid: int, *, as_stored: bool = True) -> list[AnnotationRecord]:
    """Every annotation of a project as the COCO writer takes it, ordered by image then id.

    The JSON columns are read as text (not through SQLAlchemy's JSON type, nor into domain
    records). With ``as_stored`` (SQLite), a record's segmentation and bbox are the stored text as
    ``orjson.Fragment``, written into the file as they are (the store holds compact orjson text),
    since parsing and re-serialising 200k polygons cost most of an export; a record the writer
    looks inside (no bbox or area, an empty segmentation) is parsed. Without it every column is
    parsed with orjson.
    """
    if as_stored and s.get_bind().dialect.name == "sqlite":
        return _stored_records(s, pid)
    a = AnnotationRow
    q = (
        select(
            a.id, a.image_id, a.category_id, cast(a.segmentation, Text), cast(a.bbox, Text), a.area,
            a.iscrowd, cast(a.keypoints, Text), a.score, cast(a.attributes, Text), a.z_order,
        )
        .join(ImageRow, ImageRow.id == a.image_id)
        .where(ImageRow.project_id == pid)
        .order_by(a.image_id, a.id)
    )
    loads = orjson.loads
    return [
        AnnotationRecord(
            aid, image_id, cat_id, loads(seg) if seg else [], loads(bbox) if bbox else None, area,
            iscrowd, loads(kps) if kps else None, score, loads(attrs) if attrs else None, z or 0,
        )
        for aid, image_id, cat_id, seg, bbox, area, iscrowd, kps, score, attrs, z in s.execute(q)
    ]  # fmt: skip


def _stored_records(s: Session, pid: int) -> list[AnnotationRecord]:
    """``annotation_records`` on SQLite: one driver query, the JSON text handed on as fragments
    (rows taken from the cursor as they come, no list of them all)."""
    cursor = s.connection().connection.cursor()  # the driver's own: plain tuples, no Row per record
    try:
        cursor.execute(
            "SELECT a.id, a.image_id, a.category_id, a.segmentation, a.bbox, a.area, a.iscrowd, a.keypoints, "
            "a.score, a.attributes, a.z_order FROM annotations AS a "
            "WHERE a.image_id IN (SELECT id FROM images WHERE project_id = ?) ORDER BY a.image_id, a.id",
            (pid,),
        )
        return _records_of(cursor)
    finally:
        cursor.close()


def _records_of(rows: Any) -> list[AnnotationRecord]:
    loads, fragment = orjson.loads, orjson.Fragment
    new, record = tuple.__new__, AnnotationRecord  # the named tuple built in C, not by its Python __new__
    return [
        new(record, (
            aid, image_id, cat_id, fragment(seg), fragment(bbox), area, bool(iscrowd),
            loads(kps) if kps else None, score, loads(attrs) if attrs else None, z or 0,
        ))
        if seg and bbox and area is not None and len(seg) > 4 and len(bbox) > 4  # not "[]", "null"
        else AnnotationRecord(
            aid, image_id, cat_id, loads(seg) if seg else [], loads(bbox) if bbox else None, area,
            bool(iscrowd), loads(kps) if kps else None, score, loads(attrs) if attrs else None, z or 0,
        )
        for aid, image_id, cat_id, seg, bbox, area, iscrowd, kps, score, attrs, z in rows
    ]  # fmt: skip
