"""A project (or some of its splits) read whole, as training, export and splitting need it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from workbench.domain import AnnotatedImage, Dataset, Instance
from workbench.store.annotations import INSTANCE_COLUMNS, instance_from_values
from workbench.store.categories import list_categories
from workbench.store.images import image_from_row
from workbench.store.models import AnnotationRow, CategoryRow, ImageRow


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
    images = [image_from_row(r) for r in s.scalars(iq)]
    by_image: dict[int, list[Instance]] = defaultdict(list)
    aq = (
        select(*INSTANCE_COLUMNS)
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
