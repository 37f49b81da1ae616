"""Annotate page: the browser annotator over one image at a time, saving after every finished action.

The session (one browser tab) remembers which version of the image it loaded, and the shapes of
that version (the base). A save that meets a newer version (another tab, the CLI, Review) is merged
shape by shape (services.shape_merge): edits to different shapes go through, and only a shape both
sides changed asks the user, with both versions shown. A watcher notices a newer version within
``WATCH_S`` seconds and shows it. Messages go below the canvas, so they never move it mid-drawing.
"""

from __future__ import annotations

import json
import mimetypes
from pathlib import Path
from typing import Any

import streamlit as st

from workbench.domain import IMAGE_STATUSES, SPLITS, ConflictError, ImageRecord, WorkbenchError
from workbench.services import annotate as svc
from workbench.services import classes as class_svc
from workbench.services.shape_merge import Clash, merge_shapes
from workbench.services.workspace import Workspace
from workbench.ui import context
from workbench.ui.components.annotator import (
    ANNOTATOR_KEY,
    annotator,
    category_to_payload,
    instance_to_payload,
    payload_to_indexed_instances,
)
from workbench.ui.components.annotator.tiles import request_tiles, tiles_payload
from workbench.ui.components.image_picker import image_picker

STATE = "wb_ann"
"""Session key of the page's state dict (image id, loaded version, epoch, ack, conflict)."""
ALL = "all"
STAGE_HEIGHT_PX = 620
WATCH_S = 2.0
"""How often an open image checks whether it was saved elsewhere (one small query)."""
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
            "bases": {},
            "notice": None,
        }
    return st.session_state[STATE]


def canonical(items: list[dict[str, Any]]) -> str:
    """Comparable form of a shape list, so that unchanged lists are not saved again."""
    keep = (
        "id",
        "category",
        "polygons",
        "keypoints",
        "rle",
        "mask",
        "source",
        "score",
        "attributes",
        "z_order",
        "box",
    )
    return json.dumps([{k: it.get(k) for k in keep} for it in items], sort_keys=True)


def _filters() -> dict[str, Any]:
    status = st.session_state.get("ann_status_filter", ALL)
    split = st.session_state.get("ann_split_filter", ALL)
    return {"status": None if status == ALL else status, "split": None if split == ALL else split}


def load_into_state(ws: Workspace, slug: str, image_id: int, index: int, notice: str | None = None) -> None:
    """Load an image and its shapes as the tab's base version; the browser takes them (new epoch).

    Reloading the same image keeps the bases of its earlier epochs and the row ids given to the
    browser's shapes: an action the browser sent before it got the new epoch is merged, not lost.
    """
    s = _state()
    ann = svc.load_image(ws, slug, image_id)
    payload = [instance_to_payload(i) for i in ann.instances]
    same = s["image_id"] == image_id and s["slug"] == slug
    s.update(
        slug=slug,
        image_id=image_id,
        index=index,
        version=ann.version,
        loaded=ann.instances,
        canon=canonical(payload),
        conflict=None,
        error=None,
        ids=s["ids"] if same else {},
        bases=s["bases"] if same else {},
        notice=notice,
    )
    s["epoch"] += 1
    s["bases"][s["epoch"]] = ann.instances


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


def save_items(
    ws: Workspace,
    slug: str,
    items: list[dict[str, Any]],
    status: str | None = None,
    *,
    base: list[Any] | None = None,
    prefer: str | None = None,
) -> bool:
    """Save the browser's shape list; False (and a message) if refused or a shape clashes.

    ``base`` is what the browser's list was edited from when that is not the loaded version (an
    action sent before the browser got a newer epoch); such a list, and any save that meets a newer
    version, is merged with the stored shapes. After a plain save the new rows' ids go back to the
    browser by shape uid (``data["ids"]``), and the saved instances become the base of the next save.
    """
    s = _state()
    items = with_known_ids(items, s["ids"])
    canon = canonical(items)
    try:
        if base is None and prefer is None and canon == s["canon"] and s["conflict"] is None:
            if status is not None:
                svc.set_status(ws, slug, s["image_id"], status)
            return True
        pairs = payload_to_indexed_instances(items, s["loaded"] if base is None else base)
        if base is None and prefer is None:
            try:
                saved = svc.save_image(
                    ws,
                    slug,
                    s["image_id"],
                    [inst for _, inst in pairs],
                    expected_version=s["version"],
                    status=status,
                )
            except ConflictError:
                return _merge_and_save(ws, slug, s["loaded"], items, pairs, status, prefer)
            s["version"] = saved.version
            s["loaded"] = saved.instances
            s["bases"][s["epoch"]] = saved.instances
            for (n, _), row_id in zip(pairs, saved.ids, strict=True):
                uid = items[n].get("uid")
                if uid is not None:
                    s["ids"][str(uid)] = row_id
                items[n] = {**items[n], "id": row_id}
            s["canon"] = canonical(items)
            s["error"] = None
            return True
        return _merge_and_save(ws, slug, s["loaded"] if base is None else base, items, pairs, status, prefer)
    except (WorkbenchError, ValueError) as exc:
        s["error"] = str(exc)
    return False


def _merge_and_save(
    ws: Workspace,
    slug: str,
    base: list[Any],
    items: list[dict[str, Any]],
    pairs: list[tuple[int, Any]],
    status: str | None,
    prefer: str | None,
) -> bool:
    """Merge the browser's shapes with the stored ones and save; a clash waits for the user's choice.

    ``prefer`` ('mine' or 'theirs') is that choice. A success reloads the image (new epoch), so the
    browser shows the merged shapes.
    """
    s = _state()
    mine = [inst for _, inst in pairs]
    for _ in range(3):  # another save may land between our read and our write: merge again
        fresh = svc.load_image(ws, slug, s["image_id"])
        merged = merge_shapes(base, mine, fresh.instances)
        if merged.clashes and prefer is None:
            s["conflict"] = {"clashes": merged.clashes, "base": base, "items": items, "status": status}
            return False
        chosen = merged.taking_theirs() if prefer == "theirs" else merged.instances
        try:
            saved = svc.save_image(
                ws, slug, s["image_id"], chosen, expected_version=fresh.version, status=status
            )
        except ConflictError:
            continue
        at = {id(inst): n for n, inst in enumerate(chosen)}
        for n, inst in pairs:  # later actions of the old epoch name these shapes by uid
            uid = items[n].get("uid")
            if uid is not None and id(inst) in at:
                s["ids"][str(uid)] = saved.ids[at[id(inst)]]
        notice = "Merged with changes saved elsewhere" if fresh.version != s["version"] else None
        load_into_state(ws, slug, s["image_id"], s["index"], notice=notice)
        return True
    s["error"] = "the image kept changing elsewhere while saving; try again"
    return False


def handle_action(ws: Workspace, slug: str, action: dict[str, Any] | None) -> None:
    """One finished action from the browser: save, change status, or save and move to another image."""
    if not isinstance(action, dict):
        return
    s = _state()
    s["ack"] = max(s["ack"], int(action.get("seq") or 0))
    if action.get("image_id") != s["image_id"]:
        return  # from an image this tab has already left; its shapes were saved on leaving
    epoch = action.get("epoch")
    if epoch != s["epoch"] and epoch not in s["bases"]:
        return
    base = s["bases"][epoch] if epoch != s["epoch"] else None  # sent before the browser got the newest
    items = list(action.get("instances") or [])
    kind = action.get("kind")
    status = action.get("status") if kind in ("status", "navigate") else None  # "Done and next"
    if status is not None and status not in IMAGE_STATUSES:
        s["error"] = f"unknown image status {status!r}"
        return
    if s["conflict"] is not None:
        s["conflict"].update(items=items, status=status or s["conflict"].get("status"))
        return
    ok = save_items(ws, slug, items, status=status, base=base)
    if ok and kind == "propagate":
        propagate(ws, slug, list(action.get("shapes") or []))
    if ok and kind == "navigate":
        ids = [im.id for im in browse_list(ws, slug)]
        index = ids.index(s["image_id"]) if s["image_id"] in ids else s["index"]
        new_index = min(max(index + int(action.get("delta") or 0), 0), len(ids) - 1)
        if ids:
            load_into_state(ws, slug, ids[new_index], new_index)


def propagate(ws: Workspace, slug: str, shapes: list[dict[str, Any]]) -> None:
    """Copies of the browser's chosen shapes (just saved) go to the next image of the browse list."""
    s = _state()
    ids = [im.id for im in browse_list(ws, slug)]
    at = ids.index(s["image_id"]) + 1 if s["image_id"] in ids else len(ids)
    if at >= len(ids):
        s["error"] = "no next image to copy the shapes to"
        return
    try:
        chosen = payload_to_indexed_instances(with_known_ids(shapes, s["ids"]), s["loaded"])
        svc.copy_instances_to(ws, slug, ids[at], [inst for _, inst in chosen])
    except (WorkbenchError, ValueError) as exc:
        s["error"] = f"shapes not copied to the next image: {exc}"


def browse_list(ws: Workspace, slug: str) -> list[ImageRecord]:
    """The images the filters select, with the open image kept at its place even when it no longer
    matches them (a save turns 'unlabeled' into 'in progress'): the image stays until the user moves."""
    s = _state()
    images = svc.list_images(ws, slug, **_filters())
    if s["image_id"] is None or s["slug"] != slug or any(im.id == s["image_id"] for im in images):
        return images
    try:
        rec = svc.load_image(ws, slug, s["image_id"]).image
    except WorkbenchError:
        return images
    images.insert(min(s["index"], len(images)), rec)
    return images


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
        "tiles": tiles_payload(slug, rec) if role == "image" else None,
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
        version = svc.load_image(ws, slug, s["image_id"]).version
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
    c1, c2, c3 = st.columns([1, 1, 3])
    c1.selectbox("Status", [ALL, *IMAGE_STATUSES], key="ann_status_filter")
    c2.selectbox("Split", [ALL, *SPLITS, "unassigned"], key="ann_split_filter")
    images = browse_list(ws, slug)
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
        # a new widget whenever the list changes (a filter): a kept value would be an index into the old list
        key=f"ann_pick_{s['epoch']}_{hash(tuple(ids))}",
    )
    if picked != index:
        load_into_state(ws, slug, ids[picked], picked)
        st.rerun(scope="fragment")

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
        "ghosts": [instance_to_payload(k.theirs) for k in s["conflict"]["clashes"] if k.theirs is not None]
        if s["conflict"] is not None
        else [],
        "notice": s["notice"],
        "error": s["error"],
        "height": STAGE_HEIGHT_PX,
        "project": slug,  # shape_tools.js: per-shape hide and lock kept in the browser per project
    }
    annotator(
        data,
        on_action=lambda: _on_action(ws, slug),
        on_tiles=lambda: request_tiles(ws, slug, _state()["image_id"]),
    )
    # below the canvas: a message never pushes the stage down under the user's pointer
    _conflict_box(ws, slug)
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
