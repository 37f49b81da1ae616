"""Projects in the store: create, look up by slug, summarise, delete, and their settings."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from workbench.domain import NotFoundError, ProjectInfo, ValidationError, check_name_length
from workbench.store.models import AnnotationRow, CategoryRow, ImageRow, Project

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
    check_name_length("project name", name)
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
