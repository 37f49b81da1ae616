"""Review page: a run's predictions over the ground truth; sort and filter images by errors,
confidence, disagreement and class; accept predictions as annotations (then editable on Annotate),
reject them, accept all above a threshold; predict a split or pre-label the unlabelled images."""

from __future__ import annotations

from typing import Any

import streamlit as st

from workbench.domain import Prediction, RunInfo, WorkbenchError
from workbench.services import classes as class_svc
from workbench.services import review, training
from workbench.services.workspace import Workspace
from workbench.ui import context

ALL = "all"
SORT_LABELS = {"errors": "most errors", "confidence": "lowest confidence", "disagreement": "largest disagreement"}
IMAGE_KEY = "review_image"
MAX_ROWS = 20
"""Prediction rows listed per image before 'Show all': an untrained model's 100 detections per image
made 100 rows of Accept/Reject buttons (a long page, slow reruns)."""
FLASH_KEY = "review_flash"


def image_label(row: review.ReviewImage) -> str:
    bits = [row.image.file_name, context.plural(row.num_errors, "error")]
    if row.min_score is not None:
        bits.append(f"min score {row.min_score:.2f}")
    if row.num_pending:
        bits.append(f"{row.num_pending} pending")
    return " · ".join(bits)


def prediction_rows(detail: review.ImageReview) -> list[dict[str, Any]]:
    """The predictions of an image, highest score first, with their verdict against ground truth."""
    rows = []
    for p in sorted(detail.predictions, key=lambda p: -p.score):
        v = detail.verdicts.get(p.id)
        rows.append({"id": p.id, "class": p.instance.category, "score": round(p.score, 3), "status": p.status,
                     "verdict": v.kind if v else "", "IoU": round(v.best_iou, 3) if v else None})
    return rows


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
        text = f"Accepted {context.plural(len(got.annotation_ids), 'prediction')} with score ≥ {threshold:.2f}."
        _flash("warning" if got.notes else "success", " ".join([text, *got.notes]))


def _predict_box(ws: Workspace, slug: str, run: RunInfo) -> None:
    with st.expander("Predict with this run", icon=":material/auto_awesome:"):
        try:
            review.run_model_path(ws, slug, run.id)
        except WorkbenchError as exc:
            st.caption(str(exc))
            return
        thr = st.slider("Keep predictions with score ≥", 0.0, 1.0, 0.5, 0.05, key="review_predict_thr")
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
        try:
            got = review.predict_images(
                ws, slug, run.id, records, score_threshold=thr,
                progress=lambda d, t: bar.progress(d / max(t, 1), text=f"Predicting {d}/{t}"),
            )
        except (WorkbenchError, ValueError) as exc:
            st.error(str(exc))
        else:
            st.success(
                f"{context.plural(got.predictions, 'prediction')} on {context.plural(got.images, what + ' image')}; "
                "review them below."
            )
        bar.empty()


def _filters(ws: Workspace, slug: str) -> dict[str, Any]:
    cats = class_svc.list_categories(ws, slug)
    names = {c.id: c.name for c in cats}
    c1, c2, c3, c4 = st.columns(4)
    sort = c1.selectbox("Sort by", list(SORT_LABELS), format_func=SORT_LABELS.get, key="review_sort")
    err = c2.selectbox("Error type", [ALL, *review.ERROR_FILTERS], key="review_error")
    cls = c3.selectbox("Class", [ALL, *names], format_func=lambda i: i if i == ALL else names[i], key="review_class")
    min_score = c4.slider("Min score", 0.0, 1.0, 0.0, 0.05, key="review_min_score")
    return {"sort": sort, "error_type": None if err == ALL else err,
            "category_id": None if cls == ALL else cls, "min_score": float(min_score)}


def _image_view(ws: Workspace, slug: str, detail: review.ImageReview, colors: dict[str, str]) -> None:
    c1, c2, c3, c4 = st.columns(4)
    show_gt = c1.toggle("Ground truth", True, key="review_show_gt")
    show_pred = c2.toggle("Predictions", True, key="review_show_pred")
    show_missed = c3.toggle("Missed objects", True, key="review_show_missed")
    opacity = c4.slider("Opacity", 0.0, 1.0, 0.35, 0.05, key="review_opacity")
    rec = detail.image
    if not rec.path:
        st.warning(f"{rec.file_name}: no image file")
        return
    shown = review.draw_image_review(
        ws, slug, detail, colors, ground_truth=show_gt, predictions=show_pred, missed=show_missed, opacity=opacity
    )
    st.image(shown, caption=f"{rec.file_name} ({rec.width}×{rec.height}); pending predictions have boxes and "
             "scores; missed objects are outlined in red", width="stretch")


def _decisions(ws: Workspace, slug: str, detail: review.ImageReview, run_id: int) -> None:
    preds: list[Prediction] = sorted(detail.predictions, key=lambda p: -p.score)
    if not preds:
        st.caption("The model predicted nothing here at this score.")
        return
    st.number_input("Accept all pending with score ≥", 0.0, 1.0, 0.5, 0.05, key="review_accept_threshold")
    st.button("Accept all above", key="review_accept_all", on_click=_accept_all,
              args=(ws, slug, detail.image.id, run_id), icon=":material/done_all:")
    if len(preds) > MAX_ROWS and not st.toggle(f"Show all {len(preds)} predictions", key="review_show_all"):
        st.caption(
            f"The {MAX_ROWS} highest-scoring of {len(preds)} predictions are listed; raise *Min score* above "
            "or accept all above a score."
        )
        preds = preds[:MAX_ROWS]
    for p in preds:
        v = detail.verdicts.get(p.id)
        c1, c2, c3 = st.columns([2, 1, 1])  # wide enough for "Accept" (it showed "Acc…")
        verdict = f" · {v.kind.replace('_', ' ')} (IoU {v.best_iou:.2f})" if v else ""
        ann = f" as annotation #{p.annotation_id}" if p.status == "accepted" and p.annotation_id else ""
        c1.markdown(f"**{context.md_escape(p.instance.category)}** {p.score:.2f} · {p.status}{ann}{verdict}")
        if p.status == "pending":
            c2.button("Accept", key=f"review_accept_{p.id}", on_click=_accept, args=(ws, slug, p.id),
                      type="primary")
            c3.button("Reject", key=f"review_reject_{p.id}", on_click=_reject, args=(ws, slug, p.id))


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
    run_id = st.selectbox("Run", list(by_id), format_func=lambda i: f"#{i} · {by_id[i].name}", key="review_run")
    _predict_box(ws, slug, by_id[run_id])
    flash = st.session_state.pop(FLASH_KEY, None)
    if flash:
        getattr(st, flash[0])(flash[1])
    filters = _filters(ws, slug)
    try:
        rows = review.list_review_images(ws, slug, run_id, **filters)
    except (WorkbenchError, ValueError) as exc:
        st.error(str(exc))
        return
    if not rows:
        st.info(f"No images with predictions of run #{run_id} match. Predict with the run above, or relax the filters.")
        return
    by_image = {r.image.id: r for r in rows}
    ids = list(by_image)
    if st.session_state.get(IMAGE_KEY) not in by_image:
        st.session_state[IMAGE_KEY] = ids[0]
    c1, c2, c3 = st.columns([6, 1, 1])
    # Not keyed: a keyed selectbox keeps showing the chosen option's old label in the browser (it still
    # said "2 pending" after an accept); unkeyed, new labels make a new widget that shows them.
    picked = c1.selectbox(
        f"Image ({len(ids)})", ids, index=ids.index(st.session_state[IMAGE_KEY]),
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
    colors = {c.name: c.color for c in class_svc.list_categories(ws, slug)}
    left, right = st.columns([3, 2])
    with left:
        _image_view(ws, slug, detail, colors)
    with right:
        _decisions(ws, slug, detail, run_id)
