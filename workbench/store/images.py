"""Images of a project: add, look up, filter, delete, and set their split and status."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from workbench.domain import ImageRecord, NotFoundError, ValidationError, check_name_length
from workbench.store.models import AnnotationRow, ImageRow


def image_from_row(row: Any) -> ImageRecord:
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
    check_name_length("image file name", rec.file_name)
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


def image_row(s: Session, pid: int, image_id: int) -> ImageRow:
    row = s.get(ImageRow, image_id)
    if row is None or row.project_id != pid:
        raise NotFoundError(f"no image with id {image_id} in this project")
    return row


def get_image(s: Session, pid: int, image_id: int) -> tuple[ImageRecord, int]:
    """The image and its current version (the token a save must present)."""
    row = image_row(s, pid, image_id)
    return image_from_row(row), row.version


def list_images(
    s: Session,
    pid: int,
    *,
    split: str | None = None,
    status: str | None = None,
    category_id: int | None = None,
    unannotated: bool | None = None,
) -> list[ImageRecord]:
    # the columns, not ORM objects: a 10k-image export or import lists them all, and building an
    # ORM instance per row cost more than the rest of the listing
    i = ImageRow
    q = select(i.original_name, i.width, i.height, i.id, i.sha256, i.path, i.split, i.status).where(i.project_id == pid)
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
    return [ImageRecord(*r) for r in s.execute(q.order_by(ImageRow.id))]  # the columns in the record's order


def image_paths(s: Session, pid: int) -> set[str]:
    return set(s.scalars(select(ImageRow.path).where(ImageRow.project_id == pid)))


def delete_image(s: Session, pid: int, image_id: int) -> ImageRecord:
    row = image_row(s, pid, image_id)
    rec = image_from_row(row)
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
    image_row(s, pid, image_id).status = status
