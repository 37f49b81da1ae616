"""Dataset page: thumbnails with filters, per-class counts, and split assignment."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import streamlit as st
from PIL import Image

from workbench.domain import IMAGE_STATUSES, SPLITS, WorkbenchError
from workbench.services import annotate as svc
from workbench.services import classes as class_svc
from workbench.services import dataset as ds_svc
from workbench.ui import context
from workbench.ui.app_pages import annotate as annotate_page
from workbench.ui.app_pages.annotate_assist import next_tab

ALL = "all"
PER_PAGE = 48
COLS = 6
FLASH_KEY = "ds_flash"
THUMB_BOX_WH = (256, 192)
"""Every grid cell shows its thumbnail in a box of this size (4:3), so rows line up whatever the
images' aspect ratios (a panorama and a portrait made rows of uneven height)."""
THUMB_FILL = (232, 234, 239)


def letterbox(img: Image.Image, box_wh: tuple[int, int] = THUMB_BOX_WH) -> Image.Image:
    """The image scaled to fit ``box_wh`` (aspect kept) and centred on a neutral background of
    exactly that size."""
    bw, bh = box_wh
    w, h = img.size
    scale = min(bw / max(w, 1), bh / max(h, 1))
    fit_wh = (max(1, round(w * scale)), max(1, round(h * scale)))
    out = Image.new("RGB", box_wh, THUMB_FILL)
    shown = img.convert("RGB").resize(fit_wh, Image.Resampling.BILINEAR)
    out.paste(shown, ((bw - fit_wh[0]) // 2, (bh - fit_wh[1]) // 2))
    return out


@st.cache_data(max_entries=1024, show_spinner=False)
def _boxed_thumb(path: str, mtime_ns: int) -> bytes:
    """A thumbnail letterboxed to :data:`THUMB_BOX_WH`, as JPEG bytes (cached per file version)."""
    del mtime_ns  # part of the cache key only: a rewritten thumbnail is boxed again
    with Image.open(path) as img:
        buf = io.BytesIO()
        letterbox(img).save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def filters_to_kwargs(split: str, status: str, class_id: int | None, unannotated: str) -> dict[str, Any]:
    """The filter widgets' values as list_images keyword arguments."""
    return {
        "split": None if split == ALL else split,
        "status": None if status == ALL else status,
        "category_id": class_id,
        "unannotated": {"only unannotated": True, "only annotated": False}.get(unannotated),
    }


def _counts(ws: Any, slug: str) -> None:
    stats = ds_svc.project_stats(ws, slug)
    rows = [{"class": name, **vals} for name, vals in stats["classes"].items()]
    if not rows:
        return
    st.subheader("Per-class counts")
    c1, c2 = st.columns([3, 2])
    c1.bar_chart({r["class"]: r["instances"] for r in rows}, horizontal=True, x_label="instances")
    c2.dataframe(rows, hide_index=True, width="stretch")
    splits = stats.get("splits") or {}
    if splits:
        c2.caption("Images per split: " + ", ".join(f"{k} {v}" for k, v in splits.items()))


def _done(message: str) -> None:
    """After a change of splits: rerun so the grid, counts and filters above show it, then say so."""
    st.session_state[FLASH_KEY] = message
    st.rerun()


def _splits(ws: Any, slug: str, images: list[Any]) -> None:
    st.subheader("Assign splits")
    flash = st.session_state.pop(FLASH_KEY, None)
    if flash:
        st.success(flash)
    c1, c2 = st.columns(2)
    with c1.form("split_selected"):
        names = {im.id: im.file_name for im in images}
        chosen = st.multiselect(
            "Images (from the filtered list)", list(names), format_func=lambda i: names[i]
        )
        target = st.selectbox("Split", [*SPLITS, "unassigned"])
        everything = st.checkbox(f"All {context.plural(len(images), 'filtered image')}")
        if st.form_submit_button("Assign"):
            ids = list(names) if everything else chosen
            if not ids:
                st.warning("Pick images first (or tick the box for all filtered images).")
            else:
                svc.set_split(ws, slug, ids, None if target == "unassigned" else target)
                _done(f"{context.plural(len(ids), 'image')} → {target}")
    with c2.form("auto_split"):
        st.caption("Automatic stratified split by class presence (deterministic for a seed).")
        a, b, c = st.columns(3)
        tr = a.number_input("train %", 0, 100, 80)
        va = b.number_input("val %", 0, 100, 10)
        te = c.number_input("test %", 0, 100, 10)
        only_new = st.checkbox("Only images without a split", value=True)
        seed = st.number_input("Seed", 0, 10_000, 0)
        if st.form_submit_button("Split automatically"):
            total = tr + va + te
            if total <= 0:
                st.error("The percentages must add up to more than 0.")
            else:
                try:
                    counts = ds_svc.split_project(
                        ws,
                        slug,
                        ratios=(tr / total, va / total, te / total),
                        seed=int(seed),
                        only_unassigned=only_new,
                    )
                except (WorkbenchError, ValueError) as exc:
                    st.error(str(exc))
                else:
                    _done("Assigned: " + (", ".join(f"{k} {v}" for k, v in counts.items()) or "nothing"))


def _grid(ws: Any, slug: str, images: list[Any]) -> None:
    pages = max(1, -(-len(images) // PER_PAGE))
    page = st.number_input(f"Page (of {pages})", 1, pages, 1) if pages > 1 else 1
    chunk = images[(page - 1) * PER_PAGE : page * PER_PAGE]
    for start in range(0, len(chunk), COLS):
        cols = st.columns(COLS)
        for col, im in zip(cols, chunk[start : start + COLS], strict=False):
            with col:
                thumb = Path(svc.image_file(ws, slug, im.id, "thumb"))
                st.image(_boxed_thumb(str(thumb), thumb.stat().st_mtime_ns), width="stretch")
                st.caption(f"{im.file_name}  \n{im.status.replace('_', ' ')} · {im.split or 'no split'}")
                if st.button("Annotate", key=f"ds_open_{im.id}"):
                    idx = [i.id for i in svc.list_images(ws, slug)].index(im.id)
                    st.session_state["ann_status_filter"] = annotate_page.ALL
                    st.session_state["ann_split_filter"] = annotate_page.ALL
                    annotate_page.load_into_state(ws, slug, im.id, idx)
                    st.switch_page(context.PAGE_PATHS["annotate"])


def render() -> None:
    opened = context.project_page("Dataset")
    if opened is None:
        return
    ws, info = opened
    slug = info.slug
    if info.num_images == 0:
        st.info("No images yet. Add some on the **Import** page.")
        st.page_link(context.PAGE_PATHS["import"], label="Go to Import", icon=":material/upload:")
        return
    cats = class_svc.list_categories(ws, slug)
    cat_names = {c.id: c.name for c in cats}
    c1, c2, c3, c4 = st.columns(4)
    split = c1.selectbox("Split", [ALL, *SPLITS, "unassigned"], key="ds_split")
    status = c2.selectbox("Status", [ALL, *IMAGE_STATUSES], key="ds_status")
    class_id = c3.selectbox(
        "Class",
        [None, *cat_names],
        format_func=lambda i: "all" if i is None else cat_names[i],
        key="ds_class",
    )
    unannotated = c4.selectbox("Annotations", [ALL, "only annotated", "only unannotated"], key="ds_unann")
    images = svc.list_images(ws, slug, **filters_to_kwargs(split, status, class_id, unannotated))
    st.caption(
        f"{len(images)} of {context.plural(info.num_images, 'image')} match{'es' if len(images) == 1 else ''}"
    )
    tab_grid, tab_counts, tab_split, tab_next = st.tabs(["Images", "Counts", "Splits", "Label next"])
    with tab_grid:
        if images:
            _grid(ws, slug, images)
        else:
            st.info("No image matches these filters.")
    with tab_counts:
        _counts(ws, slug)
    with tab_split:
        _splits(ws, slug, images)
    with tab_next:
        next_tab(ws, slug)  # annotate_assist.py: the unlabelled images in a run's "label next" order
