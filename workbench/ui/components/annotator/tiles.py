"""Python side of tiles.js: native-pixel tiles of the shown image.

The fast path is :mod:`tile_server`: the payload carries a URL pattern and the browser fetches the
tiles in view directly, with no rerun. When the browser cannot reach that server it falls back to
asking here, and the tiles are registered as Streamlit media, only when asked for:

Streamlit's media file manager reads a file into memory and hashes it on every ``add``; a 50-MP
image has 54 tiles of 1024 px, so registering them all on every rerun (every save) would cost far
more than the view they serve. Instead the browser asks for the tiles in view (the ``tiles`` event)
once it zooms past the display copy, and only those are registered, under at most
:data:`MAX_TILES` fixed media slots per tab (older tiles are replaced, oldest first). A fragment
rerun keeps the registrations; a full run drops them (Streamlit clears a session's media at the
start of a full run), so then the registered ones are added again.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from workbench.domain import ImageRecord, WorkbenchError
from workbench.services import tiles as tile_svc
from workbench.services.workspace import Workspace
from workbench.ui.components.annotator.annotator import ANNOTATOR_KEY
from workbench.ui.components.annotator.tile_server import tile_server

TILES_STATE = "wb_ann_tiles"
"""Session key: which image the registered tiles belong to, their URLs, paths and media slots."""
MAX_TILES = 24
"""Tiles registered at once per tab: a 1:1 view of a 1100 x 620 stage shows at most 6 of 1024 px."""
TILES_EVENT = "tiles"


def _state() -> dict[str, Any]:
    if TILES_STATE not in st.session_state:
        st.session_state[TILES_STATE] = {"image": None, "tiles": {}, "order": []}
    return st.session_state[TILES_STATE]


def _for_image(slug: str, image_id: int) -> dict[str, Any]:
    """The tab's tile state, emptied when it belonged to another image (slots are reused)."""
    t = _state()
    if t["image"] != [slug, image_id]:
        t.update(image=[slug, image_id], tiles={}, order=[])
    return t


def _full_run() -> bool:
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return ctx is None or not getattr(ctx, "fragment_ids_this_run", None)


def _register(path: str, slot: int, key: str) -> str:
    from streamlit import runtime

    if not runtime.exists():
        return ""
    return runtime.get_instance().media_file_mgr.add(path, tile_svc.TILE_MIMETYPE, f"{key}.tile{slot}")


def _direct(ws: Workspace, slug: str, image_id: int, side: int) -> dict[str, Any] | None:
    """Where the browser fetches this image's tiles itself (tile_server), or None."""
    srv = tile_server(ws, st.get_option("server.address"))
    if srv is None:
        return None
    return {"host": srv.host, "port": srv.port, "path": srv.base(slug, image_id, side), "suffix": ".bmp"}


def tiles_payload(
    slug: str, rec: ImageRecord, ws: Workspace | None = None, key: str = ANNOTATOR_KEY
) -> dict[str, Any] | None:
    """``image.tiles`` for the browser: the grid, the display copy's scale, where to fetch tiles
    directly (``direct``, given ``ws``) and the URLs of the tiles registered so far ({index: url});
    None for images whose display copy is full size."""
    info = tile_svc.tiles_info(rec)
    if info is None or rec.id is None:
        return None
    t = _for_image(slug, rec.id)
    if t["tiles"] and _full_run():
        for entry in t["tiles"].values():
            entry["url"] = _register(entry["path"], entry["slot"], key)
    direct = _direct(ws, slug, rec.id, int(info["side"])) if ws is not None else None
    return {**info, "direct": direct, "urls": {str(i): e["url"] for i, e in t["tiles"].items()}}


def prefetch_tiles(ws: Workspace, slug: str, recs: list[ImageRecord]) -> None:
    """Have these images' tiles cut in the background (the one on screen first, then the next ones
    in the picker's order), so that the first zoom finds them on disk."""
    try:
        tile_svc.prefetch(ws, slug, recs)
    except WorkbenchError:
        pass  # best effort: the zoom's own ask reports a problem


def request_tiles(ws: Workspace, slug: str, image_id: int | None, key: str = ANNOTATOR_KEY) -> None:
    """The browser's ask for tiles of the shown image (``{"image_id", "tiles": [index, ...]}``):
    write them if needed and register them; an ask about another image is dropped."""
    value = st.session_state.get(key)
    ask = value.get(TILES_EVENT) if isinstance(value, dict) else None
    if image_id is None or not isinstance(ask, dict) or ask.get("image_id") != image_id:
        return
    wanted = list(dict.fromkeys(i for i in ask.get("tiles") or [] if isinstance(i, int)))[:MAX_TILES]
    t = _for_image(slug, image_id)
    tiles, order = t["tiles"], t["order"]
    new = [i for i in wanted if i not in tiles]
    try:
        paths = dict(zip(new, tile_svc.tile_files(ws, slug, image_id, new), strict=True)) if new else {}
    except WorkbenchError as exc:
        st.toast(f"Native pixels unavailable: {exc}")
        return
    for index in wanted:
        if index in tiles:
            order.remove(index)
            order.append(index)
            continue
        if len(tiles) < MAX_TILES:
            used = {e["slot"] for e in tiles.values()}
            slot = min(s for s in range(MAX_TILES) if s not in used)
        else:
            oldest = next(i for i in order if i not in wanted)
            order.remove(oldest)
            slot = tiles.pop(oldest)["slot"]
        path = str(paths[index])
        tiles[index] = {"path": path, "slot": slot, "url": _register(path, slot, key)}
        order.append(index)


__all__ = ["MAX_TILES", "TILES_EVENT", "prefetch_tiles", "request_tiles", "tiles_payload"]
