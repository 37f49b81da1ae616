"""Team mode's rows (issue 15): accounts, project membership, image jobs and review, annotation
versions and the audit log. Counts and pages are SQL, so a 100k-image project is read a page at a time."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.orm import Session

from workbench.domain import Account, Instance, NotFoundError, ValidationError, check_name_length
from workbench.store.annotations import instance_from_values, instance_to_values
from workbench.store.models import (
    AnnotationVersionRow,
    AuditRow,
    ImageRow,
    ImageWorkRow,
    MemberRow,
    Project,
    ReviewCommentRow,
    UserRow,
    utcnow,
)

# ---------------------------------------------------------------- accounts


def _account(row: UserRow) -> Account:
    return Account(
        id=row.id, name=row.name, role=row.role, disabled=bool(row.disabled),
        failed_logins=int(row.failed_logins or 0), locked_until=row.locked_until,
        created_at=row.created_at, last_login_at=row.last_login_at,
    )  # fmt: skip


def has_accounts(s: Session) -> bool:
    return s.scalar(select(UserRow.id).limit(1)) is not None


def _user_row(s: Session, name: str) -> UserRow:
    row = s.scalar(select(UserRow).where(UserRow.name == name))
    if row is None:
        have = s.scalars(select(UserRow.name).order_by(UserRow.name)).all()
        raise NotFoundError(f"no user {name!r}; users: {', '.join(have) or '(none)'}")
    return row


def get_account(s: Session, name: str) -> Account:
    return _account(_user_row(s, name))


def find_account(s: Session, name: str) -> Account | None:
    row = s.scalar(select(UserRow).where(UserRow.name == name))
    return None if row is None else _account(row)


def account_by_id(s: Session, user_id: int) -> Account | None:
    row = s.get(UserRow, user_id)
    return None if row is None else _account(row)


def list_accounts(s: Session) -> list[Account]:
    return [_account(r) for r in s.scalars(select(UserRow).order_by(UserRow.name))]


def count_admins(s: Session, *, enabled_only: bool = True) -> int:
    q = select(func.count()).select_from(UserRow).where(UserRow.role == "admin")
    if enabled_only:
        q = q.where(UserRow.disabled.is_(False))
    return int(s.scalar(q) or 0)


def add_account(s: Session, name: str, password_hash: str, role: str) -> Account:
    name = name.strip()
    if not name:
        raise ValidationError("a user needs a name")
    check_name_length("user name", name)
    if find_account(s, name) is not None:
        raise ValidationError(f"a user {name!r} already exists")
    row = UserRow(name=name, password_hash=password_hash, role=role, disabled=False, failed_logins=0)
    s.add(row)
    s.flush()
    return _account(row)


def password_hash(s: Session, name: str) -> str:
    return _user_row(s, name).password_hash


def update_account(s: Session, name: str, **values: Any) -> Account:
    row = _user_row(s, name)
    for key, value in values.items():
        setattr(row, key, value)
    s.flush()
    return _account(row)


def delete_account(s: Session, name: str) -> None:
    s.execute(delete(UserRow).where(UserRow.id == _user_row(s, name).id))


# ---------------------------------------------------------------- membership


def is_member(s: Session, project_id: int, user_id: int) -> bool:
    q = select(MemberRow.user_id).where(MemberRow.project_id == project_id, MemberRow.user_id == user_id)
    return s.scalar(q) is not None


def member_project_ids(s: Session, user_id: int) -> set[int]:
    return set(s.scalars(select(MemberRow.project_id).where(MemberRow.user_id == user_id)))


def add_member(s: Session, project_id: int, user_id: int) -> bool:
    """True when added, False when already a member."""
    if is_member(s, project_id, user_id):
        return False
    s.add(MemberRow(project_id=project_id, user_id=user_id))
    s.flush()
    return True


def remove_member(s: Session, project_id: int, user_id: int) -> bool:
    res = s.execute(delete(MemberRow).where(MemberRow.project_id == project_id, MemberRow.user_id == user_id))
    return bool(res.rowcount)


def members(s: Session, project_id: int) -> list[Account]:
    q = select(UserRow).join(MemberRow, MemberRow.user_id == UserRow.id).where(MemberRow.project_id == project_id)
    return [_account(r) for r in s.scalars(q.order_by(UserRow.name))]


# ---------------------------------------------------------------- jobs and review


def assignee_of(s: Session, image_id: int) -> int | None:
    return s.scalar(select(ImageWorkRow.assignee_id).where(ImageWorkRow.image_id == image_id))


def project_id_of(s: Session, slug: str) -> int | None:
    """The project's id alone (a permission check reads no project row)."""
    return s.scalar(select(Project.id).where(Project.slug == slug))


def project_of_image(s: Session, image_id: int) -> int | None:
    return s.scalar(select(ImageRow.project_id).where(ImageRow.id == image_id))


def assign(s: Session, project_id: int, image_ids: Sequence[int], user_id: int | None) -> int:
    """Hand images to a user (None: take them back); their review stage starts over. The count set."""
    ids = list(dict.fromkeys(int(i) for i in image_ids))
    if not ids:
        return 0
    have = set(s.scalars(select(ImageWorkRow.image_id).where(ImageWorkRow.image_id.in_(ids))))
    now = utcnow()
    if have:
        s.execute(
            update(ImageWorkRow).where(ImageWorkRow.image_id.in_(have))
            .values(assignee_id=user_id, review=None, reviewer_id=None, assigned_at=now, updated_at=now)
        )  # fmt: skip
    s.add_all(
        ImageWorkRow(image_id=i, project_id=project_id, assignee_id=user_id, assigned_at=now, updated_at=now)
        for i in ids if i not in have
    )  # fmt: skip
    s.flush()
    return len(ids)


def work_of(s: Session, image_ids: Sequence[int]) -> dict[int, tuple[int | None, str | None]]:
    """image id -> (assignee id, review stage) for the images that are jobs."""
    q = select(ImageWorkRow.image_id, ImageWorkRow.assignee_id, ImageWorkRow.review)
    return {i: (a, r) for i, a, r in s.execute(q.where(ImageWorkRow.image_id.in_(list(image_ids))))}


def assigned_image_ids(s: Session, project_id: int, user_id: int, *, review: str | None = "any") -> list[int]:
    q = select(ImageWorkRow.image_id).where(
        ImageWorkRow.project_id == project_id, ImageWorkRow.assignee_id == user_id
    )
    if review != "any":
        q = q.where(ImageWorkRow.review.is_(None) if review is None else ImageWorkRow.review == review)
    return list(s.scalars(q.order_by(ImageWorkRow.image_id)))


def review_queue(s: Session, project_id: int, review: str, *, limit: int = 200, offset: int = 0) -> list[int]:
    q = select(ImageWorkRow.image_id).where(ImageWorkRow.project_id == project_id, ImageWorkRow.review == review)
    return list(s.scalars(q.order_by(ImageWorkRow.updated_at, ImageWorkRow.image_id).limit(limit).offset(offset)))


def set_review(s: Session, image_id: int, review: str | None, reviewer_id: int | None) -> None:
    res = s.execute(
        update(ImageWorkRow).where(ImageWorkRow.image_id == image_id)
        .values(review=review, reviewer_id=reviewer_id, updated_at=utcnow())
    )  # fmt: skip
    if not res.rowcount:
        raise ValidationError(f"image {image_id} is not a job: assign it to an annotator first")


def add_comment(
    s: Session, image_id: int, user_id: int | None, text: str, *, verdict: str = "comment",
    annotation_id: int | None = None,
) -> int:  # fmt: skip
    row = ReviewCommentRow(
        image_id=image_id, user_id=user_id, text=text, verdict=verdict, annotation_id=annotation_id
    )
    s.add(row)
    s.flush()
    return row.id


def comments(s: Session, image_id: int) -> list[dict[str, Any]]:
    q = (
        select(ReviewCommentRow, UserRow.name)
        .outerjoin(UserRow, UserRow.id == ReviewCommentRow.user_id)
        .where(ReviewCommentRow.image_id == image_id)
        .order_by(ReviewCommentRow.id)
    )
    return [
        {"id": c.id, "user": name or "", "verdict": c.verdict, "text": c.text,
         "annotation_id": c.annotation_id, "at": c.created_at}
        for c, name in s.execute(q)
    ]  # fmt: skip


def work_counts(s: Session, project_id: int) -> dict[str, dict[str, int]]:
    """user name -> {assigned, open, in_review, accepted, rejected}: by SQL, whatever the project's size."""
    review = ImageWorkRow.review
    q = (
        select(
            UserRow.name,
            func.count(),
            func.sum(case((review.is_(None), 1), else_=0)),
            func.sum(case((review == "in_review", 1), else_=0)),
            func.sum(case((review == "accepted", 1), else_=0)),
            func.sum(case((review == "rejected", 1), else_=0)),
        )
        .join(UserRow, UserRow.id == ImageWorkRow.assignee_id)
        .where(ImageWorkRow.project_id == project_id)
        .group_by(UserRow.name)
    )
    keys = ("assigned", "open", "in_review", "accepted", "rejected")
    return {name: dict(zip(keys, (int(v or 0) for v in rest), strict=True)) for name, *rest in s.execute(q)}


# ---------------------------------------------------------------- annotation versions


def _version_data(inst: Instance) -> dict[str, Any]:
    values = instance_to_values(inst, 0, 0)
    for key in ("image_id", "category_id"):
        values.pop(key)
    values["category"] = inst.category
    values["version"] = inst.version
    return values


def version_instance(data: dict[str, Any], ann_id: int) -> Instance:
    return instance_from_values(
        data["category"], data.get("segmentation"), data.get("keypoints"), data.get("bbox"), data.get("area"),
        bool(data.get("iscrowd")), data.get("source") or "manual", data.get("score"), ann_id,
        int(data.get("version") or 1), data.get("attributes"), data.get("z_order") or 0,
    )  # fmt: skip


def has_history(s: Session, image_id: int) -> bool:
    return s.scalar(select(AnnotationVersionRow.id).where(AnnotationVersionRow.image_id == image_id).limit(1)) is not None


def record_versions(
    s: Session, image_id: int, image_version: int, user: Account | None,
    saved: Sequence[Instance], deleted: Sequence[int], *, action: str = "saved",
) -> None:  # fmt: skip
    """Who saved which rows of an image, when, and what they held (only the rows a save wrote)."""
    now = utcnow()
    uid, uname = (user.id, user.name) if user is not None else (None, "")
    rows = [
        AnnotationVersionRow(image_id=image_id, image_version=image_version, annotation_id=int(i.id or 0),
                             action=action, data=_version_data(i), user_id=uid, user_name=uname, created_at=now)
        for i in saved
    ]  # fmt: skip
    rows += [
        AnnotationVersionRow(image_id=image_id, image_version=image_version, annotation_id=int(a),
                             action="deleted", data=None, user_id=uid, user_name=uname, created_at=now)
        for a in deleted
    ]  # fmt: skip
    s.add_all(rows)


def image_history(s: Session, image_id: int) -> list[dict[str, Any]]:
    """One entry per saved image version: who, when, how many rows saved and deleted."""
    v = AnnotationVersionRow
    q = (
        select(
            v.image_version, func.min(v.user_name), func.max(v.created_at),
            func.sum(case((v.action == "deleted", 0), else_=1)), func.sum(case((v.action == "deleted", 1), else_=0)),
            func.min(v.action),
        )
        .where(v.image_id == image_id)
        .group_by(v.image_version)
        .order_by(v.image_version.desc())
    )  # fmt: skip
    return [
        {"version": ver, "user": user, "at": at, "saved": int(n or 0), "deleted": int(d or 0),
         "baseline": first == "baseline"}
        for ver, user, at, n, d, first in s.execute(q)
    ]  # fmt: skip


def instances_at(s: Session, image_id: int, image_version: int) -> list[Instance]:
    """The image's annotations as they were after its save ``image_version``, from the versions kept."""
    v = AnnotationVersionRow
    rows = s.execute(
        select(v.annotation_id, v.action, v.data)
        .where(v.image_id == image_id, v.image_version <= image_version)
        .order_by(v.image_version, v.id)
    ).all()  # fmt: skip
    if not rows:
        raise NotFoundError(f"image {image_id} has no saved version {image_version} in its history")
    state: dict[int, dict[str, Any] | None] = {}
    for ann_id, action, data in rows:
        state[ann_id] = None if action == "deleted" else data
    return [version_instance(d, a) for a, d in sorted(state.items()) if d is not None]


def user_activity(s: Session, project_id: int, since: datetime) -> list[dict[str, Any]]:
    """Per user since ``since``: saves, objects saved, images touched, first and last save."""
    v = AnnotationVersionRow
    q = (
        select(
            v.user_name, func.count(func.distinct(v.image_id)),
            func.sum(case((v.action == "saved", 1), else_=0)), func.count(func.distinct(v.created_at)),
            func.min(v.created_at), func.max(v.created_at),
        )
        .join(ImageRow, ImageRow.id == v.image_id)
        .where(ImageRow.project_id == project_id, v.created_at >= since, v.action != "baseline", v.user_name != "")
        .group_by(v.user_name)
    )  # fmt: skip
    return [
        {"user": u, "images": int(i), "objects": int(o or 0), "saves": int(n), "first": a, "last": b}
        for u, i, o, n, a, b in s.execute(q)
    ]


# ---------------------------------------------------------------- audit log


def audit(s: Session, user_name: str, action: str, detail: str = "", *, project_slug: str | None = None) -> None:
    pid = None
    if project_slug:
        pid = s.scalar(select(Project.id).where(Project.slug == project_slug))
    s.add(AuditRow(project_id=pid, project_slug=project_slug or "", user_name=user_name, action=action, detail=detail))


def audit_entries(
    s: Session, *, project_slug: str | None = None, limit: int = 100, offset: int = 0
) -> list[dict[str, Any]]:
    q = select(AuditRow)
    if project_slug is not None:
        q = q.where(AuditRow.project_slug == project_slug)
    q = q.order_by(AuditRow.id.desc()).limit(limit).offset(offset)
    return [
        {"at": r.created_at, "user": r.user_name, "project": r.project_slug, "action": r.action, "detail": r.detail}
        for r in s.scalars(q)
    ]


def before_save(s: Session, image_id: int, version: int) -> None:
    """History starts with the rows as they are (an image saved before team mode, or imported)."""
    if not has_history(s, image_id):
        from workbench.store.annotations import load_instances

        record_versions(s, image_id, version, None, load_instances(s, image_id), (), action="baseline")


def after_save(
    s: Session, user: Account, image_id: int, version: int, written: Sequence[Instance], deleted: Sequence[int],
    status: str | None,
) -> None:  # fmt: skip
    """Attribute a save (who, when, the rows written) and move a job marked done into review."""
    record_versions(s, image_id, version, user, written, deleted)
    if status == "done":
        submit_for_review(s, image_id)


def submit_for_review(s: Session, image_id: int) -> None:
    """A job whose annotator marks it done goes to review (again, after a rejection)."""
    s.execute(
        update(ImageWorkRow)
        .where(ImageWorkRow.image_id == image_id, (ImageWorkRow.review.is_(None)) | (ImageWorkRow.review == "rejected"))
        .values(review="in_review", updated_at=utcnow())
    )  # fmt: skip


def pick_image_ids(
    s: Session, project_id: int, *, split: str | None = None, status: str | None = None,
    only_unassigned: bool = True, count: int | None = None, image_ids: Sequence[int] | None = None,
) -> list[int]:  # fmt: skip
    """Image ids of a project by split, status, and whether they are a job yet, in id order, by SQL."""
    q = select(ImageRow.id).where(ImageRow.project_id == project_id)
    if image_ids is not None:
        q = q.where(ImageRow.id.in_([int(i) for i in image_ids]))
    if split is not None:
        q = q.where(ImageRow.split.is_(None) if split == "unassigned" else ImageRow.split == split)
    if status is not None:
        q = q.where(ImageRow.status == status)
    if only_unassigned:
        taken = select(ImageWorkRow.image_id).where(
            ImageWorkRow.image_id == ImageRow.id, ImageWorkRow.assignee_id.is_not(None)
        )
        q = q.where(~taken.exists())
    q = q.order_by(ImageRow.id)
    if count is not None:
        q = q.limit(int(count))
    return list(s.scalars(q))


def rejections(s: Session, project_id: int) -> dict[str, tuple[int, int]]:
    """annotator name -> (verdicts that rejected their jobs, verdicts in all), from the review comments."""
    c = ReviewCommentRow
    q = (
        select(UserRow.name, func.sum(case((c.verdict == "rejected", 1), else_=0)), func.count())
        .select_from(c)
        .join(ImageWorkRow, ImageWorkRow.image_id == c.image_id)
        .join(UserRow, UserRow.id == ImageWorkRow.assignee_id)
        .where(ImageWorkRow.project_id == project_id, c.verdict.in_(("accepted", "rejected")))
        .group_by(UserRow.name)
    )
    return {name: (int(r or 0), int(n)) for name, r, n in s.execute(q)}
