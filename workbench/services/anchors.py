"""Anchor report: how well a run's anchors reach the project's training boxes, and a fit that reaches more.

The Train page (plot, "use fitted anchors") and `workbench anchors` call :func:`anchor_report`. The
boxes are the train split's (every labelled image when nothing is split), resized as the model
resizes them, so the figures are those of the run the settings would start.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workbench.domain import ValidationError, WorkbenchError
from workbench.services.permissions import requires
from workbench.services.training import config_with, default_config, training_splits
from workbench.services.workspace import Workspace
from workbench.train import anchors as anchor_fit
from workbench.train.config import TrainConfig
from workbench.train.detector import BACKBONE_STRIDES, architecture_settings, input_size


@dataclass(frozen=True)
class AnchorReport:
    """Coverage of the current anchors (and the fitted ones when asked), with the boxes for the plot."""

    project: str
    backbone: str
    input_size: tuple[int, int]
    boxes: anchor_fit.BoxSet
    current: dict[str, Any]
    fitted: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "project": self.project, "backbone": self.backbone,
            "input_size": {"min_size": self.input_size[0], "max_size": self.input_size[1]},
            "boxes": len(self.boxes), "strides": list(BACKBONE_STRIDES[self.backbone]), "current": self.current,
        }
        if self.fitted is not None:
            out["fitted"] = self.fitted
        return out

    def fitted_detector(self) -> dict[str, Any]:
        """The ``detector`` settings that use the fitted anchors (for :func:`use_fitted`)."""
        if self.fitted is None:
            raise ValidationError("no fitted anchors: run the report with fit=True")
        return {"anchor_sizes": self.fitted["anchor_sizes"], "aspect_ratios": self.fitted["aspect_ratios"]}


def _entry(boxes: anchor_fit.BoxSet, sizes: Any, ratios: Any, strides: Any) -> dict[str, Any]:
    return {"anchor_sizes": [list(lv) for lv in sizes], "aspect_ratios": list(ratios),
            "coverage": anchor_fit.coverage(boxes, sizes, ratios, strides)}


@requires("project.read")
def anchor_report(ws: Workspace, slug: str, config: TrainConfig | None = None, *, fit: bool = False) -> AnchorReport:
    """The coverage of ``config``'s anchors (the project's defaults without one) on the training boxes."""
    train, _ = training_splits(ws, slug)
    config = config or default_config(len(train.items), ws=ws, slug=slug)
    if config.backbone not in BACKBONE_STRIDES:
        raise ValidationError(f"backbone {config.backbone!r} has no anchors to report")
    lo, hi = input_size(config.backbone, config.min_size, config.max_size)
    boxes = anchor_fit.resized_boxes(train.items, lo, hi)
    strides = BACKBONE_STRIDES[config.backbone]
    sizes, ratios = config.detector.anchors_for(config.backbone)
    current = _entry(boxes, sizes, ratios, strides)
    fitted = None
    if fit:
        f_sizes, f_ratios = anchor_fit.fit_anchors(boxes, sizes, ratios, strides, seed=config.seed)
        fitted = _entry(boxes, f_sizes, f_ratios, strides)
    return AnchorReport(slug, config.backbone, (lo, hi), boxes, current, fitted)


def use_fitted(config: TrainConfig, report: AnchorReport) -> TrainConfig:
    """``config`` with the report's fitted anchors (its other detector settings kept)."""
    return config_with(config, detector={**config.detector.to_dict(), **report.fitted_detector()})


@requires("project.read")
def config_from_file(ws: Workspace, slug: str, path: Path) -> TrainConfig:
    """The project's default training config with a JSON file's settings over it (as `workbench train --config`)."""
    path = Path(path)
    if path.exists() and not path.is_file():
        raise WorkbenchError(f"{path}: not a regular file, not read")
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, RecursionError) as exc:
        raise WorkbenchError(f"{path}: cannot read the training config ({type(exc).__name__}: {exc})") from None
    if not isinstance(data, dict):
        raise WorkbenchError(f"{path}: a training config is a JSON object, got {type(data).__name__}")
    train, _ = training_splits(ws, slug)
    return TrainConfig.from_dict({**default_config(len(train.items), ws=ws, slug=slug).to_dict(), **data}, where=str(path))


def summary_lines(report: AnchorReport) -> list[str]:
    """The report as text: one block per anchor set, shares at IoU 0.5 / 0.7 overall, per size, per class."""
    lo, hi = report.input_size
    lines = [f"{report.project}: {len(report.boxes)} training boxes, {report.backbone} at min_size {lo}, max_size {hi} "
             f"(grid strides {list(BACKBONE_STRIDES[report.backbone])})"]
    entries = [("current", report.current)] + ([("fitted", report.fitted)] if report.fitted else [])
    for name, e in entries:
        cov = e["coverage"]
        lines.append(f"{name} anchors: sizes {e['anchor_sizes']}, aspect ratios (h/w) {e['aspect_ratios']}")
        lines.append(f"  {'':16} {'boxes':>6} {'IoU>=0.5':>9} {'IoU>=0.7':>9}")
        rows = [("all", cov["all"])] + [(f"size {k}", v) for k, v in cov["per_size"].items()] \
            + [(f"class {k}", v) for k, v in cov["per_class"].items()]
        for label, r in rows:
            lines.append(f"  {label[:16]:16} {r['boxes']:6d} {r['iou>=0.5']:9.1%} {r['iou>=0.7']:9.1%}")
    finest = BACKBONE_STRIDES[report.backbone][0]
    sizes = report.boxes.sizes()
    if len(sizes) and (sizes < finest).mean() > 0.1:
        lines.append(f"note: {(sizes < finest).mean():.0%} of the boxes are smaller than the finest grid's "
                     f"{finest} px: a larger min_size (upscaling) reaches them better than any anchor")
    return lines


def plot_png(report: AnchorReport) -> bytes:
    """Box size against aspect ratio (log-log), one dot per box, with each anchor drawn over them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=100)
    try:
        if len(report.boxes):
            ax.scatter(report.boxes.sizes(), report.boxes.ratios(), s=6, alpha=0.35, color="#555555",
                       label=f"boxes ({len(report.boxes)})")
        for name, e, marker, color in (("current", report.current, "x", "#d62728"),
                                       ("fitted", report.fitted, "+", "#2ca02c")):
            if e is None:
                continue
            pts = np.array([(s, r) for lv in e["anchor_sizes"] for s in lv for r in e["aspect_ratios"]])
            ax.scatter(pts[:, 0], pts[:, 1], s=110, marker=marker, linewidths=2.2, color=color,
                       label=f"{name} anchors ({e['coverage']['all']['iou>=0.5']:.0%} at IoU 0.5)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("size: sqrt(w x h), px of the resized image")
        ax.set_ylabel("aspect ratio h / w")
        ax.grid(True, which="both", alpha=0.25)
        ax.legend(loc="best", fontsize=8)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        return buf.getvalue()
    finally:
        plt.close(fig)


def design_defaults(config: TrainConfig, backbone: str) -> dict[str, Any]:
    """The architecture settings ``config`` gives ``backbone``, the backbone's own filled in (Train page)."""
    return architecture_settings({**config.to_dict(), "backbone": backbone})


def detector_settings(config: TrainConfig) -> dict[str, Any]:
    """``config``'s detector settings as JSON (what the Train page compares its fields with)."""
    return config.detector.to_dict()


def format_sizes(sizes: Any) -> str:
    """Anchor sizes per level as the Train page writes them: levels split by ';', sizes by ','."""
    return "; ".join(", ".join(f"{float(s):g}" for s in lv) for lv in sizes)


def parse_sizes(text: str) -> list[list[float]]:
    """'16; 32; 64' -> [[16], [32], [64]]; a value that is not a number names the setting."""
    try:
        return [[float(s) for s in lv.split(",") if s.strip()] for lv in text.split(";") if lv.strip()]
    except ValueError:
        raise ValidationError(f"detector.anchor_sizes: {text!r} is not sizes per level like '16; 32; 64; 128'") from None


def parse_ratios(text: str) -> list[float]:
    """'0.5, 1, 2' -> [0.5, 1.0, 2.0]."""
    try:
        return [float(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ValidationError(f"detector.aspect_ratios: {text!r} is not ratios like '0.5, 1, 2'") from None
