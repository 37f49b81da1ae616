"""Annotate page in team mode: the user's own jobs first in the picker, and below the canvas the open
image's review stage, its reviewers' comments, and its history with a restore."""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from workbench.domain import ImageRecord, WorkbenchError
from workbench.services import team
from workbench.services.permissions import allowed
from workbench.services.workspace import Workspace

STAGE_TEXT = {None: "being annotated", "in_review": "in review", "accepted": "accepted", "rejected": "rejected"}


def mine_first(ws: Workspace, slug: str, images: Sequence[ImageRecord]) -> list[ImageRecord]:
    """The images assigned to the signed-in user first (in their order), then the others."""
    mine = set(team.my_image_ids(ws, slug)) if ws.actor is not None else set()
    if not mine:
        return list(images)
    return [im for im in images if im.id in mine] + [im for im in images if im.id not in mine]


def team_panel(ws: Workspace, slug: str, rec: ImageRecord) -> None:
    """Whose job the image is, its review stage and comments, its history (team mode only)."""
    if ws.actor is None or rec.id is None:
        return
    try:
        job = team.jobs(ws, slug, [rec.id]).get(rec.id)
        notes = team.comments(ws, slug, rec.id)
    except WorkbenchError as exc:
        st.error(str(exc))
        return
    if job is not None:
        text = f"Job of **{job.assignee or 'nobody'}** · {STAGE_TEXT.get(job.review, job.review)}"
        (st.warning if job.review == "rejected" else st.caption)(text)
    for note in notes:
        what = {"rejected": "Rejected", "accepted": "Accepted"}.get(note["verdict"], "Comment")
        shape = f" (shape {note['annotation_id']})" if note["annotation_id"] else ""
        if note["text"] or what == "Comment":
            st.markdown(f"> **{what}** by {note['user'] or '-'} at {note['at']:%Y-%m-%d %H:%M}{shape}: {note['text']}")
    with st.expander("History"):
        try:
            versions = team.history(ws, slug, rec.id)
        except WorkbenchError as exc:
            st.error(str(exc))
            return
        if not versions:
            st.caption("No saved versions yet.")
            return
        for v in versions:
            c1, c2 = st.columns([5, 1])
            what = "as found" if v["baseline"] else f"{v['saved']} saved, {v['deleted']} deleted"
            c1.markdown(f"v{v['version']} · {v['at']:%Y-%m-%d %H:%M:%S} · {v['user'] or '-'} · {what}")
            if allowed(ws.actor.role, "annotate") and c2.button("Restore", key=f"ann_restore_{rec.id}_{v['version']}"):
                try:
                    new = team.restore(ws, slug, rec.id, v["version"])
                except WorkbenchError as exc:
                    st.error(str(exc))
                else:
                    from workbench.ui.app_pages.annotate_saves import _state, load_into_state

                    load_into_state(ws, slug, rec.id, _state()["index"], notice=f"Restored v{v['version']} as v{new}")
                    st.rerun()
