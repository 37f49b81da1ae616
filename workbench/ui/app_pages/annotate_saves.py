"""The Annotate page's tab state and saves: which image and version the tab has, the shapes the
browser last reported (deltas.py), and each finished action saved, merged or refused.

The session (one browser tab) remembers which version of the image it loaded, and the shapes of
that version (the base). A plain save writes only what changed since the tab's last save; a save
that meets a newer version (another tab, the CLI, Review) is merged shape by shape
(services.shape_merge): edits to different shapes go through, and only a shape both sides changed
asks the user, with both versions shown.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from workbench.domain import IMAGE_STATUSES, ConflictError, ImageRecord, WorkbenchError
from workbench.services import annotate as svc
from workbench.services.assist import order_by_rank
from workbench.services.shape_merge import merge_shapes
from workbench.services.workspace import Workspace
from workbench.ui.components.annotator import deltas, payload_to_indexed_instances

STATE = "wb_ann"
"""Session key of the page's state dict (image id, loaded version, epoch, ack, conflict, the tab's shapes)."""
ALL = "all"
NEXT_ORDER = "wb_ann_next"
"""Session key of the "label next" ranking (annotate_assist.py): its images come first, in its order."""


def _state() -> dict[str, Any]:
    if STATE not in st.session_state:
        st.session_state[STATE] = {
            "slug": None,
            "image_id": None,
            "index": 0,
            "epoch": 0,
            "version": None,
            "loaded": [],
            "payload": [],
            "sent_epoch": None,
            "tabs": {},
            "saved": {},
            "dropped": {},
            "resync": 0,
            "ack": 0,
            "conflict": None,
            "error": None,
            "ids": {},
            "bases": {},
            "notice": None,
        }
    return st.session_state[STATE]


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
    same = s["image_id"] == image_id and s["slug"] == slug
    s.update(
        slug=slug,
        image_id=image_id,
        index=index,
        version=ann.version,
        loaded=ann.instances,
        conflict=None,
        error=None,
        ids=s["ids"] if same else {},
        bases=s["bases"] if same else {},
        tabs=s["tabs"] if same else {},
        notice=notice,
    )
    s["epoch"] += 1
    s["bases"][s["epoch"]] = ann.instances
    s["payload"], items = deltas.loaded_items(ann.instances, s["epoch"])
    s["tabs"][s["epoch"]] = {0: items}
    s["saved"] = dict(items)
    s["dropped"] = {}


def with_known_ids(items: list[dict[str, Any]], ids: dict[str, int]) -> list[dict[str, Any]]:
    """Items with the row ids this tab last gave their uids (an action may leave the browser before
    the ids of the previous save arrived there; a shape deleted and brought back by undo got a new
    row, and its old id must not make another)."""
    out = []
    for it in items:
        uid = it.get("uid")
        if uid is not None and uid in ids and it.get("id") != ids[uid]:
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
    """Save a whole shape list (the conflict box's choice); see ``save_tab``."""
    return save_tab(
        ws,
        slug,
        {deltas.item_key(it, n, 0): it for n, it in enumerate(items)},
        status,
        base=base,
        prefer=prefer,
    )


def save_tab(
    ws: Workspace,
    slug: str,
    items: dict[str, dict[str, Any]],
    status: str | None = None,
    *,
    base: list[Any] | None = None,
    prefer: str | None = None,
) -> bool:
    """Save the browser's shape list (by uid); False (and a message) if refused or a shape clashes.

    A plain save writes only what differs from what this tab saved last (``s["saved"]``): the
    changed and new shapes and the removed ones, so one moved vertex writes one row. ``base`` is what
    the browser's list was edited from when that is not the loaded version (an action sent before
    the browser got a newer epoch); such a list, and any save that meets a newer version, is merged
    with the stored shapes. After a plain save the new rows' ids go back to the browser by shape uid
    (``data["ids"]``), and the stored rows become the base of the next save (no reload).
    """
    s = _state()
    try:
        if base is not None or prefer is not None or s["conflict"] is not None:
            full = with_known_ids(list(items.values()), s["ids"])
            pairs = payload_to_indexed_instances(full, s["loaded"] if base is None else base)
            return _merge_and_save(
                ws, slug, s["loaded"] if base is None else base, full, pairs, status, prefer
            )
        changed_keys, gone_keys = deltas.changes(items, s["saved"])
        for k in changed_keys:  # a shape sent again before its row id reached the browser
            items[k] = with_known_ids([items[k]], s["ids"])[0]
        changed_keys = [k for k in changed_keys if s["saved"].get(k) != items[k]]
        if not changed_keys and not gone_keys:
            if status is not None:
                svc.set_status(ws, slug, s["image_id"], status)
            return True
        changed = [items[k] for k in changed_keys]
        # rows this tab deleted stay known: undo brings a deleted shape back (a mask with its pixels)
        pairs = payload_to_indexed_instances(changed, [*s["loaded"], *s["dropped"].values()])
        kept = {n for n, _ in pairs}
        gone = [with_known_ids([s["saved"][k]], s["ids"])[0].get("id") for k in gone_keys]
        gone += [it.get("id") for n, it in enumerate(changed) if n not in kept]  # emptied: nothing to store
        try:
            saved = svc.save_changes(
                ws,
                slug,
                s["image_id"],
                [inst for _, inst in pairs],
                [int(i) for i in gone if i is not None],
                expected_version=s["version"],
                status=status,
            )
        except ConflictError:
            full = with_known_ids(list(items.values()), s["ids"])
            return _merge_and_save(
                ws, slug, s["loaded"], full, payload_to_indexed_instances(full, s["loaded"]), status, prefer
            )
        rows = {i.id: i for i in s["loaded"]}
        for row_id in saved.deleted:
            if row_id in rows:
                s["dropped"][row_id] = rows.pop(row_id)
        rows.update((i.id, i) for i in saved.instances)
        s["version"] = saved.version
        s["loaded"] = list(rows.values())
        s["bases"][s["epoch"]] = s["loaded"]
        for (n, _), row_id in zip(pairs, saved.ids, strict=True):
            uid = changed[n].get("uid")
            if uid is not None:
                s["ids"][str(uid)] = row_id
            items[changed_keys[n]] = {**changed[n], "id": row_id}  # the same object in the tab state
        s["saved"] = dict(items)
        s["error"] = None
        return True
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
    """One finished action from the browser: save, change status, or save and move to another image.

    The action carries the shapes that changed since a state this tab acknowledged (deltas.py); one
    from a state no longer kept asks the browser for its whole list instead (``data["resync"]``).
    """
    if not isinstance(action, dict):
        return
    s = _state()
    s["ack"] = max(s["ack"], int(action.get("seq") or 0))
    if action.get("image_id") != s["image_id"]:
        return  # from an image this tab has already left; its shapes were saved on leaving
    kind = action.get("kind")
    if kind == "reload":  # a new mount of the annotator (the page was left and opened again)
        load_into_state(ws, slug, s["image_id"], s["index"])
        return
    epoch = action.get("epoch")
    if epoch != s["epoch"] and epoch not in s["bases"]:
        return
    base = s["bases"][epoch] if epoch != s["epoch"] else None  # sent before the browser got the newest
    status = action.get("status") if kind in ("status", "navigate") else None  # "Done and next"
    if status is not None and status not in IMAGE_STATUSES:
        s["error"] = f"unknown image status {status!r}"
        return
    try:
        items = deltas.rebuild(s["tabs"], action)
    except WorkbenchError as exc:
        s["error"] = str(exc)
        return
    if items is None:
        s["resync"] += 1
        return
    if s["conflict"] is not None:
        s["conflict"].update(items=list(items.values()), status=status or s["conflict"].get("status"))
        return
    ok = save_tab(ws, slug, items, status=status, base=base)
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
    order = st.session_state.get(NEXT_ORDER)
    if order and order.get("slug") == slug:
        images = order_by_rank(images, order["ids"])
    if s["image_id"] is None or s["slug"] != slug or any(im.id == s["image_id"] for im in images):
        return images
    try:
        rec = svc.image_record(ws, slug, s["image_id"])
    except WorkbenchError:
        return images
    images.insert(min(s["index"], len(images)), rec)
    return images
