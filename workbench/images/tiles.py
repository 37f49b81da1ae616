"""Native-pixel tiles of a stored image, for zooming past what the display copy resolves.

The display copy (``display/<sha>.jpg``, longest side 2048) is all the annotator needs until the
screen shows more than one display pixel per screen pixel; beyond that a 6000 x 4000 photo would
show about 3x blurred pixels and boundaries could not be traced closer than about 3 px. Tiles are
square crops of the upright original on a fixed grid, lossless PNG (a 1-px line stays a 1-px line)::

    tiles/<sha256>/<side>.json            the grid (written last: its presence means complete)
    tiles/<sha256>/<side>_<col>_<row>.png  one tile, ``side`` x ``side`` or smaller at the edges

Tile (col, row) covers natural pixels ``[col*side, min((col+1)*side, W)) x [row*side, ...)``, so the
annotator places it at those natural coordinates. Only images larger than their display copy get
tiles (:func:`needs_tiles`). Tiles are written at the first ask: the original is decoded once (a
50-MP JPEG takes about a second), the asked tiles are written, and the rest of the grid follows in
a background thread from the same decode. Writes are atomic; a crash leaves no manifest (and at
worst ``*.tmp`` files, see :func:`sweep_tiles`), and the next ask writes what is missing.
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
from workbench.images.storage import DISPLAY_MAX_SIDE, _resolve, _sha_of, _stored_size_wh, fit_size_wh
from workbench.utils.atomic import TMP_SUFFIX, atomic_write

TILES_DIR = "tiles"
TILE_SIDE = 1024
PNG_COMPRESS_LEVEL = 1
"""Fast PNG: tiles are a cache, written once per image at the first zoom; level 1 is several times
quicker to write than the default and rarely 20 % larger."""

_LOCK = threading.Lock()
"""Guards the jobs below: two sessions asking for the same image share one decode."""


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


class _Job:
    """An original decoded once, from which its tiles are written: the asked ones first, then the
    rest in the background, so that the first zoom waits for one decode and a few tiles only."""

    def __init__(self, rgb: Image.Image) -> None:
        self.rgb = rgb
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None


_JOBS: dict[Path, _Job] = {}


def _write_tile(folder: Path, grid: TileGrid, rgb: Image.Image, index: int) -> None:
    path = folder / _tile_name(grid, index)
    if not path.is_file():
        atomic_write(path, _png(rgb.crop(grid.box(index))), fsync=True)


def _job(project_dir: Path, rel_path: str, grid: TileGrid, folder: Path) -> _Job:
    with _LOCK:
        job = _JOBS.get(folder)
        if job is None:
            src = _resolve(Path(project_dir), rel_path)
            if not src.is_file():
                raise ValidationError(f"{rel_path}: stored image file is missing")
            rgb = image_to_rgb(load_upright(src))
            rgb.load()
            if rgb.size != (grid.width, grid.height):
                raise ValidationError(
                    f"{rel_path}: stored image is {rgb.size[0]}x{rgb.size[1]}, its record says "
                    f"{grid.width}x{grid.height}"
                )
            job = _JOBS[folder] = _Job(rgb)
        return job


def _finish(folder: Path, grid: TileGrid, job: _Job) -> None:
    """Write the tiles not written yet, then the manifest; the decoded original is let go."""
    try:
        for index in range(grid.count):
            with job.lock:
                _write_tile(folder, grid, job.rgb, index)
        atomic_write(_manifest(folder, grid.side), json.dumps(grid.to_json()).encode("utf-8"), fsync=True)
    finally:
        with _LOCK:
            _JOBS.pop(folder, None)


def tile_paths(
    project_dir: Path,
    rel_path: str,
    size_wh: tuple[int, int],
    indices: list[int],
    *,
    side: int = TILE_SIDE,
    background: bool = True,
) -> list[Path]:
    """The PNGs of these tiles (row-major indices) of an image of upright size ``size_wh``.

    Tiles already on disk are returned at once. Otherwise the original is decoded, the asked tiles
    are written, and the rest of the grid is written after them: in a background thread (the
    default, so the caller waits for its tiles only) or before returning (``background=False``).
    """
    grid = tile_grid(size_wh, side=side)
    for index in indices:
        grid.box(index)  # refuses an index outside the grid
    folder = tiles_folder(project_dir, rel_path)
    paths = [folder / _tile_name(grid, i) for i in indices]
    if all(p.is_file() for p in paths):
        return paths
    job = _job(project_dir, rel_path, grid, folder)
    with job.lock:
        for index in indices:
            _write_tile(folder, grid, job.rgb, index)
    with _LOCK:
        thread = job.thread
        if thread is None:
            thread = job.thread = threading.Thread(
                target=_finish, args=(folder, grid, job), name="wb-tiles", daemon=True
            )
            thread.start()
    if not background:
        thread.join()
    return paths


def ensure_tiles(project_dir: Path, rel_path: str, *, side: int = TILE_SIDE) -> TileGrid:
    """The image's whole tile grid, written before returning when not cached (then only the
    manifest is read)."""
    folder = tiles_folder(project_dir, rel_path)
    grid = _read_manifest(_manifest(folder, side))
    if grid is not None and grid.side == side:
        return grid
    size = _stored_size_wh(_resolve(Path(project_dir), rel_path))
    if size is None:
        raise ValidationError(f"{rel_path}: stored image file is missing or unreadable")
    grid = tile_grid(size, side=side)
    tile_paths(project_dir, rel_path, size, list(range(grid.count)), side=side, background=False)
    return grid


def wait_for_tiles(timeout_s: float = 60.0) -> None:
    """Wait until no grid is being written in the background (tests, benchmarks, shutdown)."""
    with _LOCK:
        threads = [j.thread for j in _JOBS.values() if j.thread is not None]
    for t in threads:
        if t.is_alive():
            t.join(timeout_s)


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
    "tile_paths",
    "tiles_folder",
    "wait_for_tiles",
]
