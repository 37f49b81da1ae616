"""Annotate page: the browser annotator over one image at a time, saving after every finished action.

The session (one browser tab) remembers which version of the image it loaded; every save presents
that version, so a save after another tab's save is refused (ConflictError) and the user chooses
between reloading and overwriting. The browser's unsaved shapes stay in the tab meanwhile.
"""

from __future__ import annotations

import json
import mimetypes
from dataclasses import replace
from pathlib import Path
from typing import Any

import streamlit as st

from workbench.domain import IMAGE_STATUSES, SPLITS, ConflictError, ImageRecord, WorkbenchError
from workbench.services import annotate as svc
from workbench.services import classes as class_svc
from workbench.services.workspace import Workspace
from workbench.ui import context
from workbench.ui.components.annotator import (
    ANNOTATOR_KEY,
    annotator,
    category_to_payload,
    instance_to_payload,
    payload_to_indexed_instances,
)

STATE = "wb_ann"
"""Session key of the page's state dict (image id, loaded version, epoch, ack, conflict)."""
ALL = "all"
STAGE_HEIGHT_PX = 620
IMAGE_PARAM = "image"
"""``?image=<id>`` in the address bar: a reload (a new session) or a copied link opens that image."""


def _state() -> dict[str, Any]:
    if STATE not in st.session_state:
        st.session_state[STATE] = {
            "slug": None,
            "image_id": None,
            "index": 0,
            "epoch": 0,
            "version": None,
            "loaded": [],
            "canon": "[]",
            "ack": 0,
            "conflict": None,
            "error": None,
            "ids": {},
        }
    return st.session_state[STATE]


def canonical(items: list[dict[str, Any]]) -> str:
    """Comparable form of a shape list, so that unchanged lists are not saved again."""
    keep = ("id", "category", "polygons", "keypoints", "rle", "source", "score")
    return json.dumps([{k: it.get(k) for k in keep} for it in items], sort_keys=True)


def _filters() -> dict[str, Any]:
    status = st.session_state.get("ann_status_filter", ALL)
    split = st.session_state.get("ann_split_filter", ALL)
    return {"status": None if status == ALL else status, "split": None if split == ALL else split}


def load_into_state(ws: Workspace, slug: str, image_id: int, index: int) -> None:
    """Load an image and its shapes as the tab's base version; the browser takes them (new epoch)."""
    s = _state()
    ann = svc.load_image(ws, slug, image_id)
    payload = [instance_to_payload(i) for i in ann.instances]
    s.update(
        slug=slug,
        image_id=image_id,
        index=index,
        version=ann.version,
        loaded=ann.instances,
        canon=canonical(payload),
        conflict=None,
        error=None,
        ids={},
    )
    s["epoch"] += 1


def with_known_ids(items: list[dict[str, Any]], ids: dict[str, int]) -> list[dict[str, Any]]:
    """Items with the row ids this tab already gave their uids (an action may leave the browser
    before the ids of the previous save arrived there)."""
    out = []
    for it in items:
        uid = it.get("uid")
        if uid is not None and it.get("id") is None and uid in ids:
            it = {**it, "id": ids[uid]}
        out.append(it)
    return out


def save_items(ws: Workspace, slug: str, items: list[dict[str, Any]], status: str | None = None) -> bool:
    """Save the browser's shape list against the loaded version; False (and a message) if refused.

    After a save the new rows' ids go back to the browser by shape uid (``data["ids"]``), and the
    saved instances become the base of the next save, so every shape keeps its row id.
    """
    s = _state()
    items = with_known_ids(items, s["ids"])
    canon = canonical(items)
    try:
        if canon == s["canon"] and s["conflict"] is None:
            if status is not None:
                svc.set_status(ws, slug, s["image_id"], status)
            return True
        pairs = payload_to_indexed_instances(items, s["loaded"])
        saved = svc.save_image(
            ws,
            slug,
            s["image_id"],
            [inst for _, inst in pairs],
            expected_version=s["version"],
            status=status,
        )
        s["version"] = saved.version
        s["loaded"] = [replace(inst, id=i) for (_, inst), i in zip(pairs, saved.ids, strict=True)]
        for (n, _), row_id in zip(pairs, saved.ids, strict=True):
            uid = items[n].get("uid")
            if uid is not None:
                s["ids"][str(uid)] = row_id
            items[n] = {**items[n], "id": row_id}
        s["canon"] = canonical(items)
        s["error"] = None
        return True
    except ConflictError as exc:
        s["conflict"] = {"message": str(exc), "items": items, "status": status}
    except (WorkbenchError, ValueError) as exc:
        s["error"] = str(exc)
    return False


def handle_action(ws: Workspace, slug: str, action: dict[str, Any] | None) -> None:
    """One finished action from the browser: save, change status, or save and move to another image."""
    if not isinstance(action, dict):
        return
    s = _state()
    s["ack"] = max(s["ack"], int(action.get("seq") or 0))
    if action.get("image_id") != s["image_id"] or action.get("epoch") != s["epoch"]:
        return  # from an image this tab has already left; its shapes were saved on leaving
    items = list(action.get("instances") or [])
    kind = action.get("kind")
    status = action.get("status") if kind == "status" else None
    if status is not None and status not in IMAGE_STATUSES:
        s["error"] = f"unknown image status {status!r}"
        return
    if s["conflict"] is not None:
        s["conflict"].update(items=items, status=status or s["conflict"].get("status"))
        return
    ok = save_items(ws, slug, items, status=status)
    if ok and kind == "navigate":
        images = svc.list_images(ws, slug, **_filters())
        ids = [im.id for im in images]
        index = ids.index(s["image_id"]) if s["image_id"] in ids else s["index"]
        new_index = min(max(index + int(action.get("delta") or 0), 0), len(ids) - 1)
        if ids:
            load_into_state(ws, slug, ids[new_index], new_index)


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


def _conflict_box(ws: Workspace, slug: str) -> None:
    s = _state()
    c = s["conflict"]
    if c is None:
        return
    st.error(
        f"Not saved: {c['message']}. Your changes to this image are still in this tab. "
        "Reload to take the saved version (your changes are dropped), or overwrite it with yours."
    )
    col1, col2, _ = st.columns([1, 1, 3])
    if col1.button("Reload the saved version", key="ann_conflict_reload"):
        load_into_state(ws, slug, s["image_id"], s["index"])
        st.rerun()
    if col2.button("Overwrite with my version", key="ann_conflict_overwrite"):
        fresh = svc.load_image(ws, slug, s["image_id"])
        s["version"] = fresh.version
        loaded = list(s["loaded"]) + [i for i in fresh.instances if i.id not in {x.id for x in s["loaded"]}]
        s["loaded"] = loaded
        s["conflict"] = None
        s["canon"] = ""
        if save_items(ws, slug, c["items"], status=c.get("status")):
            load_into_state(ws, slug, s["image_id"], s["index"])
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


def _refresh_if_changed(ws: Workspace, slug: str) -> None:
    """Coming back to this page (a full run, not the fragment's): if the image was saved elsewhere
    meanwhile (a prediction accepted on Review, an import, another tab), show that version instead of
    the one this tab loaded before, which would hide the change and make the next save a conflict."""
    s = _state()
    try:
        version = svc.load_image(ws, slug, s["image_id"]).version
    except WorkbenchError:
        s.update(image_id=None, error=None)  # the image is gone: the body picks another
        return
    if version != s["version"]:
        load_into_state(ws, slug, s["image_id"], s["index"])


@st.fragment
def _body(ws: Workspace, slug: str, num_images: int) -> None:
    """Everything below the header. A fragment: an action, a filter or the next image reruns only this,
    not the whole app (sidebar, navigation, project picker), and the browser redraws only this."""
    s = _state()
    c1, c2, c3 = st.columns([1, 1, 3])
    c1.selectbox("Status", [ALL, *IMAGE_STATUSES], key="ann_status_filter")
    c2.selectbox("Split", [ALL, *SPLITS, "unassigned"], key="ann_split_filter")
    images = svc.list_images(ws, slug, **_filters())
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
        format_func=lambda i: f"{i + 1}. {names[i]}",
        key=f"ann_pick_{s['epoch']}",
    )
    if picked != index:
        load_into_state(ws, slug, ids[picked], picked)
        st.rerun(scope="fragment")

    _conflict_box(ws, slug)
    if s["error"]:
        st.error(f"Not saved: {s['error']}")

    rec = images[index]
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
        "instances": [instance_to_payload(i) for i in s["loaded"]],
        "ids": s["ids"],
        "ack_seq": s["ack"],
        "version": s["version"],
        "conflict": s["conflict"] is not None,
        "error": s["error"],
        "height": STAGE_HEIGHT_PX,
    }
    annotator(data, on_action=lambda: _on_action(ws, slug))
    if st.query_params.get(IMAGE_PARAM) != str(rec.id):
        st.query_params[IMAGE_PARAM] = str(rec.id)
    st.caption(
        f"{rec.width}×{rec.height} px · saved version {s['version']} · every finished action is saved; "
        "A/D or the arrows move between images."
    )
