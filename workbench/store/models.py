"""SQLAlchemy 2.0 typed models. The ORM stays inside store/: other packages get domain records."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


JsonColumn = JSON(none_as_null=True)
"""JSON stored as text; Python None is SQL NULL (not the JSON text 'null'), so IS NULL queries work."""


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JsonColumn, list[Any]: JsonColumn}


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(120), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    settings: Mapped[dict[str, Any]] = mapped_column(JsonColumn, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    categories: Mapped[list[CategoryRow]] = relationship(
        back_populates="project", cascade="all, delete-orphan", passive_deletes=True
    )
    images: Mapped[list[ImageRow]] = relationship(
        back_populates="project", cascade="all, delete-orphan", passive_deletes=True
    )


class CategoryRow(Base):
    __tablename__ = "categories"
    __table_args__ = (UniqueConstraint("project_id", "name", name="uq_category_project_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    color: Mapped[str] = mapped_column(String(16), default="#1f77b4")
    supercategory: Mapped[str] = mapped_column(String(200), default="")
    position: Mapped[int] = mapped_column(Integer, default=0)
    keypoint_names: Mapped[list[Any] | None] = mapped_column(JsonColumn, nullable=True)
    skeleton: Mapped[list[Any] | None] = mapped_column(JsonColumn, nullable=True)
    flip_pairs: Mapped[list[Any] | None] = mapped_column(JsonColumn, nullable=True)
    attributes: Mapped[list[Any] | None] = mapped_column(JsonColumn, nullable=True)
    """Attribute definitions (migration 0003): ``[{name, kind, options}]``; null = none of its own."""
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    project: Mapped[Project] = relationship(back_populates="categories")


class ImageRow(Base):
    __tablename__ = "images"
    __table_args__ = (
        UniqueConstraint("project_id", "sha256", name="uq_image_project_sha256"),
        Index("ix_images_project_split", "project_id", "split"),
        Index("ix_images_project_status", "project_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    sha256: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(500))
    original_name: Mapped[str] = mapped_column(String(500))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    split: Mapped[str | None] = mapped_column(String(16), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="unlabeled")
    version: Mapped[int] = mapped_column(Integer, default=1)
    """Bumped by every save of the image's annotations: the optimistic-concurrency token."""
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    project: Mapped[Project] = relationship(back_populates="images")


class AnnotationRow(Base):
    __tablename__ = "annotations"
    __table_args__ = (
        Index("ix_annotations_image", "image_id"),
        Index("ix_annotations_category", "category_id"),
        # ids are never reused (migration 0003): exports promise stable ids, so a deleted row's id
        # must not come back for a new annotation (SQLite's plain rowid takes max + 1)
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id", ondelete="RESTRICT"))
    segmentation: Mapped[Any] = mapped_column(JsonColumn, nullable=True)
    """COCO layout: a list of flat polygons, or an RLE dict {size: [h, w], counts: str}; null = box only."""
    keypoints: Mapped[list[Any] | None] = mapped_column(JsonColumn, nullable=True)
    bbox: Mapped[list[Any] | None] = mapped_column(JsonColumn, nullable=True)
    area: Mapped[float | None] = mapped_column(Float, nullable=True)
    iscrowd: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str] = mapped_column(String(16), default="manual")
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    attributes: Mapped[dict[str, Any] | None] = mapped_column(JsonColumn, nullable=True)
    z_order: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Drawing order on its image (migration 0003); higher on top."""
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class RunRow(Base):
    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_project", "project_id"), Index("ix_runs_status", "status"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32), default="train")
    status: Mapped[str] = mapped_column(String(16), default="queued")
    """queued / running / succeeded / failed / cancelled"""
    config: Mapped[dict[str, Any]] = mapped_column(JsonColumn, default=dict)
    device: Mapped[str | None] = mapped_column(String(32), nullable=True)
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    progress: Mapped[dict[str, Any] | None] = mapped_column(JsonColumn, nullable=True)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JsonColumn, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    run_dir: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class PredictionRow(Base):
    """A model's instance on an image (migration 0002); it becomes an annotation only when accepted."""

    __tablename__ = "predictions"
    __table_args__ = (
        Index("ix_predictions_run_image", "run_id", "image_id"),
        Index("ix_predictions_image", "image_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id", ondelete="CASCADE"))
    segmentation: Mapped[Any] = mapped_column(JsonColumn, nullable=True)
    """An RLE dict {size: [h, w], counts: str} (what models give) or a list of flat polygons."""
    bbox: Mapped[list[Any] | None] = mapped_column(JsonColumn, nullable=True)
    keypoints: Mapped[list[Any] | None] = mapped_column(JsonColumn, nullable=True)
    area: Mapped[float | None] = mapped_column(Float, nullable=True)
    score: Mapped[float] = mapped_column(Float, default=0.0)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    """pending / accepted / rejected"""
    annotation_id: Mapped[int | None] = mapped_column(
        ForeignKey("annotations.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


# Team mode (issue 15, migration 0004): accounts, membership, jobs and review, history, audit.
# All in tables of their own, so a solo workspace's rows and queries are as they were.


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200), default="")
    """argon2id (argon2-cffi's encoded form); empty = no password login (single sign-on only)."""
    role: Mapped[str] = mapped_column(String(16), default="viewer")
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class MemberRow(Base):
    __tablename__ = "project_members"

    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    added_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ImageWorkRow(Base):
    """An image handed out as a job: its annotator and its review stage (one row per assigned image)."""

    __tablename__ = "image_work"
    __table_args__ = (
        Index("ix_image_work_assignee", "project_id", "assignee_id"),
        Index("ix_image_work_review", "project_id", "review"),
    )

    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    review: Mapped[str | None] = mapped_column(String(16), nullable=True)
    """None (being annotated) / in_review / accepted / rejected"""
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    assigned_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ReviewCommentRow(Base):
    __tablename__ = "review_comments"
    __table_args__ = (Index("ix_review_comments_image", "image_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    annotation_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """The shape commented on (None: the whole image); no foreign key, so a comment outlives its shape."""
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    verdict: Mapped[str] = mapped_column(String(16), default="comment")
    text: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class AnnotationVersionRow(Base):
    """A saved change of one annotation (who, when, what): an image's history and its restore."""

    __tablename__ = "annotation_versions"
    __table_args__ = (
        Index("ix_annotation_versions_image", "image_id", "image_version"),
        Index("ix_annotation_versions_user", "user_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    image_version: Mapped[int] = mapped_column(Integer)
    annotation_id: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(16))
    """saved / deleted / baseline (the rows as found when history began for the image)"""
    data: Mapped[dict[str, Any] | None] = mapped_column(JsonColumn, nullable=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    user_name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class AuditRow(Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_project", "project_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="SET NULL"), nullable=True)
    project_slug: Mapped[str] = mapped_column(String(120), default="")
    user_name: Mapped[str] = mapped_column(String(200), default="")
    action: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
