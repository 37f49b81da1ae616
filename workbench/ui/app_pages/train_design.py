"""Train page, "Detector design": anchors, RoI pooling, heads, sampling and NMS, with the anchor coverage
of the project's training boxes drawn over their size / ratio distribution and "Use fitted anchors"."""

from __future__ import annotations

from typing import Any

import streamlit as st

from workbench.domain import WorkbenchError
from workbench.services import anchors, training
from workbench.services.workspace import Workspace

REPORT_KEY = "train_anchor_report"
SAMPLING = (
    ("rpn_batch_size_per_image", "RPN anchors sampled per image", int),
    ("rpn_positive_fraction", "RPN positive fraction", float),
    ("box_batch_size_per_image", "RoIs sampled per image", int),
    ("box_positive_fraction", "RoI positive fraction", float),
)


def _keys(backbone: str) -> tuple[str, str]:
    """Widget keys of the anchor fields, per backbone (their level count differs)."""
    return f"train_anchor_sizes_{backbone}", f"train_aspect_ratios_{backbone}"


def _use_fitted(backbone: str, fitted: dict[str, Any]) -> None:
    sizes_key, ratios_key = _keys(backbone)
    st.session_state[sizes_key] = anchors.format_sizes(fitted["anchor_sizes"])
    st.session_state[ratios_key] = ", ".join(f"{r:g}" for r in fitted["aspect_ratios"])


def _coverage_rows(report: anchors.AnchorReport) -> list[dict[str, Any]]:
    rows = []
    entries = [("current", report.current)] + ([("fitted", report.fitted)] if report.fitted else [])
    groups = ("all", "per_size", "per_class")
    for group in groups:
        for name, e in entries:
            cov = e["coverage"][group]
            items = {"all": cov}.items() if group == "all" else cov.items()
            for label, r in items:
                rows.append({"anchors": name, "boxes of": label if group != "per_size" else f"size {label}",
                             "boxes": r["boxes"], "IoU ≥ 0.5": round(r["iou>=0.5"], 3), "IoU ≥ 0.7": round(r["iou>=0.7"], 3)})
    return rows


def _anchor_check(ws: Workspace, slug: str, defaults: Any, backbone: str, detector: dict[str, Any]) -> None:
    if st.button("Check the anchors on the training boxes", icon=":material/grid_on:", key="train_anchor_check"):
        try:
            cfg = training.config_with(defaults, backbone=backbone, detector=detector)
            with st.spinner("Fitting anchors to the training boxes…"):
                st.session_state[REPORT_KEY] = (slug, backbone, anchors.anchor_report(ws, slug, cfg, fit=True))
        except (WorkbenchError, ValueError) as exc:
            st.error(str(exc))
    held = st.session_state.get(REPORT_KEY)
    if not held or held[0] != slug or held[1] != backbone:
        st.caption("Coverage: the share of training boxes whose best anchor reaches IoU 0.5 / 0.7 (the RPN "
                   "learns a box from the anchors it overlaps). Press the button to see it and fit anchors.")
        return
    report: anchors.AnchorReport = held[2]
    st.image(anchors.plot_png(report), caption="Training boxes (after the resize) and the anchors, size against aspect ratio")
    st.dataframe(_coverage_rows(report), hide_index=True)
    lines = anchors.summary_lines(report)
    if lines[-1].startswith("note:"):
        st.info(lines[-1][len("note: "):].capitalize())
    if report.fitted is not None:
        st.button("Use fitted anchors", icon=":material/auto_fix_high:", key="train_anchor_use",
                  on_click=_use_fitted, args=(backbone, report.fitted))


def design_settings(ws: Workspace, slug: str, defaults: Any, backbone: str) -> dict[str, Any]:
    """The expander; returns the run config's ``detector`` and sampling settings (unchanged ones as
    their defaults, so a run started without opening it builds the backbone's own model)."""
    if getattr(defaults, "task", "instance") != "instance":
        return {}
    base = anchors.design_defaults(defaults, backbone)
    sizes_key, ratios_key = _keys(backbone)
    with st.expander("Detector design: anchors, RoI pooling, heads", icon=":material/architecture:"):
        c1, c2 = st.columns(2)
        sizes_text = c1.text_input(
            "Anchor sizes per FPN level (px; levels split by ';')", anchors.format_sizes(base["detector.anchor_sizes"]),
            key=sizes_key, help="One size list per level, finest first, the same count at each level; "
            "sizes are sqrt(w x h) on the resized image.")
        ratios_text = c2.text_input("Anchor aspect ratios (height / width)",
                                    ", ".join(f"{r:g}" for r in base["detector.aspect_ratios"]), key=ratios_key)
        c1, c2, c3 = st.columns(3)
        pools = ["roi_align", "roi_pool"]
        pooling = c1.selectbox("RoI pooling", pools, index=pools.index(base["detector.roi_pooling"]), key="train_roi_pool",
                               help="roi_align: bilinear samples at exact positions (Mask R-CNN); roi_pool: the box "
                               "rounded to the feature grid, max per cell (Fast R-CNN). Box, mask and keypoint branches.")
        sampling_ratio = c2.number_input("RoIAlign samples per bin side (0 = adaptive)", 0, 16,
                                         int(base["detector.sampling_ratio"]), key="train_sampling_ratio")
        aligned = c3.checkbox("RoIAlign half-pixel aligned", bool(base["detector.aligned"]), key="train_aligned",
                              help="Detectron2's ROIAlignV2; torchvision's models are trained without it")
        box_size = c1.number_input("Box RoI size", 1, 32, int(base["detector.box_roi_size"]), key="train_box_roi")
        mask_size = c2.number_input("Mask RoI size", 1, 64, int(base["detector.mask_roi_size"]), key="train_mask_roi")
        kp_size = c3.number_input("Keypoint RoI size", 1, 64, int(base["detector.keypoint_roi_size"]), key="train_kp_roi")
        depth = c1.number_input("Mask head convs", 1, 16, int(base["detector.mask_head_depth"]), key="train_mask_depth")
        resolutions = [14, 28, 56]
        resolution = c2.selectbox("Mask resolution", resolutions, index=resolutions.index(base["detector.mask_resolution"]),
                                  key="train_mask_res", help="Mask RoI size x 1, 2 or 4 (upsampling stages)")
        agnostic = c3.checkbox("Class-agnostic masks", bool(base["detector.class_agnostic_masks"]), key="train_agnostic")
        sampling: dict[str, Any] = {}
        cols = st.columns(4)
        for col, (name, label, kind) in zip(cols, SAMPLING, strict=True):
            if kind is int:
                sampling[name] = col.number_input(label, 1, 100_000, int(base[name]), key=f"train_{name}")
            else:
                sampling[name] = col.number_input(label, 0.01, 1.0, float(base[name]), step=0.05, key=f"train_{name}")
        c1, c2, c3, c4 = st.columns(4)
        rpn_nms = c1.number_input("RPN NMS IoU", 0.05, 1.0, float(base["detector.rpn_nms_thresh"]), step=0.05, key="train_rpn_nms")
        box_nms = c2.number_input("Box NMS IoU", 0.05, 1.0, float(base["detector.box_nms_thresh"]), step=0.05, key="train_box_nms")
        score = c3.number_input("Lowest kept score", 0.0, 0.99, float(base["detector.box_score_thresh"]), step=0.01,
                                key="train_score")
        per_img = c4.number_input("Detections per image", 1, 10_000, int(base["detector.detections_per_img"]), key="train_dets")
        detector: dict[str, Any] = {
            "roi_pooling": pooling, "sampling_ratio": int(sampling_ratio), "aligned": bool(aligned),
            "box_roi_size": int(box_size), "mask_roi_size": int(mask_size), "keypoint_roi_size": int(kp_size),
            "mask_resolution": int(resolution), "class_agnostic_masks": bool(agnostic),
            "rpn_nms_thresh": float(rpn_nms), "box_nms_thresh": float(box_nms), "box_score_thresh": float(score),
            "detections_per_img": int(per_img),
            "mask_head_depth": None if int(depth) == base["detector.mask_head_depth"] else int(depth),
        }
        try:  # unchanged: the backbone's own (None); a text that does not parse goes on as text, and the
            # Train button then names the setting
            sizes = anchors.parse_sizes(sizes_text)
            detector["anchor_sizes"] = None if sizes == base["detector.anchor_sizes"] else sizes
        except WorkbenchError as exc:
            st.error(str(exc))
            detector["anchor_sizes"] = sizes_text
        try:
            ratios = anchors.parse_ratios(ratios_text)
            detector["aspect_ratios"] = None if ratios == base["detector.aspect_ratios"] else ratios
        except WorkbenchError as exc:
            st.error(str(exc))
            detector["aspect_ratios"] = ratios_text
        _anchor_check(ws, slug, defaults, backbone, detector)
    # only a changed design goes into the run's config: an untouched one stays the backbone's own
    out: dict[str, Any] = {} if detector == anchors.detector_settings(defaults) else {"detector": detector}
    for name, value in sampling.items():  # an unchanged default stays unset (the backbone's own)
        out[name] = None if value == base[name] and getattr(defaults, name) is None else value
    return out
