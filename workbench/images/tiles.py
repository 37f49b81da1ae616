"""Native-pixel tiles of a stored image, for zooming past what the display copy resolves.

The display copy (``display/<sha>.jpg``, longest side 2048) is all the annotator needs until the
screen shows more than one display pixel per screen pixel; beyond that a 6000 x 4000 photo would
show about 3x blurred pixels and boundaries could not be traced closer than about 3 px. Tiles are
square crops of the upright original on a fixed grid, lossless PNG (a 1-px line stays a 1-px line)::

    tiles/<sha256>/<side>.json            the grid (written last: its presence means complete)
    tiles/<sha256>/<side>_<col>_<row>.png  one tile, ``side`` x ``side`` or smaller at the edges

Tile (col, row) covers natural pixels ``[col*side, min((col+1)*side, W)) x [row*side, ...)``, so the
annotator places it at those natural coordinates. Only images larger than their display copy get
tiles (:func:`needs_tiles`). The whole grid is written at the first request: the original is
decoded once (a 50-MP JPEG takes about a second), not once per tile. Writes are atomic; a crash
leaves no manifest, and the next request writes the grid again.
"""

from __future__ import annotations

import io
import json
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from workbench.domain import ValidationError
from workbench.images.decode import image_to_rgb, load_upright
from workbench.images.storage import DISPLAY_MAX_SIDE, _resolve, _sha_of, fit_size_wh
from workbench.utils.atomic import TMP_SUFFIX, atomic_write

TILES_DIR = "tiles"
TILE_SIDE = 1024
PNG_COMPRESS_LEVEL = 1
"""Fast PNG: tiles are a cache, written once per image at the first zoom; level 1 is several times
quicker to write than the default and rarely 20 % larger."""

_LOCK = threading.Lock()
"""One grid written at a time in this process: two sessions asking at once get one write."""


@dataclass(frozen=True)
class TileGrid:
    """The tiles of an image of ``width`` x ``height`` natural pixels, ``side`` pixels square."""

    width: int
    height: int
    side: int

    @property
    def cols(self) -> int:
        return -(-self.width // self.side)

    @property
    def rows(self) -> int:
        return -(-self.height // self.side)

    @property
    def count(self) -> int:
        return self.cols * self.rows

    def box(self, index: int) -> tuple[int, int, int, int]:
        """Natural-pixel box ``(x0, y0, x1, y1)`` of tile ``index`` (row-major, ``row * cols + col``)."""
        if not 0 <= index < self.count:
            raise ValidationError(f"tile {index} is outside the {self.cols} x {self.rows} grid")
        row, col = divmod(index, self.cols)
        x0, y0 = col * self.side, row * self.side
        return (x0, y0, min(x0 + self.side, self.width), min(y0 + self.side, self.height))

    def to_json(self) -> dict[str, int]:
        return {"width": self.width, "height": self.height, "side": self.side}


def needs_tiles(size_wh: tuple[int, int], *, display_max_side: int = DISPLAY_MAX_SIDE) -> bool:
    """True when the display copy is smaller than the image (so zooming in would blur)."""
    return fit_size_wh(size_wh, display_max_side) != tuple(size_wh)


def tile_grid(size_wh: tuple[int, int], *, side: int = TILE_SIDE) -> TileGrid:
    if side < 1:
        raise ValidationError(f"tile side must be at least 1, got {side}")
    w, h = size_wh
    if w < 1 or h < 1:
        raise ValidationError(f"image size must be positive, got {w} x {h}")
    return TileGrid(width=int(w), height=int(h), side=int(side))


def tiles_folder(project_dir: Path, rel_path: str) -> Path:
    return Path(project_dir) / TILES_DIR / _sha_of(rel_path)


def _tile_name(grid: TileGrid, index: int) -> str:
    row, col = divmod(index, grid.cols)
    return f"{grid.side}_{col}_{row}.png"


def _manifest(folder: Path, side: int) -> Path:
    return folder / f"{side}.json"


def _read_manifest(path: Path) -> TileGrid | None:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return TileGrid(width=int(raw["width"]), height=int(raw["height"]), side=int(raw["side"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buf.getvalue()


def ensure_tiles(project_dir: Path, rel_path: str, *, side: int = TILE_SIDE) -> TileGrid:
    """The image's tile grid, written on the first call (cached: later calls only read the manifest).

    The grid's size is that of the upright original, the size every stored coordinate refers to.
    """
    folder = tiles_folder(project_dir, rel_path)
    manifest = _manifest(folder, side)
    grid = _read_manifest(manifest)
    if grid is not None and grid.side == side:
        return grid
    src = _resolve(Path(project_dir), rel_path)
    with _LOCK:
        grid = _read_manifest(manifest)  # another session may have written it meanwhile
        if grid is not None and grid.side == side:
            return grid
        if not src.is_file():
            raise ValidationError(f"{rel_path}: stored image file is missing")
        rgb = image_to_rgb(load_upright(src))
        rgb.load()
        grid = tile_grid(rgb.size, side=side)
        for index in range(grid.count):
            atomic_write(folder / _tile_name(grid, index), _png(rgb.crop(grid.box(index))), fsync=True)
        atomic_write(manifest, json.dumps(grid.to_json()).encode("utf-8"), fsync=True)
    return grid


def tile_path(project_dir: Path, rel_path: str, index: int, *, side: int = TILE_SIDE) -> Path:
    """The PNG of tile ``index`` (row-major), writing the image's grid first when it is not cached."""
    grid = ensure_tiles(project_dir, rel_path, side=side)
    grid.box(index)  # refuses an index outside the grid
    path = tiles_folder(project_dir, rel_path) / _tile_name(grid, index)
    if not path.is_file():  # a tile removed by hand: write the grid again
        _manifest(path.parent, side).unlink(missing_ok=True)
        ensure_tiles(project_dir, rel_path, side=side)
    return path


def delete_tiles(project_dir: Path, rel_path: str) -> None:
    """Remove an image's tiles (with the image); none there is fine."""
    shutil.rmtree(tiles_folder(project_dir, rel_path), ignore_errors=True)


def sweep_tiles(project_dir: Path, known_shas: set[str]) -> list[Path]:
    """Remove the tile folders of images no row refers to and leftover ``*.tmp`` files; sorted."""
    base = Path(project_dir) / TILES_DIR
    removed: list[Path] = []
    if not base.is_dir():
        return removed
    for folder in sorted(base.iterdir()):
        if not folder.is_dir():
            continue
        if folder.name not in known_shas:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
            continue
        for path in sorted(folder.iterdir()):
            if path.name.endswith(TMP_SUFFIX):
                path.unlink(missing_ok=True)
                removed.append(path)
    return sorted(removed)


__all__ = [
    "TILE_SIDE",
    "TILES_DIR",
    "TileGrid",
    "delete_tiles",
    "ensure_tiles",
    "needs_tiles",
    "sweep_tiles",
    "tile_grid",
    "tile_path",
    "tiles_folder",
]
