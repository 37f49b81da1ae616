"""Annotation use cases: browse images, load and save an image's instances, statuses and splits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np

from workbench.domain import ImageRecord, Instance, ValidationError
from workbench.geometry import clip_polygon, mask_to_rle, rle_to_mask, validate_polygon, with_bbox_area
from workbench.images import storage
from workbench.services.permissions import requires
from workbench.services.shape_merge import same_shape
from workbench.services.workspace import Workspace
from workbench.store import annotations as annotation_repo
from workbench.store import images as image_repo
from workbench.store import projects as project_repo
from workbench.store import team as team_repo


@dataclass(frozen=True)
class ImageAnnotations:
    image: ImageRecord
    instances: list[Instance]
    version: int


@requires("project.read")
def list_images(
    ws: Workspace,
    slug: str,
    *,
    split: str | None = None,
    status: str | None = None,
    category_id: int | None = None,
    unannotated: bool | None = None,
) -> list[ImageRecord]:
    with ws.store.transaction() as s:
        return image_repo.list_images(
            s,
            project_repo.project_id(s, slug),
            split=split,
            status=status,
            category_id=category_id,
            unannotated=unannotated,
        )


@requires("project.read")
def load_image(ws: Workspace, slug: str, image_id: int) -> ImageAnnotations:
    with ws.store.transaction() as s:
        rec, version = image_repo.get_image(s, project_repo.project_id(s, slug), image_id)
        return ImageAnnotations(
            image=rec, instances=annotation_repo.load_instances(s, image_id), version=version
        )


@requires("project.read")
def image_version(ws: Workspace, slug: str, image_id: int) -> int:
    """The image's saved version alone: what an open annotator polls to notice saves made elsewhere."""
    with ws.store.transaction() as s:
        return image_repo.get_image(s, project_repo.project_id(s, slug), image_id)[1]


def complete_instance(inst: Instance, size_wh: tuple[int, int], *, where: str = "") -> Instance:
    """Validate and clip polygons to the image, then fill bbox and area from the shape (COCO semantics).

    A shape that covers no pixel (a polygon inside one pixel, a sliver between pixel centres) is
    refused rather than stored as an invisible instance of area 0; ``where`` (the image) leads the
    message.
    """
    prefix = f"{where}: " if where else ""
    if inst.polygons:
        parts = [
            clip_polygon(validate_polygon(p, where=f"{prefix}class {inst.category}"), size_wh)
            for p in inst.polygons
        ]
        kept = tuple(p for p in parts if p is not None)
        if not kept:
            raise ValidationError(f"{prefix}a {inst.category} polygon lies entirely outside the image")
        inst = replace(inst, polygons=kept)
    inst = with_bbox_area(inst, size_wh, from_shape=True)
    if inst.has_shape and inst.area == 0:
        bbox = inst.bbox_xywh or (0.0, 0.0)
        at = f", near ({bbox[0]:.1f}, {bbox[1]:.1f})" if inst.polygons else ""
        raise ValidationError(
            f"{prefix}{'polygon' if inst.polygons else 'mask'} covers no pixel (class {inst.category!r}{at}); "
            "draw it larger or delete it"
        )
    return inst


@dataclass(frozen=True)
class SavedImage:
    """What a save returns: the image's new version, each saved instance's row id in order, and the
    image's instances as stored (with their versions: the base of the tab's next merge), put together
    from what was kept and what was written (no reload of the image's rows)."""

    version: int
    ids: list[int]
    instances: list[Instance]


@dataclass(frozen=True)
class SavedChanges:
    """What a save of changes returns: the image's new version, the row id of each changed instance
    (in the order given), the instances as stored now (those written, with their new row versions,
    and those found unchanged), and the row ids deleted."""

    version: int
    ids: list[int]
    instances: list[Instance]
    deleted: list[int]


@requires("project.read")
def image_record(ws: Workspace, slug: str, image_id: int) -> ImageRecord:
    """The image's record alone (no annotations)."""
    with ws.store.transaction() as s:
        return image_repo.get_image(s, project_repo.project_id(s, slug), image_id)[0]


@requires("annotate", image="image_id")
def save_image(
    ws: Workspace,
    slug: str,
    image_id: int,
    instances: Sequence[Instance],
    *,
    expected_version: int,
    status: str | None = None,
) -> SavedImage:
    """Replace an image's instances in one transaction; ConflictError if someone saved first.

    Returns the new version and each instance's row id (new rows included), in the given order: the
    browser gives these ids to the shapes it drew, so that the next save updates their rows
    instead of deleting and re-inserting them: ids stay stable across saves and exports. Rows left
    out are deleted; rows given unchanged keep their version.
    """
    with ws.store.transaction() as s:
        pid = project_repo.project_id(s, slug)
        rec, _ = image_repo.get_image(s, pid, image_id)
        stored = {i.id: i for i in annotation_repo.load_instances(s, image_id)}
        seen: set[int] = set()
        done: list[Instance] = []
        for inst in instances:
            if inst.id is not None and inst.id in seen:
                inst = replace(inst, id=None)  # the same row twice: the second is a new row
            if inst.id is not None:
                seen.add(inst.id)
            done.append(_completed(inst, stored.get(inst.id), rec))
        writes = [d for d in done if d.id not in stored or d is not stored[d.id]]
        if status is None:
            status = _status_after(rec, bool(done))
        gone = [i for i in stored if i not in seen]
        if ws.actor is not None:
            team_repo.before_save(s, image_id, expected_version)
        rows = annotation_repo.save_image_changes(
            s, pid, image_id, writes, gone, expected_version=expected_version, status=status,
        )  # fmt: skip
        if ws.actor is not None:
            team_repo.after_save(s, ws.actor, image_id, rows.version, rows.instances, gone, status)
        written = iter(rows.instances)
        final = [d if d.id in stored and d is stored[d.id] else next(written) for d in done]
        return SavedImage(
            version=rows.version,
            ids=[int(i.id or 0) for i in final],
            instances=sorted(final, key=lambda i: int(i.id or 0)),
        )


@requires("annotate", image="image_id")
def save_changes(
    ws: Workspace,
    slug: str,
    image_id: int,
    changed: Sequence[Instance],
    deleted: Sequence[int] = (),
    *,
    expected_version: int,
    status: str | None = None,
) -> SavedChanges:
    """Save what changed on an image since ``expected_version``, in one transaction: ``changed`` are
    new shapes and edited ones (by row id), ``deleted`` the row ids removed. ConflictError if someone
    saved first. Only these rows are read, compared (once: a shape found unchanged is not written)
    and written, so a save costs the same on an image of 10 shapes and one of 1,000.
    """
    with ws.store.transaction() as s:
        pid = project_repo.project_id(s, slug)
        rec, _ = image_repo.get_image(s, pid, image_id)
        named = [i.id for i in changed if i.id is not None]
        stored = annotation_repo.load_instances_by_id(s, image_id, named)
        seen: set[int] = set()
        done: list[Instance] = []
        for inst in changed:
            if inst.id is not None and (inst.id in seen or inst.id not in stored):
                inst = replace(inst, id=None)  # a row gone (deleted, then undone) or named twice: a new row
            if inst.id is not None:
                seen.add(inst.id)
            done.append(_completed(inst, stored.get(inst.id), rec))
        writes = [d for d in done if d.id is None or d is not stored[d.id]]
        gone = sorted(set(deleted) - seen)
        if not writes and not gone:  # nothing differs from the rows: nothing saved, no new version
            if status is not None:
                image_repo.set_status(s, pid, image_id, status)
                if status == "done" and ws.actor is not None:
                    team_repo.submit_for_review(s, image_id)
            return SavedChanges(
                version=expected_version, ids=[int(d.id or 0) for d in done], instances=done, deleted=[]
            )
        if status is None and rec.status in ("unlabeled", "in_progress"):
            kept = annotation_repo.count_instances(s, image_id, without=gone) if not done else 1
            status = _status_after(rec, kept > 0)
        if ws.actor is not None:
            team_repo.before_save(s, image_id, expected_version)
        rows = annotation_repo.save_image_changes(
            s, pid, image_id, writes, gone, expected_version=expected_version, status=status
        )
        if ws.actor is not None:
            team_repo.after_save(s, ws.actor, image_id, rows.version, rows.instances, gone, status)
        written = iter(rows.instances)
        final = [d if d.id is not None and d is stored[d.id] else next(written) for d in done]
        return SavedChanges(
            version=rows.version, ids=[int(i.id or 0) for i in final], instances=final, deleted=gone
        )


def _status_after(rec: ImageRecord, has_shapes: bool) -> str | None:
    """The status a save gives an image whose status the user did not set: the first shape makes an
    unlabeled image in progress; deleting every shape makes it unlabeled (done / needs review stay)."""
    if rec.status == "unlabeled" and has_shapes:
        return "in_progress"
    if rec.status == "in_progress" and not has_shapes:
        return "unlabeled"
    return None


def _fitted_copy(inst: Instance, size_wh: tuple[int, int]) -> Instance | None:
    """A new-row copy of a shape from another image, cut to this image's size; None where nothing of
    it is left (polygons outside, a mask whose pixels all fall off, no visible keypoint)."""
    w, h = size_wh
    polygons = tuple(p for p in (clip_polygon(q, size_wh) for q in inst.polygons) if p is not None)
    rle = inst.rle
    if rle is not None and tuple(rle.size_hw) != (h, w):
        src = rle_to_mask(rle)
        out = np.zeros((h, w), dtype=np.uint8)
        ch, cw = min(h, src.shape[0]), min(w, src.shape[1])
        out[:ch, :cw] = src[:ch, :cw]
        rle = mask_to_rle(out) if out.any() else None
    keypoints = inst.keypoints
    if keypoints is not None:
        kp: list[float] = []
        for n in range(0, len(keypoints), 3):
            x, y, v = keypoints[n : n + 3]
            kp.extend((x, y, v) if v > 0 and 0 <= x <= w and 0 <= y <= h else (0.0, 0.0, 0))
        keypoints = tuple(kp)
    if not polygons and rle is None and not (keypoints and any(keypoints[2::3])):
        return None
    return replace(
        inst, id=None, version=1, polygons=polygons, rle=rle, keypoints=keypoints, bbox_xywh=None, area=None
    )


@requires("annotate", image="image_id")
def copy_instances_to(ws: Workspace, slug: str, image_id: int, instances: Sequence[Instance]) -> SavedImage:
    """Add copies of shapes (from another image: the annotator's "propagate") to an image, as new rows
    after its own, in one transaction. Each copy is cut to this image (polygons clipped, a mask of
    another size cropped or padded, keypoints outside it dropped); a copy with nothing left is skipped.
    ``ids`` holds the copies' row ids only.
    """
    with ws.store.transaction() as s:
        pid = project_repo.project_id(s, slug)
        rec, version = image_repo.get_image(s, pid, image_id)
        own = annotation_repo.load_instances(s, image_id)
        copies = [c for c in (_fitted_copy(i, rec.size_wh) for i in instances) if c is not None]
        done = [complete_instance(c, rec.size_wh, where=f"image {rec.file_name}") for c in copies]
        status = "in_progress" if rec.status == "unlabeled" and done else None
        if ws.actor is not None:
            team_repo.before_save(s, image_id, version)
        rows = annotation_repo.save_image_changes(
            s, pid, image_id, done, expected_version=version, status=status
        )
        if ws.actor is not None:
            team_repo.after_save(s, ws.actor, image_id, rows.version, rows.instances, (), status)
        return SavedImage(version=rows.version, ids=rows.ids, instances=[*own, *rows.instances])


def _completed(inst: Instance, stored: Instance | None, rec: ImageRecord) -> Instance:
    """``inst`` validated, clipped and measured, unless it is its stored row unchanged (then that row
    itself, which a save does not write): the one comparison a save makes of a shape with its row."""
    if stored is not None and same_shape(inst, stored) and inst.score == stored.score:
        return stored
    return complete_instance(inst, rec.size_wh, where=f"image {rec.file_name}")


@requires("annotate", image="image_id")
def set_status(ws: Workspace, slug: str, image_id: int, status: str) -> None:
    with ws.store.transaction() as s:
        image_repo.set_status(s, project_repo.project_id(s, slug), image_id, status)
        if status == "done" and ws.actor is not None:
            team_repo.submit_for_review(s, image_id)


@requires("dataset.edit")
def set_split(ws: Workspace, slug: str, image_ids: Sequence[int], split: str | None) -> None:
    with ws.store.transaction() as s:
        image_repo.set_split(s, project_repo.project_id(s, slug), image_ids, split)


@requires("dataset.edit")
def delete_image(ws: Workspace, slug: str, image_id: int) -> None:
    with ws.store.transaction() as s:
        rec = image_repo.delete_image(s, project_repo.project_id(s, slug), image_id)
    if rec.path:
        storage.delete_image_files(ws.project_dir(slug), rec.path)


@requires("project.read")
def image_file(
    ws: Workspace, slug: str, image_id: int, kind: Literal["display", "thumb", "original"] = "display"
) -> Path:
    with ws.store.transaction() as s:
        rec, _ = image_repo.get_image(s, project_repo.project_id(s, slug), image_id)
    project_dir = ws.project_dir(slug)
    assert rec.path is not None
    if kind == "thumb":
        return storage.make_thumbnail(project_dir, rec.path)
    if kind == "display":
        return storage.make_display_copy(project_dir, rec.path)
    return project_dir / rec.path
