"""Self-contained evaluation report: ``metrics.json`` plus one HTML file with the plots embedded.

Nothing in the HTML is fetched: plots are base64 PNGs in ``<img src="data:...">``, styles are inline,
there is no script. The report can be mailed or opened from a run folder offline.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from workbench.evaluate.coco_eval import RECALL_THRESHOLDS, EvalResult
from workbench.utils.atomic import atomic_write
from workbench.utils.staged import staged_folder

__all__ = ["model_selection", "write_report"]

MAX_PR_PANELS = 24
MAX_ERROR_ROWS = 300

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}
td.l,th.l{text-align:left}.pos{color:#0a7a2f}.neg{color:#b3261e}.note{color:#666;font-size:.9em}
img{max-width:100%}
"""


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if v == -1.0:
            return "–"
        return f"{v:.{digits}f}"
    return html.escape(str(v))


def _delta(a: float | None, b: float | None) -> str:
    if a is None or b is None or a == -1 or b == -1:
        return "<td>–</td>"
    d = a - b
    cls = "pos" if d > 0 else "neg" if d < 0 else ""
    return f'<td class="{cls}">{d:+.3f}</td>'


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return '<img alt="plot" src="data:image/png;base64,' + base64.b64encode(buf.getvalue()).decode("ascii") + '">'


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _pr_plot(curves: dict[str, dict[str, list[float]]], iou_type: str) -> str:
    if not curves:
        return '<p class="note">No class has ground truth: no curves.</p>'
    plt = _plt()
    names = list(curves)[:MAX_PR_PANELS]
    cols = min(4, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.8 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names, strict=False):
        c = curves[name]
        ax.plot(RECALL_THRESHOLDS, c["precision_iou50"], label="IoU 0.50")
        ax.plot(RECALL_THRESHOLDS, c["precision_iou50_95"], label="IoU 0.50:0.95")
        ax.set_title(name, fontsize=9)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("recall", fontsize=8)
        ax.set_ylabel("precision", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(f"{iou_type}: precision-recall per class")
    more = "" if len(curves) <= MAX_PR_PANELS else f'<p class="note">First {MAX_PR_PANELS} of {len(curves)} classes.</p>'
    return _png(fig) + more


def _confusion_plot(labels: list[str], matrix: np.ndarray) -> str:
    plt = _plt()
    n = len(labels)
    size = max(4.0, 0.45 * n + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(np.log1p(matrix), cmap="Blues")
    ax.set_xticks(range(n), labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(n), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("ground truth")
    if n <= 30:
        hi = matrix.max() if matrix.size else 0
        for i in range(n):
            for j in range(n):
                if matrix[i, j]:
                    ax.text(j, i, str(int(matrix[i, j])), ha="center", va="center", fontsize=7,
                            color="white" if matrix[i, j] > hi / 2 else "black")
    return _png(fig)


def _stats_table(result: EvalResult, compare: EvalResult | None) -> str:
    out = []
    for t, tr in result.types.items():
        other = compare.types.get(t) if compare is not None else None
        head = "<tr><th class='l'>metric</th><th>this run</th>"
        if other is not None:
            head += "<th>compared run</th><th>delta</th>"
        out.append(f"<h3>{html.escape(t)}</h3><table>{head}</tr>")
        for name, v in tr.stats.items():
            row = f"<tr><td class='l'>{html.escape(name)}</td><td>{_fmt(v)}</td>"
            if other is not None:
                ov = other.stats.get(name)
                row += f"<td>{_fmt(ov)}</td>{_delta(v, ov)}"
            out.append(row + "</tr>")
        out.append("</table>")
    return "\n".join(out)


def _per_class_table(result: EvalResult, compare: EvalResult | None) -> str:
    out = []
    for t, tr in result.types.items():
        pc = tr.per_class()
        other = compare.types[t].per_class() if compare is not None and t in compare.types else None
        head = "<tr><th class='l'>class</th><th>AP</th><th>AP50</th><th>AP75</th><th>AR</th><th>gt</th><th>pred</th>"
        if other is not None:
            head += "<th>AP (compared)</th><th>ΔAP</th>"
        out.append(f"<h3>{html.escape(t)}</h3><table>{head}</tr>")
        for name, row in pc.items():
            cells = "".join(f"<td>{_fmt(row[k])}</td>" for k in ("AP", "AP50", "AP75", "AR", "num_gt", "num_dt"))
            line = f"<tr><td class='l'>{html.escape(name)}</td>{cells}"
            if other is not None:
                o = other.get(name, {}).get("AP")
                line += f"<td>{_fmt(o)}</td>{_delta(row['AP'], o)}"
            out.append(line + "</tr>")
        out.append("</table>")
    return "\n".join(out)


def _semantic_table(sem: dict[str, Any]) -> str:
    rows = [f"<p>mean IoU <b>{_fmt(sem.get('mean_iou'))}</b>, pixel accuracy <b>{_fmt(sem.get('pixel_accuracy'))}</b>"
            f" over {sem.get('num_images', 0)} images</p>",
            "<table><tr><th class='l'>class</th><th>IoU</th><th>gt pixels</th><th>predicted pixels</th></tr>"]
    for name, r in sem.get("per_class", {}).items():
        rows.append(f"<tr><td class='l'>{html.escape(name)}</td><td>{_fmt(r.get('iou'))}</td>"
                    f"<td>{r.get('gt_pixels', '')}</td><td>{r.get('pred_pixels', '')}</td></tr>")
    rows.append("</table>")
    return "\n".join(rows)


def _errors_table(errors: list[dict[str, Any]]) -> str:
    if not errors:
        return "<p>No errors at this score threshold.</p>"
    rows = ["<table><tr><th class='l'>image</th><th class='l'>kind</th><th class='l'>ground truth</th>"
            "<th class='l'>predicted</th><th>score</th><th>IoU</th><th>severity</th></tr>"]
    for e in errors[:MAX_ERROR_ROWS]:
        rows.append(
            f"<tr><td class='l'>{html.escape(str(e.get('file_name', e['image_id'])))}</td>"
            f"<td class='l'>{html.escape(e['kind'].replace('_', ' '))}</td><td class='l'>{_fmt(e.get('category'))}</td>"
            f"<td class='l'>{_fmt(e.get('predicted'))}</td><td>{_fmt(e.get('score'))}</td>"
            f"<td>{_fmt(e.get('iou'))}</td><td>{_fmt(e.get('severity'))}</td></tr>"
        )
    rows.append("</table>")
    if len(errors) > MAX_ERROR_ROWS:
        rows.append(f"<p class='note'>{MAX_ERROR_ROWS} most severe of {len(errors)}; all are in metrics.json.</p>")
    return "\n".join(rows)


def _settings_table(settings: dict[str, Any], other: dict[str, Any] | None) -> str:
    """The run's architecture settings; beside another run's, the differing ones first and marked."""
    def cell(v: Any) -> str:
        return html.escape(json.dumps(v) if isinstance(v, list | dict) else str(v))

    if other is None:
        rows = [f"<tr><td class='l'>{html.escape(k)}</td><td class='l'>{cell(v)}</td></tr>" for k, v in settings.items()]
        return "<table><tr><th class='l'>setting</th><th class='l'>value</th></tr>" + "".join(rows) + "</table>"
    keys = list(dict.fromkeys([*settings, *other]))
    differ = [k for k in keys if settings.get(k) != other.get(k)]
    rows = [f"<tr><td class='l'>{'≠ ' if k in differ else ''}{html.escape(k)}</td><td class='l{' neg' if k in differ else ''}'>"
            f"{cell(settings.get(k))}</td><td class='l{' neg' if k in differ else ''}'>{cell(other.get(k))}</td></tr>"
            for k in [*differ, *(k for k in keys if k not in differ)]]
    note = (f"<p class='note'>{len(differ)} setting(s) differ: {html.escape(', '.join(differ))}.</p>" if differ
            else "<p class='note'>Both runs have the same architecture settings.</p>")
    return note + ("<table><tr><th class='l'>setting</th><th class='l'>this run</th><th class='l'>compared run</th></tr>"
                   + "".join(rows) + "</table>")


def model_selection(split: str | None, selected_on: str | None, test: EvalResult | None) -> dict[str, Any]:
    """How far the numbers can be trusted: ``held_out`` when the split took no part in training or in
    choosing the checkpoint (``selected_on``, the split whose AP picked best.pt); ``test``: the test
    split's summary, given with a report on another split so that the unbiased figure is stated."""
    out: dict[str, Any] = {"split": split, "selected_on": selected_on}
    if split is not None and selected_on is not None:
        out["held_out"] = split not in (selected_on, "train")
    if test is not None:
        out["test"] = {t: {k: float(v) for k, v in tr.stats.items()} for t, tr in test.types.items()}
    return out


def _selection_html(sel: dict[str, Any], test: EvalResult | None) -> str:
    split, chosen = sel.get("split"), sel.get("selected_on")
    parts = []
    if split == "train":
        parts.append("These are the training images: the model has seen them, the numbers flatter it.")
    elif sel.get("held_out") is False:
        parts.append(f"The checkpoint was chosen on this split ({html.escape(str(chosen))}): its numbers are "
                     "optimistic. The test split's numbers are the held-out figure.")
    elif sel.get("held_out"):
        parts.append(f"Held out: the {html.escape(str(split))} split took no part in training nor in choosing "
                     f"the checkpoint (chosen on {html.escape(str(chosen))}).")
    out = "".join(f"<p class='note'>{p}</p>" for p in parts)
    if test is not None:
        out += "<h2>Test split (held out)</h2>" + _stats_table(test, None)
    return out


def write_report(
    result: EvalResult,
    out_dir: Path,
    *,
    title: str,
    semantic: dict[str, Any] | None = None,
    compare: EvalResult | None = None,
    extra: dict[str, bytes] | None = None,
    split: str | None = None,
    selected_on: str | None = None,
    test: EvalResult | None = None,
    settings: dict[str, Any] | None = None,
    compare_settings: dict[str, Any] | None = None,
) -> Path:
    """Write ``out_dir/metrics.json``, ``out_dir/report.html`` and the ``extra`` files (name ->
    bytes) together: staged and moved in when all are written (``utils.staged``), so a failure
    leaves the previous report whole and the files never come from two evaluations. Other files
    in ``out_dir`` (compare reports) stay. Returns the HTML path.

    ``split`` (the split evaluated), ``selected_on`` (the split that chose the checkpoint: val) and
    ``test`` (the test split's result, when one exists and ``split`` is another) go into
    metrics.json's ``model_selection`` and the report's first lines (:func:`model_selection`).
    ``settings``: the run's architecture (flat name -> value), listed beside the metrics and kept in
    metrics.json's ``architecture``; with ``compare_settings`` (the compared run's) the differing ones
    are listed first and marked."""
    out_dir = Path(out_dir)
    metrics = result.to_dict()
    if semantic is not None:
        metrics["semantic"] = semantic
    selection = model_selection(split, selected_on, test)
    if split is not None or selected_on is not None or test is not None:
        metrics["model_selection"] = selection
    if settings is not None:
        metrics["architecture"] = dict(settings)
    files = dict(extra or {})
    files["metrics.json"] = json.dumps(metrics, indent=1, default=_json_default).encode("utf-8")

    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>",
             f"<p>{result.num_images} images, {result.num_detections} predictions; max detections per image "
             f"{result.max_dets}. Numbers are COCOeval's (pycocotools) on the same inputs.</p>"]
    if result.notes:
        parts.append("<ul>" + "".join(f"<li class='note'>{html.escape(n)}</li>" for n in result.notes) + "</ul>")
    if "model_selection" in metrics:
        parts.append(_selection_html(selection, test))
    parts.append("<h2>Summary</h2>" + _stats_table(result, compare))
    parts.append("<h2>Per-class AP</h2>" + _per_class_table(result, compare))
    if settings is not None:
        parts.append("<h2>Architecture</h2>" + _settings_table(settings, compare_settings))
    parts.append("<h2>Precision-recall curves</h2>")
    for t, tr in result.types.items():
        parts.append(_pr_plot(tr.pr_curves(), t))
    if result.confusion is not None:
        cm = result.confusion
        parts.append(f"<h2>Confusion matrix</h2><p class='note'>{html.escape(cm.iou_type)} IoU ≥ {cm.iou_threshold}, "
                     f"score ≥ {cm.score_threshold}; rows ground truth, columns prediction; the background row "
                     "counts false positives, the background column missed objects.</p>")
        labels = [*cm.labels, "background"]
        parts.append(_confusion_plot(labels, cm.matrix))
        table = ["<table><tr><th class='l'>gt \\ pred</th>" + "".join(f"<th>{html.escape(x)}</th>" for x in labels) + "</tr>"]
        for i, name in enumerate(labels):
            table.append(f"<tr><th class='l'>{html.escape(name)}</th>"
                         + "".join(f"<td>{int(v)}</td>" for v in cm.matrix[i]) + "</tr>")
        parts.append("".join(table) + "</table>")
    if semantic is not None:
        parts.append("<h2>Label maps</h2>" + _semantic_table(semantic))
    parts.append("<h2>Errors by severity</h2>" + _errors_table(result.errors))
    parts.append("</body></html>")
    files["report.html"] = "\n".join(parts).encode("utf-8")
    with staged_folder(out_dir, what="evaluation report") as stage:
        for name, data in files.items():
            atomic_write(stage.put(name), data, fsync=True)
    return out_dir / "report.html"
