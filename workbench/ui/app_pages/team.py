"""Team page (team mode): jobs per annotator, handing out images, the review queue (accept, or reject
with a comment), per-user activity and the audit log. Each part shows to the roles that may use it."""

from __future__ import annotations

import streamlit as st

from workbench.domain import IMAGE_STATUSES, SPLITS, WorkbenchError
from workbench.services import accounts, annotate, team
from workbench.services.permissions import allowed
from workbench.ui import context

FLASH_KEY = "team_flash"


def _flash(text: str) -> None:
    st.session_state[FLASH_KEY] = text
    st.rerun()


def _assign(ws, slug: str) -> None:  # noqa: ANN001
    takers = [u.name for u in accounts.list_users(ws) if u.role in ("annotator", "admin") and not u.disabled]
    with st.form("team_assign"):
        st.markdown("**Hand out images**")
        c1, c2, c3, c4 = st.columns(4)
        user = c1.selectbox("To", takers, key="team_assign_user")
        split = c2.selectbox("Split", ["any", *SPLITS, "unassigned"], key="team_assign_split")
        status = c3.selectbox("Status", ["any", *IMAGE_STATUSES], key="team_assign_status")
        count = c4.number_input("How many", 1, 100_000, 20, key="team_assign_count")
        reassign = st.checkbox("Also images that are someone else's job", key="team_assign_reassign")
        if st.form_submit_button("Assign", type="primary", disabled=not takers):
            try:
                n = team.assign_images(
                    ws, slug, user, split=None if split == "any" else split,
                    status=None if status == "any" else status, count=int(count), only_unassigned=not reassign,
                )  # fmt: skip
            except WorkbenchError as exc:
                st.error(str(exc))
            else:
                _flash(f"Assigned {context.plural(n, 'image')} to {user}.")


def _review(ws, slug: str) -> None:  # noqa: ANN001
    queue = team.review_queue(ws, slug, "in_review", limit=50)
    st.subheader(f"In review ({len(queue)}{'+' if len(queue) == 50 else ''})")
    if not queue:
        st.caption("Nothing to review: an annotator's image comes here when they mark it done.")
        return
    names = {i: annotate.image_record(ws, slug, i).file_name for i in queue}
    jobs = team.jobs(ws, slug, queue)
    from workbench.ui.app_pages.annotate import IMAGE_PARAM

    for image_id in queue:
        with st.container(border=True):
            c1, c2, c3, c4 = st.columns([3, 3, 1, 1])
            c1.markdown(f"**{context.md_escape(names.get(image_id, str(image_id)))}** · by {jobs[image_id].assignee or '-'}")
            c1.page_link(context.PAGE_PATHS["annotate"], label="Open in Annotate", icon=":material/draw:",
                         query_params={context.URL_PARAM: slug, IMAGE_PARAM: str(image_id)})  # fmt: skip
            note = c2.text_input("Comment", key=f"team_comment_{image_id}", placeholder="what to fix (needed to reject)")
            try:
                if c3.button("Accept", key=f"team_accept_{image_id}", type="primary"):
                    team.review_image(ws, slug, image_id, "accept", note)
                    _flash(f"Accepted {names.get(image_id, image_id)}.")
                if c4.button("Reject", key=f"team_reject_{image_id}"):
                    team.review_image(ws, slug, image_id, "reject", note)
                    _flash(f"Rejected {names.get(image_id, image_id)}: back to its annotator.")
            except WorkbenchError as exc:
                st.error(str(exc))


def _activity(ws, slug: str) -> None:  # noqa: ANN001
    hours = st.select_slider("Activity over the last", [1, 8, 24, 168], value=24, key="team_hours",
                             format_func=lambda h: f"{h} h" if h < 168 else "week")  # fmt: skip
    rows = team.activity(ws, slug, hours=float(hours))
    if not rows:
        st.caption("No saves in that time.")
        return
    st.dataframe(
        [{"user": r["user"], "images": r["images"], "objects": r["objects"],
          "images/h": round(r["images_per_hour"], 1), "objects/h": round(r["objects_per_hour"], 1),
          "s/image": round(r["seconds_per_image"]) if r["seconds_per_image"] else None,
          "rejected": f"{r['rejection_rate']:.0%}" if r["rejection_rate"] is not None else "-"} for r in rows],
        hide_index=True, key="team_activity",
    )  # fmt: skip


def render() -> None:
    opened = context.project_page("Team")
    if opened is None:
        return
    ws, info = opened
    flash = st.session_state.pop(FLASH_KEY, None)
    if flash:
        st.success(flash)
    role = ws.actor.role if ws.actor is not None else "admin"
    try:
        summary = team.work_summary(ws, info.slug)
        if summary:
            st.dataframe([{"user": u, **c} for u, c in sorted(summary.items())], hide_index=True, key="team_jobs")
        else:
            st.caption("No jobs yet.")
        if allowed(role, "assign"):
            _assign(ws, info.slug)
        if allowed(role, "review"):
            _review(ws, info.slug)
        st.subheader("Activity")
        _activity(ws, info.slug)
        if allowed(role, "audit.read"):
            with st.expander("Audit log"):
                st.dataframe(team.audit_log(ws, info.slug, limit=200), hide_index=True, key="team_audit")
    except WorkbenchError as exc:
        st.error(str(exc))
