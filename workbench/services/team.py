"""Team work (issue 15): images handed out as jobs, the review stage, an image's history and its
restore, per-user activity and the audit log.

A job's review stage: the annotator marks it done -> in review -> a reviewer accepts it, or rejects
it with a comment (on the image or on one shape) and it returns to its annotator (status in progress)
with the comments; done again puts it back in review.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from workbench.domain import Instance, NotFoundError, ValidationError
from workbench.services.permissions import requires
from workbench.services.workspace import Workspace
from workbench.store import images as image_repo
from workbench.store import projects as project_repo
from workbench.store import team as team_repo
from workbench.store.models import utcnow

VERDICTS = ("accept", "reject")


@requires("assign")
def assign_images(
    ws: Workspace,
    slug: str,
    user: str | None,
    *,
    image_ids: Sequence[int] | None = None,
    split: str | None = None,
    status: str | None = None,
    count: int | None = None,
    only_unassigned: bool = True,
) -> int:
    """Hand images to ``user`` (None takes them back) by ids, split, status and count; the count handed.

    The user is made a member of the project. Images already someone's job are skipped unless
    ``only_unassigned`` is False.
    """
    if count is not None and count < 1:
        raise ValidationError(f"count must be at least 1, got {count}")
    with ws.store.transaction() as s:
        pid = project_repo.project_id(s, slug)
        uid = None
        if user is not None:
            account = team_repo.get_account(s, user)
            if account.role not in ("annotator", "admin"):
                raise ValidationError(f"user {user!r} is a {account.role}: only annotators and admins take jobs")
            uid = account.id
            team_repo.add_member(s, pid, uid)
        ids = team_repo.pick_image_ids(
            s, pid, split=split, status=status, count=count, image_ids=image_ids,
            only_unassigned=only_unassigned and user is not None,
        )  # fmt: skip
        return team_repo.assign(s, pid, ids, uid)


def assign_ids(ws: Workspace, slug: str, user: str, ids: Sequence[int]) -> int:
    """Hand these images (e.g. "next N by uncertainty" from assist.rank_next) to ``user``."""
    return assign_images(ws, slug, user, image_ids=list(ids), only_unassigned=False)


@requires("project.read")
def my_image_ids(ws: Workspace, slug: str) -> list[int]:
    """The acting user's jobs in this project (none in solo mode): the Annotate picker puts them first."""
    if ws.actor is None:
        return []
    with ws.store.transaction() as s:
        return team_repo.assigned_image_ids(s, project_repo.project_id(s, slug), ws.actor.id)


@dataclass(frozen=True)
class Job:
    image_id: int
    assignee: str | None
    review: str | None


@requires("project.read")
def jobs(ws: Workspace, slug: str, image_ids: Sequence[int]) -> dict[int, Job]:
    """Who has each of these images and at which review stage (the images that are jobs)."""
    with ws.store.transaction() as s:
        project_repo.project_id(s, slug)
        work = team_repo.work_of(s, image_ids)
        names = {a.id: a.name for a in team_repo.list_accounts(s)}
    return {i: Job(i, names.get(a) if a else None, r) for i, (a, r) in work.items()}


@requires("project.read")
def review_queue(ws: Workspace, slug: str, stage: str = "in_review", *, limit: int = 200) -> list[int]:
    with ws.store.transaction() as s:
        return team_repo.review_queue(s, project_repo.project_id(s, slug), stage, limit=limit)


@requires("review")
def review_image(
    ws: Workspace, slug: str, image_id: int, verdict: str, comment: str = "", *, annotation_id: int | None = None
) -> str:
    """Accept or reject a job in review; a rejection needs a comment and sends it back. The new stage."""
    if verdict not in VERDICTS:
        raise ValidationError(f"verdict must be one of {VERDICTS}, got {verdict!r}")
    if verdict == "reject" and not comment.strip():
        raise ValidationError("a rejection needs a comment saying what to fix")
    with ws.store.transaction() as s:
        pid = project_repo.project_id(s, slug)
        image_repo.get_image(s, pid, image_id)
        work = team_repo.work_of(s, [image_id]).get(image_id)
        if work is None:
            raise ValidationError(f"image {image_id} is not a job: assign it to an annotator first")
        if work[1] != "in_review":
            raise ValidationError(f"image {image_id} is not in review (its stage: {work[1] or 'being annotated'})")
        uid = ws.actor.id if ws.actor is not None else None
        stage = "accepted" if verdict == "accept" else "rejected"
        team_repo.set_review(s, image_id, stage, uid)
        team_repo.add_comment(s, image_id, uid, comment.strip(), verdict=stage, annotation_id=annotation_id)
        if stage == "rejected":
            image_repo.set_status(s, pid, image_id, "in_progress")
    return stage


@requires("review")
def comment(ws: Workspace, slug: str, image_id: int, text: str, *, annotation_id: int | None = None) -> int:
    if not text.strip():
        raise ValidationError("a comment needs some text")
    with ws.store.transaction() as s:
        image_repo.get_image(s, project_repo.project_id(s, slug), image_id)
        uid = ws.actor.id if ws.actor is not None else None
        return team_repo.add_comment(s, image_id, uid, text.strip(), annotation_id=annotation_id)


@requires("project.read")
def comments(ws: Workspace, slug: str, image_id: int) -> list[dict[str, Any]]:
    """An image's review comments, oldest first (what a rejected image's annotator reads)."""
    with ws.store.transaction() as s:
        image_repo.get_image(s, project_repo.project_id(s, slug), image_id)
        return team_repo.comments(s, image_id)


@requires("project.read")
def history(ws: Workspace, slug: str, image_id: int) -> list[dict[str, Any]]:
    """An image's saved versions, newest first: who, when, rows saved and deleted (team mode saves)."""
    with ws.store.transaction() as s:
        image_repo.get_image(s, project_repo.project_id(s, slug), image_id)
        return team_repo.image_history(s, image_id)


@requires("project.read")
def version_instances(ws: Workspace, slug: str, image_id: int, version: int) -> list[Instance]:
    with ws.store.transaction() as s:
        image_repo.get_image(s, project_repo.project_id(s, slug), image_id)
        return team_repo.instances_at(s, image_id, version)


@requires("annotate", image="image_id")
def restore(ws: Workspace, slug: str, image_id: int, version: int) -> int:
    """Make the image's annotations those of its saved ``version`` again, as a new save (the history
    keeps every version in between); the image's new version."""
    from workbench.services.annotate import save_image

    with ws.store.transaction() as s:
        _, current = image_repo.get_image(s, project_repo.project_id(s, slug), image_id)
        try:
            then = team_repo.instances_at(s, image_id, version)
        except NotFoundError:
            raise NotFoundError(f"image {image_id} has no version {version} in its history") from None
    return save_image(ws, slug, image_id, then, expected_version=current).version


@requires("project.read")
def activity(ws: Workspace, slug: str, *, hours: float = 24.0, now: datetime | None = None) -> list[dict[str, Any]]:
    """Per user over the last ``hours``: images and objects saved, per hour, time per image, and the
    share of their reviewed jobs that were rejected."""
    now = now or utcnow()
    with ws.store.transaction() as s:
        pid = project_repo.project_id(s, slug)
        rows = team_repo.user_activity(s, pid, now - timedelta(hours=hours))
        work = team_repo.work_counts(s, pid)
        rejected = team_repo.rejections(s, pid)
    out = []
    for row in rows:
        span_h = max((row["last"] - row["first"]).total_seconds() / 3600, 1 / 60)
        w = work.get(row["user"], {})
        reviewed = rejected.get(row["user"], (0, 0))
        out.append({
            **row,
            "images_per_hour": row["images"] / span_h,
            "objects_per_hour": row["objects"] / span_h,
            "seconds_per_image": span_h * 3600 / row["images"] if row["images"] else None,
            "rejection_rate": reviewed[0] / reviewed[1] if reviewed[1] else None,
            **{f"jobs_{k}": v for k, v in w.items()},
        })  # fmt: skip
    return out


@requires("project.read")
def work_summary(ws: Workspace, slug: str) -> dict[str, dict[str, int]]:
    with ws.store.transaction() as s:
        return team_repo.work_counts(s, project_repo.project_id(s, slug))


@requires("audit.read")
def audit_log(ws: Workspace, slug: str | None = None, *, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
    with ws.store.transaction() as s:
        return team_repo.audit_entries(s, project_slug=slug, limit=limit, offset=offset)
