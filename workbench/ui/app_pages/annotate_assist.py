"""Assisted labelling on the Annotate and Dataset pages: the annotator's assist requests (answered by
services.assist_ui) and the "label next" order of a chosen run.

The order is a snapshot: the unlabelled images ranked by the run's uncertainty when the user asked
(``services.assist.rank_next``), kept in the session until another run or a new ranking is asked for;
the Annotate picker, its thumbnails and A/D follow it (annotate_saves.browse_list).
"""

from __future__ import annotations

import time
from typing import Any

import streamlit as st

from workbench.domain import WorkbenchError
from workbench.services import assist as assist_svc
from workbench.services import assist_ui
from workbench.services.workspace import Workspace
from workbench.ui.app_pages.annotate_saves import NEXT_ORDER, _state, browse_list
from workbench.ui.components.annotator import ANNOTATOR_KEY

OPTIONS_TTL_S = 10.0
"""How long the assist bar's lists (SAM weights present, runs with a model) are kept before a re-read."""
NONE = "image order"


def assist_data(ws: Workspace, slug: str) -> dict[str, Any]:
    """What the annotator's assist bar needs: its options (re-read every few seconds) and the last answer."""
    s = _state()
    cached = s.get("assist_options")
    if cached is None or cached[0] != slug or time.monotonic() - cached[1] > OPTIONS_TTL_S:
        cached = (slug, time.monotonic(), assist_ui.tool_options(ws, slug))
        s["assist_options"] = cached
    return {"assist_options": cached[2], "assist_answer": s.get("assist_answer")}


def on_assist(ws: Workspace, slug: str) -> None:
    """The browser's assist request (a prompt, auto-label, or warm SAM up): answered into the state."""
    value = st.session_state.get(ANNOTATOR_KEY)
    req = value.get("assist") if isinstance(value, dict) else None
    if not isinstance(req, dict):
        return
    s = _state()
    ids = [im.id for im in browse_list(ws, slug)]
    at = ids.index(s["image_id"]) if s["image_id"] in ids else -1
    next_ids = [int(i) for i in ids[at + 1 : at + 3]] if at >= 0 else []
    if req.get("image_id") != s["image_id"]:
        s["assist_answer"] = {"req": req.get("req"), "image_id": req.get("image_id"), "error": "the image changed"}
        return
    s["assist_answer"] = assist_ui.answer(ws, slug, req, next_ids=next_ids)


# --------------------------------------------------------------------------------------------- label next


def ranking() -> dict[str, Any] | None:
    """The session's "label next" ranking: slug, run, ids in order, {id: uncertainty}."""
    return st.session_state.get(NEXT_ORDER)


def rank(ws: Workspace, slug: str, run_id: int) -> dict[str, Any]:
    """Rank the unlabelled images by the run (a progress bar: the run predicts each one)."""
    bar = st.progress(0.0, text=f"Ranking the unlabelled images by run {run_id}…")

    def progress(done: int, total: int) -> None:
        bar.progress(done / max(total, 1), text=f"Ranking by run {run_id}: {done}/{total} images")

    ranked = assist_svc.rank_next(ws, slug, run_id, progress=progress)
    bar.empty()
    order = {
        "slug": slug,
        "run": run_id,
        "ids": [n.image_id for n in ranked],
        "unsure": {n.image_id: n.uncertainty for n in ranked},
        "rows": [
            {
                "rank": k + 1,
                "image": n.file_name,
                "uncertainty": n.uncertainty,
                "detections": n.detections,
                "mean score": n.mean_score,
            }
            for k, n in enumerate(ranked)
        ],
    }
    st.session_state[NEXT_ORDER] = order
    return order


def run_picker(ws: Workspace, slug: str, where: Any, key: str) -> int | None:
    """A "Label next by" select of the runs with a model; ranks when a run is chosen (None: image order)."""
    runs = assist_ui.model_runs(ws, slug)
    labels = {run_id: label for run_id, label in runs}
    current = ranking()
    options: list[int | None] = [None, *labels]
    default = current["run"] if current and current["slug"] == slug and current["run"] in labels else None
    if st.session_state.get(key) not in options:
        st.session_state[key] = default
    chosen = where.selectbox(
        "Label next by",
        options,
        format_func=lambda r: NONE if r is None else f"run {labels[r]} (most unsure first)",
        key=key,
        help="Rank the unlabelled images by how unsure the run is (1 - mean detection score; no detection "
        "first) and show them in that order",
        disabled=not runs,
    )
    if chosen is None:
        if current and current["slug"] == slug:
            st.session_state.pop(NEXT_ORDER, None)
        return None
    if not current or current["slug"] != slug or current["run"] != chosen:
        try:
            rank(ws, slug, int(chosen))
        except WorkbenchError as exc:
            st.error(f"Label next: {exc}")
            return None
    return int(chosen)


def picker_label(image_id: int, name: str, n: int) -> str:
    """The Annotate picker's entry: rank position and the run's uncertainty while an order is chosen."""
    order = ranking()
    unsure = order["unsure"].get(image_id) if order else None
    return f"{n + 1}. {name}" + (f" · unsure {unsure:.2f}" if unsure is not None else "")


def next_tab(ws: Workspace, slug: str) -> None:
    """The Dataset page's "Label next" tab: choose a run, see its order, annotate in it."""
    run_id = run_picker(ws, slug, st, key="ds_next_run")
    if not assist_ui.model_runs(ws, slug):
        st.info("No run with a model yet: train one on the **Train** page to rank images by it.")
        return
    order = ranking()
    if run_id is None or not order or order["slug"] != slug:
        st.caption("Choose a run to rank the unlabelled images by how unsure it is about them.")
        return
    if not order["rows"]:
        st.info("Every image is labelled: nothing to rank.")
        return
    st.caption(
        f"Run {run_id}: {len(order['rows'])} unlabelled images, most unsure first "
        "(uncertainty = 1 - mean score of its detections at score >= 0.05; 1.0 where it detects nothing)."
    )
    st.dataframe(order["rows"], hide_index=True, key="ds_next_table")
    if st.button("Annotate in this order", key="ds_next_open", icon=":material/draw:"):
        from workbench.ui import context
        from workbench.ui.app_pages import annotate_saves

        st.session_state["ann_status_filter"] = annotate_saves.ALL
        st.session_state["ann_split_filter"] = annotate_saves.ALL
        st.session_state["ann_next_run"] = run_id
        first = order["ids"][0]
        ids = [im.id for im in browse_list(ws, slug)]
        annotate_saves.load_into_state(ws, slug, first, ids.index(first) if first in ids else 0)
        st.switch_page(context.PAGE_PATHS["annotate"])


def sam_models_panel(ws: Workspace) -> None:
    """The Train page's list of the SAM models the Assist tool can use: present (their file) or missing
    (where the file goes)."""
    models = assist_ui.sam_models(ws)
    present = [m for m in models if m.present]
    with st.expander(f"Assist models (SAM): {len(present)} of {len(models)} present", expanded=False):
        for m in models:
            if m.present:
                st.success(f"SAM {m.variant}: {m.path}", icon=":material/check:")
            else:
                st.caption(f"SAM {m.variant} missing: {m.message}")
        st.caption(
            "GrabCut, the magic wand and intelligent scissors need no weights; a run with a model file "
            "is listed in the Assist tool as 'Run #N' and auto-labels an image."
        )
