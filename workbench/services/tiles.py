"""Native-pixel tiles of an image for the annotator (see :mod:`workbench.images.tiles`).

The page asks for the grid of the image it shows (cheap: no pixel is read), has the grids of that
image and the next ones cut in the background (:func:`prefetch`), and when the browser zooms past
the display copy, it fetches the files of the tiles in view (written then if not yet there).
"""

from __future__ import annotations

from pathlib import Path

from workbench.domain import ImageRecord
from workbench.images import storage, tile_prefetch, tiles
from workbench.services.permissions import requires
from workbench.services.workspace import Workspace
from workbench.store import images as image_repo
from workbench.store import projects as project_repo

TILE_SIDE = tiles.TILE_SIDE
TILE_MIMETYPE = tiles.TILE_MIMETYPE


def _record(ws: Workspace, slug: str, image_id: int) -> ImageRecord:
    with ws.store.transaction() as s:
        rec, _ = image_repo.get_image(s, project_repo.project_id(s, slug), image_id)
    assert rec.path is not None
    return rec


def tile_grid(rec: ImageRecord, *, side: int = TILE_SIDE) -> tiles.TileGrid | None:
    """The grid the image would be tiled on, or None when its display copy already is full size."""
    if not tiles.needs_tiles(rec.size_wh):
        return None
    return tiles.tile_grid(rec.size_wh, side=side)


def tiles_info(rec: ImageRecord, *, side: int = TILE_SIDE) -> dict[str, float] | None:
    """What the browser needs to place tiles: the grid and the display copy's scale (display
    pixels per natural pixel, past which tiles are shown); None for images without tiles."""
    grid = tile_grid(rec, side=side)
    if grid is None:
        return None
    display_w, _ = storage.fit_size_wh(rec.size_wh, storage.DISPLAY_MAX_SIDE)
    return {
        "side": grid.side,
        "cols": grid.cols,
        "rows": grid.rows,
        "count": grid.count,
        "display_scale": display_w / rec.width,
    }


@requires("project.read")
def tile_files(
    ws: Workspace, slug: str, image_id: int, indices: list[int], *, side: int = TILE_SIDE
) -> list[Path]:
    """The PNGs of these tiles (row-major indices); the first ask writes them, then the rest of the
    image's grid in the background."""
    rec = _record(ws, slug, image_id)
    assert rec.path is not None
    return tiles.tile_paths(ws.project_dir(slug), rec.path, rec.size_wh, indices, side=side)


@requires("project.read")
def prefetch(ws: Workspace, slug: str, recs: list[ImageRecord], *, side: int = TILE_SIDE) -> None:
    """Cut these images' grids in the background, in this order (the one on screen first), so the
    first zoom finds its tiles on disk; images without tiles or already tiled cost nothing."""
    project_dir = ws.project_dir(slug)
    for rec in reversed(recs):  # each goes to the front: the queue ends up in this order, older asks last
        if rec.path is not None and tiles.needs_tiles(rec.size_wh):
            tile_prefetch.prefetch_tiles(project_dir, rec.path, rec.size_wh, side=side, first=True)


__all__ = ["TILE_MIMETYPE", "TILE_SIDE", "prefetch", "tile_files", "tile_grid", "tiles_info"]
