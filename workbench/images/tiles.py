"""Native-pixel tiles of a stored image, for zooming past what the display copy resolves.

The display copy (``display/<sha>.jpg``, longest side 2048) is all the annotator needs until the
screen shows more than one display pixel per screen pixel; beyond that a 6000 x 4000 photo would
show about 3x blurred pixels and boundaries could not be traced closer than about 3 px. Tiles are
square crops of the upright original on a fixed grid, lossless (a 1-px line stays a 1-px line)::

    tiles/<sha256>/<side>.json            the grid (written last: its presence means complete)
    tiles/<sha256>/<side>_<col>_<row>.bmp  one tile, ``side`` x ``side`` or smaller at the edges

Tiles are uncompressed BMP: a cache of pixels, not an archive. Writing a 1024-px tile takes about
3 ms against about 130 ms for PNG even at compress level 1 (its row filters dominate), and the
browser decodes it about 6x faster, which is what the first zoom waits for; the price is disk (3 MB
a tile, the size of the decoded pixels), taken back with the image (:func:`delete_tiles`).

Tiles are a cache, so they are written without an fsync (a sync cost about 5 ms a tile on a quiet
disk, and waits behind every other file's pending writes on a busy one); a tile whose size is not its BMP's exact size (a
power cut can leave a short or empty file) counts as missing and is cut again (:func:`_tile_ok`).

Tile (col, row) covers natural pixels ``[col*side, min((col+1)*side, W)) x [row*side, ...)``, so the
annotator places it at those natural coordinates. Only images larger than their display copy get
tiles (:func:`needs_tiles`). Tiles are written ahead of the zoom (:func:`prefetch_tiles`: the
image opened for editing and its neighbours, one at a time at low priority) or at the first ask:
the original is decoded once (a 50-MP JPEG takes about a second), the asked tiles are written, and
the rest of the grid follows in a background thread from the same decode. Writes are atomic; a
crash leaves no manifest (and at worst ``*.tmp`` files, see :func:`sweep_tiles`), and the next ask
writes what is missing. Deleting the image cancels its job (no tile is written after the delete).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from workbench.domain import ValidationError
from workbench.images.decode import apply_orientation, image_to_rgb, pixel_limit_lifted, read_orientation
from workbench.images.storage import DISPLAY_MAX_SIDE, _resolve, _sha_of, _stored_size_wh, fit_size_wh
from workbench.utils.atomic import TMP_SUFFIX, atomic_write

TILES_DIR = "tiles"
TILE_SIDE = 1024
TILE_FORMAT = "BMP"
TILE_SUFFIX = ".bmp"
TILE_MIMETYPE = "image/bmp"
BACKGROUND_NICE = 10
"""Niceness of the threads that write tiles nobody waits for (prefetch, the rest of a grid)."""

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

    def to_json(self) -> dict[str, int | str]:
        return {"width": self.width, "height": self.height, "side": self.side, "format": TILE_SUFFIX}


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
    return f"{grid.side}_{col}_{row}{TILE_SUFFIX}"


def _bmp_bytes(width: int, height: int) -> int:
    """The size of PIL's 24-bit BMP of width x height: a 54-byte header, rows padded to 4 bytes."""
    return 54 + ((width * 3 + 3) // 4 * 4) * height


def _tile_ok(path: Path, grid: TileGrid, index: int) -> bool:
    """True when the tile is on disk whole (its exact BMP size; see the module's note on fsync)."""
    x0, y0, x1, y1 = grid.box(index)
    try:
        return path.stat().st_size == _bmp_bytes(x1 - x0, y1 - y0)
    except OSError:
        return False


def _manifest(folder: Path, side: int) -> Path:
    return folder / f"{side}.json"


def _read_manifest(path: Path) -> TileGrid | None:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("format") != TILE_SUFFIX:
            return None  # tiles of an older format: written again
        return TileGrid(width=int(raw["width"]), height=int(raw["height"]), side=int(raw["side"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _encode(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=TILE_FORMAT)
    return buf.getvalue()


def _low_priority() -> None:
    """Lower this thread's CPU priority (Linux: per thread), so the page's own work goes first."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)
    except (AttributeError, OSError):
        pass


class _Job:
    """An original decoded once, from which its tiles are written: the asked ones first, then the
    rest in the background (centre outwards), so that the first zoom waits for one decode and a few
    tiles only. ``cancelled`` (the image was deleted) stops every further write."""

    def __init__(self) -> None:
        self.rgb: Image.Image | None = None
        self.error: Exception | None = None
        self.decoded = threading.Event()
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.cancelled = False


_JOBS: dict[Path, _Job] = {}
_COMPLETE: set[Path] = set()
"""Folders whose manifest this process has seen or written (a prefetch of them costs nothing)."""


def _write_tile(folder: Path, grid: TileGrid, job: _Job, index: int) -> bool:
    """Write one tile unless it is there; False when the job is over (its original let go).

    The crop is taken under ``job.lock``; the write (the slow part) is not, so that
    the tiles of one view are written side by side. A delete sets ``cancelled`` before removing
    the folder, so a write that lands after the removal sees it and takes its file back."""
    path = folder / _tile_name(grid, index)
    with job.lock:
        if job.cancelled or _tile_ok(path, grid, index):
            return True
        if job.rgb is None:
            return False
        data = _encode(job.rgb.crop(grid.box(index)))
    try:
        atomic_write(path, data, fsync=False)  # a cache: a short file is cut again (_tile_ok)
    except OSError:
        if job.cancelled:  # the folder went while writing: the delete's removal took the temp file
            return True
        raise
    if job.cancelled:
        path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            folder.rmdir()
    return True


def _load_rgb(src: Path) -> Image.Image:
    """The stored file decoded, upright and RGB, with no copy of the pixels.

    ``decode.load_upright`` copies the decoded image (150 MB at 50 MP, about 100 ms) and decodes
    under the process-wide PIL lock, so every other image opened meanwhile (a display copy, a
    thumbnail) waited for the whole decode. A JPEG's pixel limit is checked when it is opened, so
    only the opening is under the lock; other formats (a TIFF checks it per tile) decode under it.
    """
    with pixel_limit_lifted():
        img = Image.open(src)
        if img.format not in ("JPEG", "MPO"):
            img.load()
    img.load()
    orientation = read_orientation(img)
    with contextlib.suppress(AttributeError, OSError):
        if img.fp is not None:  # a JPEG's own file is closed by its load, an MPO's is kept for seek
            img.fp.close()
    rgb = image_to_rgb(apply_orientation(img, orientation))
    rgb.load()
    return rgb


def _decode(project_dir: Path, rel_path: str, grid: TileGrid) -> Image.Image:
    src = _resolve(Path(project_dir), rel_path)
    if not src.is_file():
        raise ValidationError(f"{rel_path}: stored image file is missing")
    rgb = _load_rgb(src)
    if rgb.size != (grid.width, grid.height):
        raise ValidationError(
            f"{rel_path}: stored image is {rgb.size[0]}x{rgb.size[1]}, its record says "
            f"{grid.width}x{grid.height}"
        )
    return rgb


def _reserve(folder: Path) -> tuple[_Job, bool]:
    """The folder's job, made now if there is none (then True: the caller decodes). Under _LOCK."""
    job = _JOBS.get(folder)
    if job is not None:
        return job, False
    job = _JOBS[folder] = _Job()
    return job, True


def _job(
    project_dir: Path, rel_path: str, grid: TileGrid, folder: Path, reserved: tuple[_Job, bool] | None = None
) -> _Job:
    """The folder's job with its original decoded: the first caller decodes (outside the global
    lock, so asks for other images are not held up), later ones wait for that decode."""
    if reserved is None:
        with _LOCK:
            reserved = _reserve(folder)
    job, mine = reserved
    if mine:
        try:
            job.rgb = _decode(project_dir, rel_path, grid)
        except Exception as exc:
            job.error = exc
            with _LOCK:
                if _JOBS.get(folder) is job:
                    del _JOBS[folder]
            raise
        finally:
            job.decoded.set()
    else:
        job.decoded.wait()
        if job.error is not None:
            raise job.error
    return job


def _centre_out(grid: TileGrid) -> list[int]:
    """Tile indices nearest the image's centre first (where a 1:1 zoom from the fit view lands)."""
    cx, cy = grid.width / 2, grid.height / 2

    def dist(i: int) -> float:
        x0, y0, x1, y1 = grid.box(i)
        return ((x0 + x1) / 2 - cx) ** 2 + ((y0 + y1) / 2 - cy) ** 2

    return sorted(range(grid.count), key=dist)


def _finish(folder: Path, grid: TileGrid, job: _Job) -> None:
    """Write the tiles not written yet, then the manifest; the decoded original is let go."""
    _low_priority()
    try:
        for index in _centre_out(grid):
            _write_tile(folder, grid, job, index)
            if job.cancelled:
                return
        with job.lock:
            if not job.cancelled:
                atomic_write(
                    _manifest(folder, grid.side), json.dumps(grid.to_json()).encode("utf-8"), fsync=False
                )
                _COMPLETE.add(folder)
    finally:
        with _LOCK:
            if _JOBS.get(folder) is job:
                del _JOBS[folder]
        with job.lock:
            job.rgb = None  # an ask that took this job just before sees it is over and takes a new one


def _start_finish(folder: Path, grid: TileGrid, job: _Job) -> threading.Thread:
    with _LOCK:
        if job.thread is None:
            job.thread = threading.Thread(
                target=_finish, args=(folder, grid, job), name="wb-tiles", daemon=True
            )
            job.thread.start()
        return job.thread


def _complete(folder: Path, side: int) -> TileGrid | None:
    grid = _read_manifest(_manifest(folder, side))
    if grid is not None and grid.side == side:
        _COMPLETE.add(folder)
    return grid


def tile_paths(
    project_dir: Path,
    rel_path: str,
    size_wh: tuple[int, int],
    indices: list[int],
    *,
    side: int = TILE_SIDE,
    background: bool = True,
) -> list[Path]:
    """The files of these tiles (row-major indices) of an image of upright size ``size_wh``.

    Tiles already on disk are returned at once. Otherwise the original is decoded, the asked tiles
    are written, and the rest of the grid is written after them: in a background thread (the
    default, so the caller waits for its tiles only) or before returning (``background=False``).
    """
    grid = tile_grid(size_wh, side=side)
    for index in indices:
        grid.box(index)  # refuses an index outside the grid
    folder = tiles_folder(project_dir, rel_path)
    paths = [folder / _tile_name(grid, i) for i in indices]
    if all(_tile_ok(p, grid, i) for p, i in zip(paths, indices, strict=True)):
        return paths
    for _attempt in range(3):
        job = _job(project_dir, rel_path, grid, folder)
        if all(_write_tile(folder, grid, job, index) for index in indices):
            break
    else:
        raise ValidationError(f"{rel_path}: its tiles could not be written")
    if job.cancelled:
        raise ValidationError(f"{rel_path}: the image was deleted")
    thread = _start_finish(folder, grid, job)
    if not background:
        thread.join()
    return paths


def ensure_tiles(project_dir: Path, rel_path: str, *, side: int = TILE_SIDE) -> TileGrid:
    """The image's whole tile grid, written before returning when not cached (then only the
    manifest is read)."""
    folder = tiles_folder(project_dir, rel_path)
    grid = _complete(folder, side)
    if grid is not None:
        return grid
    size = _stored_size_wh(_resolve(Path(project_dir), rel_path))
    if size is None:
        raise ValidationError(f"{rel_path}: stored image file is missing or unreadable")
    grid = tile_grid(size, side=side)
    tile_paths(project_dir, rel_path, size, list(range(grid.count)), side=side, background=False)
    return grid


_QUEUE: list[tuple[Path, str, tuple[int, int], int]] = []
"""Images waiting for tile_prefetch (project folder, stored path, size, side); here because a
delete takes its image off it."""
_QUEUE_CHANGED = threading.Condition(_LOCK)
_PREFETCHING: list[Path] = []
"""The folder the prefetcher has taken off the queue and is working on (for wait_for_tiles)."""


def wait_for_tiles(timeout_s: float = 60.0) -> None:
    """Wait until no grid is being written or queued in the background (tests, benchmarks)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with _LOCK:
            busy = bool(_QUEUE) or bool(_JOBS) or bool(_PREFETCHING)
            threads = [j.thread for j in _JOBS.values() if j.thread is not None]
        if not busy:
            return
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        time.sleep(0.01)


def delete_tiles(project_dir: Path, rel_path: str) -> None:
    """Remove an image's tiles (with the image); none there is fine. A job writing them is
    cancelled first and its tile in progress waited for, so nothing is written after this."""
    _delete_folder(tiles_folder(project_dir, rel_path))


def _delete_folder(folder: Path) -> None:
    with _LOCK:
        _QUEUE[:] = [e for e in _QUEUE if tiles_folder(e[0], e[1]) != folder]
        _COMPLETE.discard(folder)
        job = _JOBS.get(folder)
        if job is not None:
            job.cancelled = True
    if job is not None:
        with job.lock:
            pass
    shutil.rmtree(folder, ignore_errors=True)


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
            if path.name.endswith(TMP_SUFFIX) or (path.suffix != TILE_SUFFIX and path.suffix != ".json"):
                path.unlink(missing_ok=True)
                removed.append(path)
    return sorted(removed)


__all__ = [
    "TILE_MIMETYPE",
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
