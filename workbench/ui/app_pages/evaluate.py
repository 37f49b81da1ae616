"""Evaluate page: run an evaluation of a trained run on a split; metrics, per-class AP, PR curves,
confusion matrix, per-image errors, the HTML report; two runs side by side with deltas."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import streamlit as st

from workbench.domain import SPLITS, RunInfo, WorkbenchError
from workbench.services import evaluation, semantic, training
from workbench.services.workspace import Workspace
from workbench.ui import context

TYPE_TITLES = {"segm": "Masks", "bbox": "Boxes", "keypoints": "Keypoints"}
MAX_ERROR_ROWS = 500
FLASH_KEY = "eval_flash"


def key_metrics(metrics: dict[str, Any]) -> list[tuple[str, float | None]]:
    """The headline numbers: mask/box AP and AP50, keypoint AP, label-map mean IoU (None if absent)."""
    types = metrics.get("types", {})

    def stat(t: str, k: str) -> float | None:
        v = (types.get(t) or {}).get("stats", {}).get(k)
        return None if v is None or v < 0 else float(v)

    out = [("Mask AP", stat("segm", "AP")), ("Mask AP50", stat("segm", "AP50")), ("Box AP", stat("bbox", "AP")),
           ("Box AP50", stat("bbox", "AP50"))]
    if "keypoints" in types:
        out.append(("Keypoint AP", stat("keypoints", "AP")))
    sem = metrics.get("semantic") or {}
    out.append(("Mean IoU (label maps)", sem.get("mean_iou")))
    return out


def per_class_rows(type_metrics: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for name, r in type_metrics.get("per_class", {}).items():
        rows.append({"class": name, **{k: (None if r.get(k, -1) < 0 else round(r[k], 3))
                                       for k in ("AP", "AP50", "AP75", "AR")},
                     "ground truth": r.get("num_gt"), "predictions": r.get("num_dt")})
    return rows


def pr_chart_data(type_metrics: dict[str, Any], recall_grid: list[float], key: str = "precision_iou50") -> dict[str, Any]:
    """{"recall": grid, class: precision...} for st.line_chart(x="recall")."""
    data: dict[str, Any] = {"recall": recall_grid}
    for name, curves in type_metrics.get("pr_curves", {}).items():
        data[name] = [max(float(v), 0.0) for v in curves[key]]
    return data


def confusion_rows(confusion: dict[str, Any]) -> list[dict[str, Any]]:
    labels = confusion["labels"]
    return [{"ground truth \\ predicted": labels[i], **dict(zip(labels, row, strict=True))}
            for i, row in enumerate(confusion["matrix"])]


def error_rows(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"image": e.get("file_name"), "kind": e["kind"], "class": e.get("category"),
             "predicted": e.get("predicted"), "score": None if e.get("score") is None else round(e["score"], 3),
             "IoU": round(float(e.get("iou") or 0.0), 3), "severity": round(float(e["severity"]), 3)}
            for e in errors[:MAX_ERROR_ROWS]]


def _fmt(v: float | None) -> str:
    return "–" if v is None else f"{v:.3f}"


def _show_semantic(ev: evaluation.Evaluation) -> None:
    """A semantic run's evaluation: mean IoU and accuracies, per-class IoU, the pixel confusion."""
    m = ev.metrics
    figures = [("Mean IoU", m.get("mean_iou")), ("Mean IoU with background", m.get("mean_iou_with_background")),
               ("Pixel accuracy", m.get("pixel_accuracy")), ("Mean class accuracy", m.get("mean_class_accuracy")),
               ("Frequency-weighted IoU", m.get("fw_iou"))]
    for col, (label, value) in zip(st.columns(len(figures)), figures, strict=True):
        col.metric(label, _fmt(value))
    st.caption(f"{context.plural(m.get('num_images'), 'image')}, {m.get('num_pixels')} pixels counted (ignore left "
               "out); mean IoU averages the project's classes, background not counted.")
    tabs = st.tabs(["Per-class IoU", "Confusion matrix", "Report"])
    with tabs[0]:
        st.dataframe([{"class": k, "IoU": v["iou"], "accuracy": v["accuracy"], "gt pixels": v["gt_pixels"],
                       "predicted pixels": v["pred_pixels"]} for k, v in m["per_class"].items()], hide_index=True)
    with tabs[1]:
        st.caption("Pixels: rows the ground truth, columns the prediction.")
        st.dataframe([{"ground truth": g, **dict(zip(m["labels"], row, strict=True))}
                      for g, row in zip(m["labels"], m["confusion"], strict=True)], hide_index=True)
    with tabs[2]:
        if ev.report_path.exists():
            st.download_button("Download report.html", ev.report_path.read_bytes(),
                               file_name=f"run{ev.run_id}-{ev.split}-report.html", mime="text/html",
                               key="eval_dl_report", icon=":material/download:")


def _show(ev: evaluation.Evaluation) -> None:
    if ev.metrics.get("task") == "semantic":
        _show_semantic(ev)
        return
    m = ev.metrics
    cols = st.columns(len(key_metrics(m)))
    for col, (label, value) in zip(cols, key_metrics(m), strict=True):
        col.metric(label, _fmt(value))
    st.caption(f"{context.plural(m.get('num_images'), 'image')}, "
               f"{context.plural(m.get('num_detections'), 'prediction')}. "
               + " ".join(context.as_sentence(n) for n in m.get("notes") or []))
    types = m.get("types", {})
    tabs = st.tabs(["Per-class AP", "PR curves", "Confusion matrix", "Errors", "Label maps", "Report"])
    with tabs[0]:
        for t, tm in types.items():
            st.markdown(f"**{TYPE_TITLES.get(t, t)}**")
            st.dataframe(per_class_rows(tm), hide_index=True)
    with tabs[1]:
        iou = st.radio("IoU", ["0.50", "0.50:0.95"], horizontal=True, key="eval_pr_iou")
        key = "precision_iou50" if iou == "0.50" else "precision_iou50_95"
        for t, tm in types.items():
            data = pr_chart_data(tm, m.get("recall_grid", []), key)
            if len(data) > 1:
                st.markdown(f"**{TYPE_TITLES.get(t, t)}**: precision against recall per class")
                st.line_chart(data, x="recall", height=240)
    with tabs[2]:
        if m.get("confusion"):
            c = m["confusion"]
            st.caption(f"{c['iou_type']} IoU ≥ {c['iou_threshold']}, score ≥ {c['score_threshold']}; the background "
                       "row counts false positives, the background column missed objects.")
            st.dataframe(confusion_rows(c), hide_index=True)
        else:
            st.info("No confusion matrix (no boxes or masks were evaluated).")
    with tabs[3]:
        errors = m.get("errors") or []
        if errors:
            st.caption(f"{context.plural(len(errors), 'error')}, most severe first"
                       + (f" (first {MAX_ERROR_ROWS} shown)" if len(errors) > MAX_ERROR_ROWS else ""))
            st.dataframe(error_rows(errors), hide_index=True)
        else:
            st.success("No errors at this score threshold.")
    with tabs[4]:
        sem = m.get("semantic") or {}
        st.caption(f"Mean IoU {_fmt(sem.get('mean_iou'))}, pixel accuracy {_fmt(sem.get('pixel_accuracy'))} "
                   f"(predictions with score ≥ {sem.get('score_threshold', 0.5)})")
        st.dataframe([{"class": k, "IoU": v.get("iou"), "gt pixels": v.get("gt_pixels"),
                       "predicted pixels": v.get("pred_pixels")} for k, v in sem.get("per_class", {}).items()],
                     hide_index=True)
    with tabs[5]:
        if ev.report_path.exists():
            st.download_button("Download report.html", ev.report_path.read_bytes(), file_name=
                               f"run{ev.run_id}-{ev.split}-report.html", mime="text/html", key="eval_dl_report",
                               icon=":material/download:")
            st.caption(f"Saved at {ev.report_path} (self-contained; metrics.json beside it)")


def _what_changed(ws: Workspace, slug: str, run_a: int, run_b: int) -> None:
    """The architecture settings in which the two runs differ (all of them in an expander)."""
    rows = evaluation.compare_settings(ws, slug, run_a, run_b)
    differ = [r for r in rows if r["differs"]]
    show = str  # lists and None as text: one column type for st.dataframe
    table = [{"setting": r["setting"], f"#{run_a}": show(r["A"]), f"#{run_b}": show(r["B"])} for r in differ]
    if table:
        st.caption(f"What changed: {context.plural(len(table), 'setting')} differ")
        st.dataframe(table, hide_index=True)
    else:
        st.caption("What changed: the two runs have the same architecture settings.")
    with st.expander("All architecture settings", icon=":material/architecture:"):
        st.dataframe([{"setting": r["setting"], f"#{run_a}": show(r["A"]), f"#{run_b}": show(r["B"]),
                       "differs": r["differs"]} for r in rows], hide_index=True)


def _compare(ws: Workspace, slug: str, ev: evaluation.Evaluation, runs: list[RunInfo], split: str) -> None:
    st.subheader("Compare two runs")
    others = [r for r in runs if r.id != ev.run_id]
    if not others:
        st.caption("Train another run to compare.")
        return
    by_id = {r.id: r for r in others}
    other = st.selectbox("Compare with", list(by_id), format_func=lambda i: f"#{i} · {by_id[i].name}",
                         key="eval_compare_run")
    if ev.metrics.get("task") == "semantic":
        _compare_report(semantic.compare_semantic_runs, ws, slug, ev.run_id, other, split)
        return
    _what_changed(ws, slug, ev.run_id, other)
    ev_b = evaluation.load_evaluation(ws, slug, other, split)
    if ev_b is None:
        st.info(f"Run #{other} has no evaluation on {split} yet.")
        if st.button(f"Evaluate run #{other} on {split}", key="eval_other"):
            _evaluate(ws, slug, other, split)
            st.rerun()
        return
    rows = evaluation.compare_summaries(ev.metrics, ev_b.metrics)
    st.dataframe([{"metric": r["metric"], f"#{ev.run_id}": r["A"], f"#{other}": r["B"], "delta": r["delta"]}
                  for r in rows], hide_index=True)
    _compare_report(evaluation.compare_runs, ws, slug, ev.run_id, other, split)


def _compare_report(write: Callable[..., Path], ws: Workspace, slug: str, run_a: int, run_b: int, split: str) -> None:
    """The button that writes the task's side-by-side report of two runs, then offers it for download."""
    if st.button("Write the side-by-side report", key="eval_compare_report"):
        try:
            path = write(ws, slug, run_a, run_b, split)
        except (WorkbenchError, ValueError) as exc:
            st.error(str(exc))
        else:
            st.download_button("Download comparison report", path.read_bytes(),
                               file_name=f"run{run_a}-vs-run{run_b}-{split}.html", mime="text/html",
                               key="eval_dl_compare")


def _evaluate(ws: Workspace, slug: str, run_id: int, split: str) -> None:
    bar = st.progress(0.0, text="Predicting…")
    try:
        if semantic.run_task(ws, run_id) == "semantic":
            semantic.evaluate_semantic_run(ws, slug, run_id, split=split,
                                           progress=lambda d, t: bar.progress(d / max(t, 1), text=f"Predicting {d}/{t}"))
        else:
            evaluation.evaluate_run(ws, slug, run_id, split=split,
                                    progress=lambda d, t: bar.progress(d / max(t, 1), text=f"Predicting {d}/{t}"))
    except (WorkbenchError, ValueError) as exc:
        st.session_state[FLASH_KEY] = str(exc)
    bar.empty()


def render() -> None:
    opened = context.project_page("Evaluate")
    if opened is None:
        return
    ws, info = opened
    slug = info.slug
    runs = [r for r in training.list_runs(ws, slug) if r.status == "succeeded"]
    if not runs:
        st.info("No finished training run yet. Train one on the **Train** page.")
        return
    by_id = {r.id: r for r in runs}
    c1, c2 = st.columns([3, 1])
    run_id = c1.selectbox("Run", list(by_id), format_func=lambda i: f"#{i} · {by_id[i].name}", key="eval_run")
    present = [s for s in SPLITS if (info.split_counts or {}).get(s)] or list(SPLITS)
    split = c2.selectbox("Split", present, index=present.index("val") if "val" in present else 0, key="eval_split")
    ev = evaluation.load_evaluation(ws, slug, run_id, split)
    label = "Evaluate again" if ev else "Evaluate"
    if st.button(label, type="primary" if ev is None else "secondary", icon=":material/analytics:", key="eval_go"):
        _evaluate(ws, slug, run_id, split)
        ev = evaluation.load_evaluation(ws, slug, run_id, split)
    err = st.session_state.pop(FLASH_KEY, None)
    if err:
        st.error(err)
    if ev is None:
        st.info(
            f"Run #{run_id} has not been evaluated on {split} yet. Press **Evaluate**. "
            "(A run evaluates itself on its val split when training ends; a run that just finished "
            "may still be at it: its report appears here when done.)"
        )
        return
    _show(ev)
    _compare(ws, slug, ev, runs, split)
