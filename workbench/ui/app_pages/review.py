"""Review page: a run's predictions over the ground truth on the annotator's canvas (zoom, pan, a row
per prediction that highlights its shape); sort and filter images by errors, confidence,
disagreement and class; accept predictions as annotations (then editable on Annotate), reject them,
accept all above a threshold; predict a split or pre-label the unlabelled images.

A run's end-of-training evaluation already stored its predictions on the split it scored, so a
finished run shows something here without predicting again; the score threshold starts at the
score with the best F1 of that evaluation (``review.default_threshold``).
"""

from __future__ import annotations

import math
import mimetypes
from pathlib import Path
from typing import Any

import streamlit as st

from workbench.domain import RunInfo, WorkbenchError
from workbench.services import annotate as annotate_svc
from workbench.services import classes as class_svc
from workbench.services import review, semantic, training
from workbench.services.workspace import Workspace
from workbench.ui import context
from workbench.ui.app_pages.annotate import IMAGE_PARAM
from workbench.ui.app_pages.annotate import STATE as ANNOTATE_STATE
from workbench.ui.components.annotator import annotator, category_to_payload, instance_to_payload

ALL = "all"
SORT_LABELS = {
    "errors": "most errors",
    "confidence": "lowest confidence",
    "disagreement": "largest disagreement",
}
IMAGE_KEY = "review_image"
FLASH_KEY = "review_flash"
CANVAS_KEY = "wb_review_canvas"
"""The annotator component in review mode (its own key: Annotate's state is not touched)."""
CANVAS_HEIGHT_PX = 560
MIN_SCORE_KEY = "review_min_score"
MIN_SCORE_RUN_KEY = "review_min_score_run"
"""The run whose default threshold the slider was last set to (a new run sets it again)."""


def image_label(row: review.ReviewImage) -> str:
    bits = [row.image.file_name, context.plural(row.num_errors, "error")]
    if row.min_score is not None:
        bits.append(f"min score {row.min_score:.2f}")
    if row.num_pending:
        bits.append(f"{row.num_pending} pending")
    return " · ".join(bits)


def _flash(kind: str, text: str) -> None:
    st.session_state[FLASH_KEY] = (kind, text)


def _accept(ws: Workspace, slug: str, pred_id: int) -> None:
    try:
        got = review.accept(ws, slug, pred_id)
    except (WorkbenchError, ValueError) as exc:
        _flash("error", str(exc))
    else:
        text = f"Accepted as annotation #{got.annotation_ids[0]}; edit it on the Annotate page."
        # keypoints dropped because the class's schema changed since the prediction: say so
        _flash("warning" if got.notes else "success", " ".join([text, *got.notes]))


def _reject(ws: Workspace, slug: str, pred_id: int) -> None:
    try:
        review.reject(ws, slug, pred_id)
    except (WorkbenchError, ValueError) as exc:
        _flash("error", str(exc))


def _accept_all(ws: Workspace, slug: str, image_id: int, run_id: int) -> None:
    threshold = float(st.session_state.get("review_accept_threshold", 0.5))
    try:
        got = review.accept_all_above(ws, slug, image_id, run_id, threshold)
    except (WorkbenchError, ValueError) as exc:
        _flash("error", str(exc))
    else:
        text = (
            f"Accepted {context.plural(len(got.annotation_ids), 'prediction')} with score ≥ {threshold:.2f}."
        )
        _flash("warning" if got.notes else "success", " ".join([text, *got.notes]))


def _predict_box(ws: Workspace, slug: str, run: RunInfo) -> None:
    with st.expander("Predict with this run", icon=":material/auto_awesome:"):
        try:
            review.run_model_path(ws, slug, run.id)
        except WorkbenchError as exc:
            st.caption(str(exc))
            return
        # where Min score starts (best F1 of the evaluation, else 0.05): 0.5 kept nothing of a young model
        start = math.floor(review.default_threshold(run)[0] * 100) / 100
        thr = st.slider("Keep predictions with score ≥", 0.0, 1.0, start, 0.01, key="review_predict_thr")
        c1, c2 = st.columns(2)
        which = None
        if c1.button("Predict the val split", key="review_predict_val"):
            which = ("val", review.select_images(ws, slug, split="val"))
        if c2.button("Pre-label every unlabelled image", type="primary", key="review_prelabel"):
            which = ("unlabelled", review.select_images(ws, slug, unlabeled=True))
        if which is None:
            return
        what, records = which
        if not records:
            st.info(f"No {what} images to predict.")
            return
        bar = st.progress(0.0, text="Predicting…")
        def show(d: int, t: int) -> None:
            bar.progress(d / max(t, 1), text=f"Predicting {d}/{t}")

        try:
            if (run.config or {}).get("task") == "semantic":  # label maps; their components are the predictions
                _, got = semantic.predict_semantic(ws, slug, run.id, records, progress=show)
            else:
                got = review.predict_images(ws, slug, run.id, records, score_threshold=thr, progress=show)
        except (WorkbenchError, ValueError) as exc:
            st.error(str(exc))
        else:
            st.success(
                f"{context.plural(got.predictions, 'prediction')} on {context.plural(got.images, what + ' image')}; "
                "review them below."
            )
        bar.empty()


def _filters(ws: Workspace, slug: str, run: RunInfo) -> dict[str, Any]:
    cats = class_svc.list_categories(ws, slug)
    names = {c.id: c.name for c in cats}
    start, why = review.default_threshold(run)
    if st.session_state.get(MIN_SCORE_RUN_KEY) != run.id:  # each run starts where it shows something
        st.session_state[MIN_SCORE_KEY] = math.floor(start * 100) / 100  # down: the best-F1 box stays in
        st.session_state[MIN_SCORE_RUN_KEY] = run.id
    c1, c2, c3, c4 = st.columns(4)
    sort = c1.selectbox("Sort by", list(SORT_LABELS), format_func=SORT_LABELS.get, key="review_sort")
    err = c2.selectbox("Error type", [ALL, *review.ERROR_FILTERS], key="review_error")
    cls = c3.selectbox(
        "Class", [ALL, *names], format_func=lambda i: i if i == ALL else names[i], key="review_class"
    )
    min_score = c4.slider(
        "Min score", 0.0, 1.0, step=0.01, key=MIN_SCORE_KEY, help=f"Starts at {start:.2f}: {why}."
    )
    return {
        "sort": sort,
        "error_type": None if err == ALL else err,
        "category_id": None if cls == ALL else cls,
        "min_score": float(min_score),
    }


def canvas_shapes(
    detail: review.ImageReview, *, ground_truth: bool = True, missed: bool = True
) -> list[dict[str, Any]]:
    """What the canvas draws: the ground truth (missed objects flagged) and every prediction on the
    image, highest score first, masks as outlines; accepted ones are ground truth by now."""
    missed_ids = {m.id for m in detail.missed}
    shapes: list[dict[str, Any]] = []
    for g in detail.ground_truth:
        is_missed = g.id in missed_ids
        if ground_truth or (missed and is_missed):
            shapes.append(
                {**instance_to_payload(review.outline(g)), "role": "truth", "missed": missed and is_missed}
            )
    for p in sorted(detail.predictions, key=lambda p: (-p.score, p.id)):
        v = detail.verdicts.get(p.id)
        shapes.append(
            {
                **instance_to_payload(review.outline(p.instance)),
                "id": None,
                "role": "prediction",
                "prediction_id": p.id,
                "status": p.status,
                "verdict": v.kind if v else None,
                "iou": round(v.best_iou, 3) if v else None,
            }
        )
    return shapes


def _media_url(path: Path) -> str:
    """A media URL for the display copy (what st.image uses): the browser fetches it once."""
    from streamlit import runtime

    if not runtime.exists():
        return ""
    mime = mimetypes.guess_type(path.name)[0] or "image/jpeg"
    return runtime.get_instance().media_file_mgr.add(str(path), mime, f"{CANVAS_KEY}.image")


def _on_canvas_action(ws: Workspace, slug: str) -> None:
    value = st.session_state.get(CANVAS_KEY)
    action = value.get("action") if isinstance(value, dict) else None
    if not isinstance(action, dict) or action.get("prediction_id") is None:
        return
    kind, pred_id = action.get("kind"), int(action["prediction_id"])
    if kind == "accept":
        _accept(ws, slug, pred_id)
    elif kind == "reject":
        _reject(ws, slug, pred_id)


def _image_view(
    ws: Workspace, slug: str, detail: review.ImageReview, run_id: int, index: int, count: int
) -> None:
    rec = detail.image
    c1, c2, c3 = st.columns([1, 1, 2])
    show_gt = c1.toggle("Ground truth", True, key="review_show_gt")
    show_missed = c2.toggle("Missed objects", True, key="review_show_missed", help="Outlined in red")
    if c3.button(
        "Open in Annotate",
        key="review_open_annotate",
        icon=":material/draw:",
        help="Edit this image's annotations on the Annotate page",
    ):
        _open_in_annotate(slug, rec.id)  # type: ignore[arg-type]
    if not rec.path:
        st.warning(f"{rec.file_name}: no image file")
        return
    assert rec.id is not None
    image = {
        "id": rec.id,
        "url": _media_url(annotate_svc.image_file(ws, slug, rec.id, "display")),
        "width": rec.width,
        "height": rec.height,
        "file_name": rec.file_name,
        "status": rec.status,
        "index": index,
        "count": count,
    }
    data = {
        "mode": "review",
        "epoch": f"{run_id}:{rec.id}",  # a new image or run resets the view; a decision keeps it
        "image": image,
        "categories": [category_to_payload(c) for c in class_svc.list_categories(ws, slug)],
        "instances": canvas_shapes(detail, ground_truth=show_gt, missed=show_missed),
        "height": CANVAS_HEIGHT_PX,
    }
    annotator(data, on_action=lambda: _on_canvas_action(ws, slug), key=CANVAS_KEY)


def _open_in_annotate(slug: str, image_id: int) -> None:
    """Annotate opens the image of ``?image=`` when it has none loaded: drop the one this tab had
    there (every edit on Annotate is already saved), unless it holds an unsaved conflict."""
    state = st.session_state.get(ANNOTATE_STATE)
    if isinstance(state, dict) and state.get("conflict") is None:
        state["image_id"] = None
    st.switch_page(
        context.PAGE_PATHS["annotate"], query_params={context.URL_PARAM: slug, IMAGE_PARAM: str(image_id)}
    )


def _accept_all_box(
    ws: Workspace, slug: str, detail: review.ImageReview, run_id: int, min_score: float
) -> None:
    if not any(p.status == "pending" for p in detail.predictions):
        return
    c1, c2, _ = st.columns([1, 1, 2])
    if st.session_state.get("review_accept_for") != (run_id, min_score):
        st.session_state["review_accept_threshold"] = max(min_score, 0.5)
        st.session_state["review_accept_for"] = (run_id, min_score)
    c1.number_input("Accept all pending with score ≥", 0.0, 1.0, step=0.05, key="review_accept_threshold")
    c2.button(
        "Accept all above",
        key="review_accept_all",
        on_click=_accept_all,
        args=(ws, slug, detail.image.id, run_id),
        icon=":material/done_all:",
    )


def _label_map_overlay(ws: Workspace, slug: str, run_id: int, image_id: int) -> None:
    """A semantic run's predicted label map beside the ground truth's, per-class toggles and opacity."""
    names = [c.name for c in class_svc.list_categories(ws, slug) if not c.is_ignore]
    with st.expander("Label maps: ground truth and prediction", icon=":material/layers:", expanded=True):
        c1, c2 = st.columns([3, 1])
        shown = c1.multiselect("Classes shown", names, default=names, key="review_map_classes")
        opacity = c2.slider("Opacity", 0.0, 1.0, 0.5, 0.05, key="review_map_opacity")
        try:
            views = semantic.label_map_overlay(ws, slug, run_id, image_id, classes=shown, opacity=opacity)
        except (WorkbenchError, ValueError) as exc:
            st.error(str(exc))
            return
        for col, (title, arr) in zip(st.columns(2), views.items(), strict=True):
            col.image(arr, caption=title, width="stretch")


def render() -> None:
    opened = context.project_page("Review")
    if opened is None:
        return
    ws, info = opened
    slug = info.slug
    runs = training.list_runs(ws, slug)
    if not runs:
        st.info("No runs yet. Train a model on the **Train** page, then review its predictions here.")
        return
    by_id = {r.id: r for r in runs}
    if st.session_state.get("review_run") not in by_id:  # first visit: the newest run that has a model
        st.session_state["review_run"] = next((r.id for r in runs if r.status == "succeeded"), runs[0].id)
    # No status in the labels: the browser keeps a keyed selectbox's old label when a status changes.
    run_id = st.selectbox(
        "Run", list(by_id), format_func=lambda i: f"#{i} · {by_id[i].name}", key="review_run"
    )
    _predict_box(ws, slug, by_id[run_id])
    flash = st.session_state.pop(FLASH_KEY, None)
    if flash:
        getattr(st, flash[0])(flash[1])
    filters = _filters(ws, slug, by_id[run_id])
    try:
        rows = review.list_review_images(ws, slug, run_id, **filters)
    except (WorkbenchError, ValueError) as exc:
        st.error(str(exc))
        return
    if not rows:
        st.info(
            f"No images with predictions of run #{run_id} match. Predict with the run above, or relax the filters."
        )
        return
    by_image = {r.image.id: r for r in rows}
    ids = list(by_image)
    if st.session_state.get(IMAGE_KEY) not in by_image:
        st.session_state[IMAGE_KEY] = ids[0]
    c1, c2, c3 = st.columns([6, 1, 1])
    # Not keyed: a keyed selectbox keeps showing the chosen option's old label in the browser (it still
    # said "2 pending" after an accept); unkeyed, new labels make a new widget that shows them.
    picked = c1.selectbox(
        f"Image ({len(ids)})",
        ids,
        index=ids.index(st.session_state[IMAGE_KEY]),
        format_func=lambda i: image_label(by_image[i]),
    )
    st.session_state[IMAGE_KEY] = picked
    idx = ids.index(picked)

    def _go(delta: int) -> None:
        st.session_state[IMAGE_KEY] = ids[min(max(idx + delta, 0), len(ids) - 1)]

    c2.button("Previous", key="review_prev", on_click=_go, args=(-1,), disabled=idx == 0)
    c3.button("Next", key="review_next", on_click=_go, args=(1,), disabled=idx == len(ids) - 1)
    image_id = st.session_state[IMAGE_KEY]
    detail = review.predictions_for_image(ws, slug, image_id, run_id, min_score=filters["min_score"])
    _image_view(ws, slug, detail, run_id, idx, len(ids))
    if (by_id[run_id].config or {}).get("task") == "semantic":
        _label_map_overlay(ws, slug, run_id, image_id)
    _accept_all_box(ws, slug, detail, run_id, filters["min_score"])
