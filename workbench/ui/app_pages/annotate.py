"""Annotate page: the browser annotator over one image at a time, saving after every finished action.

The tab's state and its saves (only what changed; merged shape by shape when the image was saved
elsewhere) are in annotate_saves.py. A watcher notices a newer version within ``WATCH_S`` seconds and
shows it. Messages go below the canvas, so they never move it mid-drawing.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Any

import streamlit as st

from workbench.domain import IMAGE_STATUSES, SPLITS, ImageRecord, WorkbenchError
from workbench.services import annotate as svc
from workbench.services import classes as class_svc
from workbench.services.shape_merge import Clash
from workbench.services.workspace import Workspace
from workbench.ui import context
from workbench.ui.app_pages.annotate_assist import assist_data, on_assist, picker_label, run_picker
from workbench.ui.app_pages.annotate_saves import (
    ALL,
    _state,
    browse_list,
    handle_action,
    load_into_state,
    save_items,
)
from workbench.ui.app_pages.annotate_saves import STATE as STATE  # review.py opens images here
from workbench.ui.app_pages.annotate_team import mine_first, team_panel
from workbench.ui.components.annotator import (
    ANNOTATOR_KEY,
    annotator,
    category_to_payload,
    instance_to_payload,
)
from workbench.ui.components.annotator.tiles import prefetch_tiles, request_tiles, tiles_payload
from workbench.ui.components.image_picker import image_picker

STAGE_HEIGHT_PX = 620
WATCH_S = 2.0
"""How often an open image checks whether it was saved elsewhere (one small query)."""
IMAGE_PARAM = "image"
"""``?image=<id>`` in the address bar: a reload (a new session) or a copied link opens that image."""


def _on_action(ws: Workspace, slug: str) -> None:
    value = st.session_state.get(ANNOTATOR_KEY)
    action = value.get("action") if isinstance(value, dict) else None
    handle_action(ws, slug, action)


def url_image_id() -> int | None:
    """The image id in ``?image=``, or None where there is none or it is not a number."""
    raw = st.query_params.get(IMAGE_PARAM)
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def _media_url(path: Path, role: str) -> str:
    """A media URL for a file (what st.image uses): the browser fetches it once and caches it."""
    from streamlit import runtime

    if not runtime.exists():
        return ""
    mime = mimetypes.guess_type(path.name)[0] or "image/jpeg"
    return runtime.get_instance().media_file_mgr.add(str(path), mime, f"{ANNOTATOR_KEY}.{role}")


def _describe(inst: Any | None) -> str:
    if inst is None:
        return "deleted"
    if inst.rle is not None:
        what = "mask"
    elif inst.polygons:
        what = f"polygon of {sum(len(p) // 2 for p in inst.polygons)} points"
    else:
        what = "box" if inst.bbox_xywh is not None else "shape"
    kp = f", {sum(1 for v in inst.keypoints[2::3] if v)} keypoints" if inst.keypoints else ""
    return f"{inst.category}: {what}{kp}"


def _conflict_box(ws: Workspace, slug: str) -> None:
    """Shapes changed in this tab and elsewhere: both versions (the other one is drawn dashed on the
    canvas), and the user's choice for all of them. Everything else was merged already."""
    s = _state()
    c = s["conflict"]
    if c is None:
        return
    clashes: list[Clash] = c["clashes"]
    lines = "\n".join(
        f"- shape #{k.id}: yours {_describe(k.mine)}; theirs {_describe(k.theirs)}" for k in clashes
    )
    st.error(
        f"Not saved: {len(clashes)} shape{'s' if len(clashes) != 1 else ''} changed here and in another tab "
        f"(theirs is drawn dashed). Your other edits are kept in this tab.\n{lines}"
    )
    col1, col2, _ = st.columns([1, 1, 3])
    choice = None
    if col1.button("Keep mine", key="ann_conflict_mine"):
        choice = "mine"
    if col2.button("Take theirs", key="ann_conflict_theirs"):
        choice = "theirs"
    if choice is not None:
        s["conflict"] = None
        save_items(ws, slug, c["items"], status=c.get("status"), base=c["base"], prefer=choice)
        st.rerun(scope="fragment")


@st.fragment(run_every=WATCH_S)
def _watch(ws: Workspace, slug: str) -> None:
    """Notice a newer version of the open image (saved in another tab or by the CLI) and show it."""
    s = _state()
    if s["image_id"] is None or s["conflict"] is not None or s["slug"] != slug:
        return
    try:
        version = svc.image_version(ws, slug, s["image_id"])
    except WorkbenchError:
        return
    if version != s["version"]:
        st.rerun()


def _image_payload(
    ws: Workspace, slug: str, rec: ImageRecord, index: int, count: int, role: str = "image"
) -> dict[str, Any]:
    assert rec.id is not None
    url = _media_url(svc.image_file(ws, slug, rec.id, "display"), role)
    return {
        "id": rec.id,
        "url": url,
        "width": rec.width,
        "height": rec.height,
        "file_name": rec.file_name,
        "status": rec.status,
        "index": index,
        "count": count,
        "tiles": tiles_payload(slug, rec, ws) if role == "image" else None,
    }


def render() -> None:
    opened = context.project_page("Annotate")
    if opened is None:
        return
    ws, info = opened
    s = _state()
    if s["slug"] != info.slug:
        s.update(slug=info.slug, image_id=None, index=0, conflict=None, error=None)
    elif s["image_id"] is not None and s["conflict"] is None:
        _refresh_if_changed(ws, info.slug)
    _body(ws, info.slug, info.num_images)
    _watch(ws, info.slug)


def _refresh_if_changed(ws: Workspace, slug: str) -> None:
    """Coming back to this page (a full run, not the fragment's): if the image was saved elsewhere
    meanwhile (a prediction accepted on Review, an import, another tab), show that version instead of
    the one this tab loaded before, which would hide the change and make the next save a conflict."""
    s = _state()
    try:
        version = svc.image_version(ws, slug, s["image_id"])
    except WorkbenchError:
        s.update(image_id=None, error=None)  # the image is gone: the body picks another
        return
    if version != s["version"]:
        load_into_state(
            ws, slug, s["image_id"], s["index"], notice=f"Updated to version {version}, saved elsewhere"
        )


@st.fragment
def _body(ws: Workspace, slug: str, num_images: int) -> None:
    """Everything below the header. A fragment: an action, a filter or the next image reruns only this,
    not the whole app (sidebar, navigation, project picker), and the browser redraws only this."""
    s = _state()
    c1, c2, c3, c4 = st.columns([1, 1, 3, 1.5])
    c1.selectbox("Status", [ALL, *IMAGE_STATUSES], key="ann_status_filter")
    c2.selectbox("Split", [ALL, *SPLITS, "unassigned"], key="ann_split_filter")
    next_run = run_picker(ws, slug, c4, key="ann_next_run")  # annotate_assist.py: "label next" order of a run
    images = mine_first(ws, slug, browse_list(ws, slug))  # annotate_team.py: team mode's own jobs first
    if not images:
        if num_images == 0:
            st.info("This project has no images yet. Add some on the **Import** page.")
            st.page_link(context.PAGE_PATHS["import"], label="Go to Import", icon=":material/upload:")
        else:
            st.info("No image matches these filters. Choose *all* to see every image.")
        return
    cats = class_svc.list_categories(ws, slug)
    if not cats:
        st.warning("This project has no classes yet: add one on the **Classes** page before drawing.")
    ids = [im.id for im in images]
    if s["image_id"] not in ids:
        wanted = url_image_id()
        index = ids.index(wanted) if wanted in ids else min(s["index"], len(ids) - 1)
        load_into_state(ws, slug, ids[index], index)
    index = ids.index(s["image_id"])
    s["index"] = index
    names = [im.file_name for im in images]
    picked = c3.selectbox(
        "Image",
        range(len(ids)),
        index=index,
        format_func=lambda i: picker_label(ids[i], names[i], i),
        # a new widget whenever the list changes (a filter): a kept value would be an index into the old list
        key=f"ann_pick_{s['epoch']}_{hash((tuple(ids), next_run))}",
    )
    if picked != index:
        load_into_state(ws, slug, ids[picked], picked)
        st.rerun(scope="fragment")

    rec = images[index]
    prefetch_tiles(ws, slug, images[index : index + 2])  # native-pixel tiles cut before the first zoom
    # the browser decodes the neighbours ahead and shows one the moment the user moves to it
    neighbours = {
        str(d): _image_payload(ws, slug, images[index + d], index + d, len(ids), f"image{d:+d}")
        for d in (1, -1)
        if 0 <= index + d < len(ids)
    }
    data = {
        "epoch": s["epoch"],
        "image": _image_payload(ws, slug, rec, index, len(ids)),
        "neighbours": neighbours,
        "categories": [category_to_payload(c) for c in cats],
        "ids": s["ids"],
        "resync": s["resync"],
        "ack_seq": s["ack"],
        "version": s["version"],
        "conflict": s["conflict"] is not None,
        "ghosts": [instance_to_payload(k.theirs) for k in s["conflict"]["clashes"] if k.theirs is not None]
        if s["conflict"] is not None
        else [],
        "notice": s["notice"],
        "error": s["error"],
        "height": STAGE_HEIGHT_PX,
        "project": slug,  # shape_tools.js: per-shape hide and lock kept in the browser per project
    }
    data.update(assist_data(ws, slug))  # annotate_assist.py: the assist bar's options and last answer
    if s["sent_epoch"] != s["epoch"]:  # the shapes go to the browser once per epoch, not on every save
        data["instances"] = s["payload"]
        s["sent_epoch"] = s["epoch"]
    annotator(
        data,
        on_action=lambda: _on_action(ws, slug),
        on_tiles=lambda: request_tiles(ws, slug, _state()["image_id"]),
        on_assist=lambda: on_assist(ws, slug),
    )
    # below the canvas: a message never pushes the stage down under the user's pointer
    _conflict_box(ws, slug)
    team_panel(ws, slug, rec)  # annotate_team.py: the job's review stage, comments and history
    if s["error"]:
        st.error(f"Not saved: {s['error']}")
    picked = image_picker(images, index, lambda image_id: svc.image_file(ws, slug, image_id, "thumb"))
    if picked is not None and picked != index:
        load_into_state(ws, slug, ids[picked], picked)
        st.rerun(scope="fragment")
    if st.query_params.get(IMAGE_PARAM) != str(rec.id):
        st.query_params[IMAGE_PARAM] = str(rec.id)
    st.caption(
        f"{rec.width}×{rec.height} px · saved version {s['version']} · every finished action is saved; "
        "A/D or the arrows move between images."
    )
