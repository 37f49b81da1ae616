"""Export page: COCO, per-class label maps, CVAT XML, YOLO and Pascal VOC as zip downloads, optionally
per split; what a format could not carry is said beside its download."""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path

import streamlit as st

from workbench.domain import SPLITS, WorkbenchError
from workbench.services import export as svc
from workbench.services import formats
from workbench.services.workspace import Workspace
from workbench.ui import context

BLOB_KEY = "wb_export_blob"
OTHER_FORMATS = [name for name in formats.EXPORT_FORMATS if name not in ("coco", "labelmaps")]
"""Formats of the third row (COCO and label maps have their own buttons)."""
COPIES_IMAGES = ("cvat",)
"""Formats whose zip gets ``copy_images`` (YOLO and VOC always hold their images)."""


def zip_name(slug: str, kind: str, splits: list[str]) -> str:
    """Download name that says what is inside: project, kind and the chosen splits."""
    return f"{slug}-{kind}{''.join('-' + x for x in splits)}.zip"


def labelmaps_zip(ws: Workspace, slug: str, layout: str, splits: list[str] | None) -> bytes:
    """The label-map export of the chosen splits, zipped in memory."""
    with tempfile.TemporaryDirectory(prefix="wb-export-") as tmp:
        out = svc.export_labelmaps(ws, slug, Path(tmp) / "labelmaps", layout=layout, splits=splits)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for f in sorted(out.rglob("*")):
                if f.is_file():
                    zf.write(f, f.relative_to(out).as_posix())
        return buf.getvalue()


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
        "Splits (none = every image; one annotation file per split)",
        present,
        key=f"export_splits_{slug}",
        help="Assign splits on the Dataset page.",
    )
    c1, c2 = st.columns(2)
    layout = c2.selectbox("Label-map layout", ["png", "npz"], key="export_layout")
    # A prepared zip belongs to the project and settings it was made with: change either and it goes.
    # It goes too when the user leaves the page: edits made elsewhere (Annotate, Classes, Dataset) are
    # not in it, and coming back offered the old zip as if it were the current data.
    settings = (slug, tuple(splits), layout, context.page_visit())
    if c1.button("Prepare COCO zip", type="primary", key="export_coco"):
        try:
            blob = svc.export_coco_zip(ws, slug, splits=splits or None)
        except (WorkbenchError, ValueError) as exc:
            st.session_state[BLOB_KEY] = {"error": str(exc), "settings": settings}
        else:
            name = zip_name(slug, "coco", splits)
            st.session_state[BLOB_KEY] = {"kind": "coco", "data": blob, "name": name, "settings": settings}
    if c2.button("Prepare label-map zip", key="export_labelmaps"):
        try:
            blob = labelmaps_zip(ws, slug, layout, splits or None)
        except (WorkbenchError, ValueError) as exc:
            st.session_state[BLOB_KEY] = {"error": str(exc), "settings": settings}
        else:
            name = zip_name(slug, "labelmaps", splits)
            st.session_state[BLOB_KEY] = {"kind": "labelmaps", "data": blob, "name": name, "settings": settings}
    c3, c4, c5 = st.columns(3)
    other = c3.selectbox(
        "Other format", OTHER_FORMATS, format_func=lambda n: formats.EXPORT_FORMATS[n].label, key="export_format"
    )
    options: dict = {"splits": splits or None}
    if other in COPIES_IMAGES:
        options["copy_images"] = True
    if other == "yolo":
        options["task"] = c4.selectbox("YOLO task", ["segment", "detect", "pose"], key="export_yolo_task")
    full = (*settings, other, options.get("task"))  # a zip of the third row: its format and task too
    if c5.button(f"Prepare {formats.EXPORT_FORMATS[other].label} zip", key="export_other"):
        try:
            blob, notes = formats.export_zip(ws, slug, other, **options)
        except (WorkbenchError, ValueError) as exc:
            st.session_state[BLOB_KEY] = {"error": str(exc), "settings": full, "other": True}
        else:
            name = zip_name(slug, other, splits)
            st.session_state[BLOB_KEY] = {
                "kind": other, "data": blob, "name": name, "settings": full, "notes": notes, "other": True,
            }  # fmt: skip
    entry = st.session_state.get(BLOB_KEY)
    if entry and entry.get("settings") != (full if entry.get("other") else settings):
        entry = None
    if entry and "error" in entry:
        st.error(entry["error"])
    elif entry:
        if entry.get("notes"):
            st.info("\n".join(f"- {context.md_escape(n)}" for n in entry["notes"]))
        st.download_button(
            f"Download {entry['name']} ({len(entry['data']) / 1024:.0f} KB)",
            entry["data"],
            file_name=entry["name"],
            mime="application/zip",
            key="export_download",
        )
