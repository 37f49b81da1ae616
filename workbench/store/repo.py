"""Repository functions: queries and writes that take a session and speak domain records."""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from sqlalchemy import Text, case, cast, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from workbench.domain import (
    AnnotatedImage,
    Category,
    ConflictError,
    Dataset,
    ImageRecord,
    Instance,
    KeypointSchema,
    NotFoundError,
    ProjectInfo,
    Rle,
    ValidationError,
    WorkbenchError,
)
from workbench.store.models import AnnotationRow, CategoryRow, ImageRow, Project, utcnow

# ---------------------------------------------------------------------------------------------- projects


SLUG_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,99}")
"""A project slug names its folder in the workspace: no separators, dots or spaces."""


def slugify(name: str) -> str:
    """Lower-case ASCII words joined by '-'; accents are dropped, not the letters (``Über`` -> ``uber``)."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    return slug[:100].strip("-") or "project"


def _project_row(s: Session, slug: str) -> Project:
    row = s.scalar(select(Project).where(Project.slug == slug))
    if row is None:
        have = s.scalars(select(Project.slug).order_by(Project.slug)).all()
        raise NotFoundError(f"no project {slug!r}; projects: {', '.join(have) or '(none)'}")
    return row


def project_id(s: Session, slug: str) -> int:
    return _project_row(s, slug).id


def create_project(s: Session, name: str, *, slug: str | None = None, description: str = "") -> ProjectInfo:
    name = name.strip()
    if not name:
        raise ValidationError("a project needs a name")
    if slug is not None:
        # the slug is a folder name under the workspace: '../x', 'a/b' or 'My Birds' would escape it
        # or break the URLs and commands that name the project
        if not SLUG_PATTERN.fullmatch(slug):
            raise ValidationError(
                f"project slug {slug!r} must be 1-100 lower-case letters, digits, '-' or '_', starting "
                f"with a letter or digit (e.g. {slugify(slug)!r})"
            )
        if s.scalar(select(Project.id).where(Project.slug == slug)) is not None:
            raise ValidationError(f"a project {slug!r} already exists")
    else:
        # names that differ but share a slug ('鳥' and '鳥類' are both 'project') get a numbered one;
        # the same name twice is refused
        base = slug = slugify(name)
        n = 1
        while (other := s.scalar(select(Project.name).where(Project.slug == slug))) is not None:
            if other.casefold() == name.casefold():
                raise ValidationError(f"a project {slug!r} already exists (named {other!r})")
            n += 1
            slug = f"{base[: 100 - len(str(n)) - 1]}-{n}"
    row = Project(slug=slug, name=name, description=description, settings={})
    s.add(row)
    s.flush()
    return ProjectInfo(id=row.id, slug=slug, name=name, description=description)


def _project_info(s: Session, row: Project) -> ProjectInfo:
    status = dict(
        s.execute(
            select(ImageRow.status, func.count())
            .where(ImageRow.project_id == row.id)
            .group_by(ImageRow.status)
        ).all()
    )
    splits = dict(
        s.execute(
            select(ImageRow.split, func.count()).where(ImageRow.project_id == row.id).group_by(ImageRow.split)
        ).all()
    )
    n_ann = s.scalar(
        select(func.count(AnnotationRow.id))
        .join(ImageRow, AnnotationRow.image_id == ImageRow.id)
        .where(ImageRow.project_id == row.id)
    )
    n_cat = s.scalar(select(func.count(CategoryRow.id)).where(CategoryRow.project_id == row.id))
    return ProjectInfo(
        id=row.id,
        slug=row.slug,
        name=row.name,
        description=row.description,
        num_images=sum(status.values()),
        num_annotations=n_ann or 0,
        num_categories=n_cat or 0,
        status_counts=status,
        split_counts={(k or "unassigned"): v for k, v in splits.items()},
    )


def get_project(s: Session, slug: str) -> ProjectInfo:
    return _project_info(s, _project_row(s, slug))


def list_projects(s: Session) -> list[ProjectInfo]:
    return [_project_info(s, row) for row in s.scalars(select(Project).order_by(Project.name))]


def delete_project(s: Session, slug: str) -> None:
    row = _project_row(s, slug)
    s.execute(delete(Project).where(Project.id == row.id))


def project_settings(s: Session, slug: str) -> dict[str, Any]:
    return dict(_project_row(s, slug).settings or {})


def set_project_setting(s: Session, slug: str, key: str, value: Any) -> None:
    row = _project_row(s, slug)
    settings = dict(row.settings or {})
    settings[key] = value
    row.settings = settings


# -------------------------------------------------------------------------------------------- categories


def _category_from_row(row: CategoryRow) -> Category:
    schema = None
    if row.keypoint_names:
        schema = KeypointSchema(
            names=tuple(row.keypoint_names),
            skeleton=tuple(tuple(p) for p in row.skeleton or ()),
            flip_pairs=tuple(tuple(p) for p in row.flip_pairs or ()),
        )
    return Category(
        name=row.name, id=row.id, color=row.color, supercategory=row.supercategory, keypoints=schema
    )


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


PALETTE = (
    "#e6194b",
    "#3cb44b",
    "#4363d8",
    "#f58231",
    "#911eb4",
    "#42d4f4",
    "#f032e6",
    "#bfef45",
    "#fabed4",
    "#469990",
    "#dcbeff",
    "#9a6324",
    "#800000",
    "#aaffc3",
    "#808000",
    "#000075",
)


def add_category(s: Session, pid: int, cat: Category) -> Category:
    if s.scalar(select(CategoryRow.id).where(CategoryRow.project_id == pid, CategoryRow.name == cat.name)):
        raise ValidationError(f"class {cat.name!r} already exists in this project")
    position = s.scalar(select(func.count(CategoryRow.id)).where(CategoryRow.project_id == pid)) or 0
    color = (
        cat.color
        if cat.color != Category.__dataclass_fields__["color"].default
        else PALETTE[position % len(PALETTE)]
    )
    if not re.fullmatch(r"#[0-9a-fA-F]{6}", color):
        raise ValidationError(f"colour must look like #rrggbb, got {color!r}")
    row = CategoryRow(
        project_id=pid,
        name=cat.name,
        color=color,
        supercategory=cat.supercategory,
        position=position,
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
) -> Category:
    """Rename, recolour or change the keypoint schema (``keypoints=None`` removes it)."""
    row = s.get(CategoryRow, category_id)
    if row is None or row.project_id != pid:
        raise NotFoundError(f"no class with id {category_id} in this project")
    if name is not None and name != row.name:
        name = name.strip()
        Category(name=name)  # validates
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


# ---------------------------------------------------------------------------------------------- images


def _image_from_row(row: Any) -> ImageRecord:
    return ImageRecord(
        file_name=row.original_name,
        width=row.width,
        height=row.height,
        id=row.id,
        sha256=row.sha256,
        path=row.path,
        split=row.split,
        status=row.status,
    )


def image_ids_by_sha(s: Session, pid: int) -> dict[str, int]:
    return dict(s.execute(select(ImageRow.sha256, ImageRow.id).where(ImageRow.project_id == pid)).all())


def add_image(s: Session, pid: int, rec: ImageRecord) -> int:
    row = ImageRow(
        project_id=pid,
        sha256=rec.sha256,
        path=rec.path or "",
        original_name=rec.file_name,
        width=rec.width,
        height=rec.height,
        split=rec.split,
        status=rec.status,
    )
    s.add(row)
    s.flush()
    return row.id


def _image_row(s: Session, pid: int, image_id: int) -> ImageRow:
    row = s.get(ImageRow, image_id)
    if row is None or row.project_id != pid:
        raise NotFoundError(f"no image with id {image_id} in this project")
    return row


def get_image(s: Session, pid: int, image_id: int) -> tuple[ImageRecord, int]:
    """The image and its current version (the token a save must present)."""
    row = _image_row(s, pid, image_id)
    return _image_from_row(row), row.version


def list_images(
    s: Session,
    pid: int,
    *,
    split: str | None = None,
    status: str | None = None,
    category_id: int | None = None,
    unannotated: bool | None = None,
) -> list[ImageRecord]:
    q = select(ImageRow).where(ImageRow.project_id == pid)
    if split is not None:
        q = q.where(ImageRow.split.is_(None) if split == "unassigned" else ImageRow.split == split)
    if status is not None:
        q = q.where(ImageRow.status == status)
    has_ann = select(AnnotationRow.id).where(AnnotationRow.image_id == ImageRow.id).exists()
    if category_id is not None:
        q = q.where(
            select(AnnotationRow.id)
            .where(AnnotationRow.image_id == ImageRow.id, AnnotationRow.category_id == category_id)
            .exists()
        )
    if unannotated is True:
        q = q.where(~has_ann)
    elif unannotated is False:
        q = q.where(has_ann)
    return [_image_from_row(r) for r in s.scalars(q.order_by(ImageRow.id))]


def image_paths(s: Session, pid: int) -> set[str]:
    return set(s.scalars(select(ImageRow.path).where(ImageRow.project_id == pid)))


def delete_image(s: Session, pid: int, image_id: int) -> ImageRecord:
    row = _image_row(s, pid, image_id)
    rec = _image_from_row(row)
    s.execute(delete(ImageRow).where(ImageRow.id == image_id))
    return rec


def set_split(s: Session, pid: int, image_ids: Sequence[int], split: str | None) -> None:
    if split is not None and split not in ("train", "val", "test"):
        raise ValidationError(f"split must be train, val or test, got {split!r}")
    s.execute(
        update(ImageRow)
        .where(ImageRow.project_id == pid, ImageRow.id.in_(list(image_ids)))
        .values(split=split)
    )


def set_splits(s: Session, pid: int, splits: dict[int, str | None]) -> None:
    by_split: dict[str | None, list[int]] = defaultdict(list)
    for image_id, split in splits.items():
        by_split[split].append(image_id)
    for split, ids in by_split.items():
        set_split(s, pid, ids, split)


def set_status(s: Session, pid: int, image_id: int, status: str) -> None:
    ImageRecord(file_name="-", width=1, height=1, status=status)  # validates the status name
    _image_row(s, pid, image_id).status = status


# ----------------------------------------------------------------------------------------- annotations


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
    )


_ANN_COLUMNS = (
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
)


def load_instances(s: Session, image_id: int) -> list[Instance]:
    rows = s.execute(
        select(*_ANN_COLUMNS)
        .join(CategoryRow, CategoryRow.id == AnnotationRow.category_id)
        .where(AnnotationRow.image_id == image_id)
        .order_by(AnnotationRow.id)
    )
    return [instance_from_values(*r[1:]) for r in rows]


def _category_ids_by_name(s: Session, pid: int) -> dict[str, int]:
    return dict(
        s.execute(select(CategoryRow.name, CategoryRow.id).where(CategoryRow.project_id == pid)).all()
    )


def save_image_instances(
    s: Session,
    pid: int,
    image_id: int,
    instances: Sequence[Instance],
    *,
    expected_version: int,
    status: str | None = None,
) -> tuple[int, list[int]]:
    """Replace an image's annotations if nobody saved since ``expected_version``.

    Returns the new image version and the row id of each instance, in the order given, so that a
    caller (the browser) can give new shapes their ids and later saves update those rows in place.
    The version check and bump is one conditional UPDATE, so two concurrent saves cannot both pass.
    Instances that keep their id keep their row, rewritten (and its version bumped) only when
    something in it changed, so a row's version counts its edits; the rest are inserted.
    """
    _image_row(s, pid, image_id)
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
    cat_ids = _category_ids_by_name(s, pid)
    num_kp = dict(
        s.execute(select(CategoryRow.name, CategoryRow.keypoint_names).where(CategoryRow.project_id == pid)).all()
    )
    compared = (
        AnnotationRow.category_id, AnnotationRow.segmentation, AnnotationRow.keypoints, AnnotationRow.bbox,
        AnnotationRow.area, AnnotationRow.iscrowd, AnnotationRow.source, AnnotationRow.score,
        AnnotationRow.attributes,
    )
    existing: dict[int, int] = {}
    stored: dict[int, tuple[Any, ...]] = {}
    for row in s.execute(
        select(AnnotationRow.id, AnnotationRow.version, *compared).where(AnnotationRow.image_id == image_id)
    ):
        existing[row[0]] = row[1]
        stored[row[0]] = tuple(row[2:])
    keep: set[int] = set()
    ids: list[int | None] = []
    new_rows: list[dict[str, Any]] = []
    new_at: list[int] = []
    for inst in instances:
        if inst.category not in cat_ids:
            raise ValidationError(f"unknown class {inst.category!r}; classes: {sorted(cat_ids)}")
        if inst.keypoints:
            k = len(num_kp.get(inst.category) or [])
            got = len(inst.keypoints) // 3
            if not k:
                raise ValidationError(
                    f"class {inst.category!r} has no keypoints, but an instance brings {got}; "
                    "define its keypoints first"
                )
            if got != k:
                raise ValidationError(f"class {inst.category!r} has {k} keypoints, an instance brings {got}")
        vals = instance_to_values(inst, cat_ids[inst.category], image_id)
        if inst.id is not None and inst.id in existing and inst.id not in keep:
            keep.add(inst.id)
            ids.append(inst.id)
            as_stored = tuple(_json_norm(vals[c.key]) for c in compared)
            if as_stored == stored[inst.id]:
                continue  # unchanged: keeps its version and timestamp
            s.execute(
                update(AnnotationRow)
                .where(AnnotationRow.id == inst.id)
                .values(**vals, version=existing[inst.id] + 1, updated_at=utcnow())
                .execution_options(synchronize_session=False)
            )
        else:
            new_at.append(len(ids))
            ids.append(None)
            new_rows.append(vals)
    gone = set(existing) - keep
    if gone:
        s.execute(delete(AnnotationRow).where(AnnotationRow.id.in_(gone)))
    if new_rows:
        created = s.scalars(
            insert(AnnotationRow).returning(AnnotationRow.id, sort_by_parameter_order=True), new_rows
        ).all()
        for at, new_id in zip(new_at, created, strict=True):
            ids[at] = new_id
    return expected_version + 1, [i for i in ids if i is not None]


def _json_norm(value: Any) -> Any:
    """A value as it reads back from a JSON column (tuples become lists), to compare with a row."""
    if isinstance(value, tuple | list | dict):
        return orjson.loads(orjson.dumps(value))
    return value


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
            r.get("version", 1), stamp, stamp,
        )
        for r in rows
    ]
    s.connection().exec_driver_sql(
        "INSERT INTO annotations (image_id, category_id, segmentation, keypoints, bbox, area, iscrowd, "
        "source, score, attributes, version, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        params,
    )


def annotation_rows_raw(s: Session, pid: int) -> list[tuple[Any, ...]]:
    """Every annotation of a project as plain tuples with its JSON columns as unparsed text.

    ``(id, image_id, category_id, segmentation, bbox, area, iscrowd, keypoints, score, attributes)``,
    ordered by image then id. Exports parse only what they need, which keeps a 200k-annotation COCO
    export within a small factor of ``json.dumps`` of the result.
    """
    a = AnnotationRow
    q = (
        select(
            a.id, a.image_id, a.category_id, cast(a.segmentation, Text), cast(a.bbox, Text), a.area,
            a.iscrowd, cast(a.keypoints, Text), a.score, cast(a.attributes, Text),
        )
        .join(ImageRow, ImageRow.id == a.image_id)
        .where(ImageRow.project_id == pid)
        .order_by(a.image_id, a.id)
    )
    return [tuple(r) for r in s.execute(q)]


# -------------------------------------------------------------------------------------------- datasets


def load_dataset(s: Session, pid: int, *, splits: Iterable[str | None] | None = None) -> Dataset:
    """The whole project (or some splits) as a Dataset, in two queries: images, then annotations."""
    cats = list_categories(s, pid)
    iq = select(ImageRow).where(ImageRow.project_id == pid).order_by(ImageRow.id)
    split_list = list(splits) if splits is not None else None
    if split_list is not None:
        named = [x for x in split_list if x is not None]
        cond = ImageRow.split.in_(named)
        if None in split_list:
            cond = cond | ImageRow.split.is_(None)
        iq = iq.where(cond)
    images = [_image_from_row(r) for r in s.scalars(iq)]
    by_image: dict[int, list[Instance]] = defaultdict(list)
    aq = (
        select(*_ANN_COLUMNS)
        .join(CategoryRow, CategoryRow.id == AnnotationRow.category_id)
        .join(ImageRow, ImageRow.id == AnnotationRow.image_id)
        .where(ImageRow.project_id == pid)
        .order_by(AnnotationRow.image_id, AnnotationRow.id)
    )
    wanted = {im.id for im in images} if split_list is not None else None
    for r in s.execute(aq):
        if wanted is None or r[0] in wanted:
            by_image[r[0]].append(instance_from_values(*r[1:]))
    items = [AnnotatedImage(image=im, instances=tuple(by_image.get(im.id, ()))) for im in images]  # type: ignore[arg-type]
    return Dataset(categories=cats, items=items)


def class_presence(s: Session, pid: int) -> dict[int, set[str]]:
    """For each image id, the names of the classes annotated on it (for stratified splits)."""
    out: dict[int, set[str]] = {
        i: set() for i in s.scalars(select(ImageRow.id).where(ImageRow.project_id == pid))
    }
    rows = s.execute(
        select(AnnotationRow.image_id, CategoryRow.name)
        .join(CategoryRow, CategoryRow.id == AnnotationRow.category_id)
        .where(CategoryRow.project_id == pid)
        .distinct()
    )
    for image_id, name in rows:
        out.setdefault(image_id, set()).add(name)
    return out


def is_integrity_error(exc: BaseException) -> bool:
    return isinstance(exc, IntegrityError)
