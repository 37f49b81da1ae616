"""Export page: COCO zip and per-class label-map zip downloads, optionally per split."""

from __future__ import annotations

import streamlit as st

from workbench.domain import SPLITS, WorkbenchError
from workbench.services import export as svc
from workbench.ui import context

BLOB_KEY = "wb_export_blob"


def render() -> None:
    opened = context.project_page("Export")
    if opened is None:
        return
    ws, info = opened
    slug = info.slug
    if info.num_annotations == 0:
        st.info(
            f"Project {info.name!r} has no annotations to export yet. Draw some on the **Annotate** page "
            "or import COCO / LabelMe files."
        )
    present = [s for s in SPLITS if (info.split_counts or {}).get(s)]
    splits = st.multiselect(
        "Splits (none = every image, one file)",
        present,
        key="export_splits",
        help="Assign splits on the Dataset page.",
    )
    c1, c2 = st.columns(2)
    if c1.button("Prepare COCO zip", type="primary", key="export_coco"):
        try:
            blob = svc.export_coco_zip(ws, slug, splits=splits or None)
        except (WorkbenchError, ValueError) as exc:
            st.session_state[BLOB_KEY] = {"error": str(exc)}
        else:
            st.session_state[BLOB_KEY] = {"kind": "coco", "data": blob, "name": f"{slug}-coco.zip"}
    layout = c2.selectbox("Label-map layout", ["png", "npz"], key="export_layout")
    if c2.button("Prepare label-map zip", key="export_labelmaps"):
        try:
            blob = svc.export_labelmaps_zip(ws, slug, layout=layout)
        except (WorkbenchError, ValueError) as exc:
            st.session_state[BLOB_KEY] = {"error": str(exc)}
        else:
            st.session_state[BLOB_KEY] = {"kind": "labelmaps", "data": blob, "name": f"{slug}-labelmaps.zip"}
    entry = st.session_state.get(BLOB_KEY)
    if entry and "error" in entry:
        st.error(entry["error"])
    elif entry:
        st.download_button(
            f"Download {entry['name']} ({len(entry['data']) / 1024:.0f} KB)",
            entry["data"],
            file_name=entry["name"],
            mime="application/zip",
            key="export_download",
        )
