"""Import page: images (files or zips), a folder on the server, COCO and LabelMe (uploads or paths), and
every other format the CLI imports (YOLO, VOC, CVAT, Label Studio, mask PNGs) by path; with the full report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from workbench.domain import WorkbenchError
from workbench.services import formats, uploads
from workbench.services import imports as svc
from workbench.services.workspace import Workspace
from workbench.ui import context

REPORT_KEY = "wb_import_report"


def _progress_bar() -> Any:
    bar = st.progress(0.0, text="Importing…")

    def update(done: int, total: int) -> None:
        bar.progress(done / max(total, 1), text=f"Importing… {done}/{total}")

    return update


def _typed(text: str, what: str) -> bool:
    """True when a path was typed; else a warning saying what to type."""
    if text.strip():
        return True
    st.warning(f"Type the path of {what} first.")
    return False


def _run(kind: str, fn: Any, slug: str) -> None:
    try:
        report = fn()
    except (WorkbenchError, ValueError, OSError) as exc:
        st.session_state[REPORT_KEY] = {"kind": kind, "slug": slug, "error": str(exc)}
    else:
        st.session_state[REPORT_KEY] = {"kind": kind, "slug": slug, "report": report}
    st.session_state["wb_upload_gen"] = st.session_state.get("wb_upload_gen", 0) + 1
    st.rerun()


def show_report(slug: str) -> None:
    """The last import's report, in the project it was made in only (another project's counts and
    skipped files read as if they were this one's)."""
    entry = st.session_state.get(REPORT_KEY)
    if not entry or entry.get("slug") != slug:
        return
    if "error" in entry:
        st.error(f"Import failed: {entry['error']}")
        return
    report = entry["report"]
    (st.success if report.imported or report.annotations else st.warning)(report.summary())
    if report.skipped:
        st.error(
            f"{context.plural(len(report.skipped), 'file')} {'was' if len(report.skipped) == 1 else 'were'} skipped:\n"
            + "\n".join(
                f"- **{context.md_escape(s.name)}**: {context.md_escape(s.reason)}" for s in report.skipped
            )
        )
    if report.duplicates:
        with st.expander(f"{len(report.duplicates)} already in the project (same content)"):
            st.write(", ".join(report.duplicates))
    if report.warnings:  # one box; user text (class and file names) shown literally
        st.warning("\n".join(f"- {context.md_escape(w)}" for w in report.warnings))


def render() -> None:
    opened = context.project_page("Import")
    if opened is None:
        return
    ws, info = opened
    slug = info.slug
    with st.container():  # always there, so the tabs below keep their place (and their open tab)
        show_report(slug)
    gen = st.session_state.get("wb_upload_gen", 0)
    tab_img, tab_dir, tab_coco, tab_lm, tab_more = st.tabs(
        ["Images", "Folder on this machine", "COCO", "LabelMe", "YOLO, VOC, CVAT, Label Studio, masks"],
        key="import_tab",
        on_change="rerun",
    )
    with tab_img:
        files = st.file_uploader(
            "Images (JPEG, PNG, TIFF, BMP, WebP) or zip archives of them",
            accept_multiple_files=True,
            key=f"img_upload_{gen}",
        )
        if st.button("Import images", type="primary", disabled=not files, key="import_images"):
            _run("images", lambda: uploads.import_image_uploads(ws, slug, list(files or []), _progress_bar()), slug)
    with tab_dir:
        folder = st.text_input("Folder or zip path on the machine running the workbench", key="import_folder")
        # Path buttons are never disabled: a text input commits on Enter or blur, so a button disabled
        # while the path was typed swallowed the first click (the blur re-enabled it, too late).
        if st.button("Import from path", key="import_path"):
            path = Path(folder.strip()).expanduser()
            if not folder.strip():
                st.warning("Type the path of a folder or zip first.")
            elif not path.exists():
                st.error(f"{path}: no such file or folder")
            else:
                _run("images", lambda: svc.import_images(ws, slug, [path], progress=_progress_bar()), slug)
    with tab_coco:
        st.caption(
            "A COCO JSON file (its images must already be in the project, matched by file name), or a zip "
            "with the JSON and the images, or a folder path (per-split annotations/*.json layouts too)."
        )
        coco = st.file_uploader("COCO JSON or zip", type=["json", "zip"], key=f"coco_upload_{gen}")
        if st.button("Import COCO upload", disabled=coco is None, key="import_coco_upload"):
            _run("coco", lambda: uploads.import_annotation_upload(ws, slug, "coco", coco, _progress_bar()), slug)
        coco_path = st.text_input("…or a COCO file/folder path", key="coco_path")
        if st.button("Import COCO path", key="import_coco_path") and _typed(coco_path, "a COCO file or folder"):
            _run(
                "coco",
                lambda: svc.import_coco(ws, slug, Path(coco_path.strip()).expanduser(), progress=_progress_bar()),
                slug,
            )
    with tab_lm:
        st.caption("A zip of a LabelMe folder (JSON files next to their images), or a folder path.")
        lm = st.file_uploader("LabelMe zip or JSON", type=["zip", "json"], key=f"lm_upload_{gen}")
        if st.button("Import LabelMe upload", disabled=lm is None, key="import_lm_upload"):
            _run("labelme", lambda: uploads.import_annotation_upload(ws, slug, "labelme", lm, _progress_bar()), slug)
        lm_path = st.text_input("…or a LabelMe folder path", key="lm_path")
        if st.button("Import LabelMe path", key="import_lm_path") and _typed(lm_path, "a LabelMe folder"):
            _run(
                "labelme",
                lambda: svc.import_labelme(ws, slug, Path(lm_path.strip()).expanduser(), progress=_progress_bar()),
                slug,
            )
    with tab_more:
        _other_formats(ws, slug)


OTHER_FORMATS = [name for name in formats.IMPORT_FORMATS if name not in ("coco", "labelme")]
"""The formats of the last tab (COCO and LabelMe have their own, with uploads)."""


def _other_formats(ws: Workspace, slug: str) -> None:
    """One format at a time from the formats table, with the options that format takes."""
    name = st.selectbox(
        "Format",
        OTHER_FORMATS,
        format_func=lambda n: formats.IMPORT_FORMATS[n].label,
        key="import_format",
    )
    fmt = formats.import_format(name)
    st.caption(f"Path on the machine running the workbench: {fmt.path_hint}.")
    path = st.text_input("Path", key=f"import_format_path_{name}")
    options: dict[str, Any] = {}
    if "images_dir" in fmt.options:
        images_dir = st.text_input(
            "Images folder" + ("" if fmt.needs_images_dir else " (default: beside the annotations)"),
            key=f"import_format_images_{name}",
        )
        options["images_dir"] = images_dir.strip() or None
    if "classes" in fmt.options:
        classes = st.text_input("Class list (default: classes.txt beside the masks)", key=f"import_format_classes_{name}")
        options["classes"] = classes.strip() or None
    if "one_per_class" in fmt.options:
        options["one_per_class"] = st.checkbox(
            "One instance per class per image (not one per connected blob)", key=f"import_format_one_{name}"
        )
    if "split" in fmt.options:
        split = st.selectbox("Split of the new images", ["(none)", "train", "val", "test"], key=f"import_format_split_{name}")
        options["split"] = None if split == "(none)" else split
    if st.button(f"Import {fmt.label}", key="import_format_run") and _typed(path, fmt.path_hint):
        if fmt.needs_images_dir and not options.get("images_dir"):
            st.warning("Type the images folder too: the masks are matched to those images by name.")
            return
        _run(
            name,
            lambda: formats.run_import(ws, slug, name, path.strip(), progress=_progress_bar(), **options),
            slug,
        )
