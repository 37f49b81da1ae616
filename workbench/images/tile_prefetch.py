"""Tiles cut before the zoom: the image opened for editing and the next ones, in the background.

One thread takes images off a short queue (the newest ask first) and decodes each once
(:mod:`workbench.images.tiles`); a thread at low priority per image writes its grid from that
decode, so the first zoom finds the tiles on disk. The decode runs at normal priority: it is what
a zoom right after opening waits for (the zoom's ask joins it), and a thread cannot raise its
priority back once lowered, so a decode at low priority left that zoom waiting behind any other
work on the machine. The next image is decoded while the grid before it is written,
and at most two decoded originals are held (150 MB each at 50 MP). Tiles are the decoded pixels (3 MB a 1024-px tile), so the cache is bounded: after each grid
the least recently used grids of the project beyond :data:`TILE_CACHE_BYTES` are removed (they are
cut again if needed).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from workbench.images.tiles import (  # the job machinery the zoom's own asks share
    _COMPLETE,
    _JOBS,
    _LOCK,
    _PREFETCHING,
    _QUEUE,
    _QUEUE_CHANGED,
    TILE_SIDE,
    TILES_DIR,
    _complete,
    _delete_folder,
    _Job,
    _job,
    _reserve,
    _start_finish,
    needs_tiles,
    tile_grid,
    tiles_folder,
)

PREFETCH_QUEUE = 4
"""Images queued at most; the asks at the end are dropped (the user has moved on from them)."""
PREFETCH_IDLE_S = 30.0
TILE_CACHE_BYTES = 2 * 1024**3
"""Tiles kept per project; about 13 grids of a 50-MP photo, 55 of a 12-MP one."""

_PREFETCHER: threading.Thread | None = None


def prefetch_tiles(
    project_dir: Path, rel_path: str, size_wh: tuple[int, int], *, side: int = TILE_SIDE, first: bool = False
) -> None:
    """Cut the image's whole grid in the background, one image at a time at low priority, so that
    the first zoom finds its tiles on disk. Returns at once; an image already tiled costs a set
    lookup. ``first`` puts it ahead of the others (the newest ask first); the queue keeps the first
    :data:`PREFETCH_QUEUE` entries (the user has moved on from the images dropped at its end)."""
    global _PREFETCHER
    folder = tiles_folder(project_dir, rel_path)
    if not needs_tiles(size_wh):
        return
    if folder in _COMPLETE:
        _touch(folder)  # used again: last to be pruned
        return
    entry = (Path(project_dir), rel_path, (int(size_wh[0]), int(size_wh[1])), side)
    with _LOCK:
        if any(e[0] == entry[0] and e[1] == rel_path for e in _QUEUE):
            _QUEUE[:] = [e for e in _QUEUE if not (e[0] == entry[0] and e[1] == rel_path)]
        if first:
            _QUEUE.insert(0, entry)
        else:
            _QUEUE.append(entry)
        del _QUEUE[PREFETCH_QUEUE:]
        if _PREFETCHER is None or not _PREFETCHER.is_alive():
            _PREFETCHER = threading.Thread(target=_prefetch_loop, name="wb-tiles-prefetch", daemon=True)
            _PREFETCHER.start()
        _QUEUE_CHANGED.notify()


def _drop(folder: Path, reserved: tuple[_Job, bool]) -> None:
    """Let go of a job reserved but not needed (the grid was on disk already)."""
    job, mine = reserved
    if mine:
        job.decoded.set()
        with _LOCK:
            if _JOBS.get(folder) is job:
                del _JOBS[folder]


def _prefetch_loop() -> None:
    writing: threading.Thread | None = None  # the grid before this one, still being written
    while True:
        with _LOCK:
            while not _QUEUE:
                if not _QUEUE_CHANGED.wait(timeout=PREFETCH_IDLE_S):
                    return  # idle: the thread ends, the next ask starts another
            project_dir, rel_path, size_wh, side = _QUEUE.pop(0)
            folder = tiles_folder(project_dir, rel_path)
            _PREFETCHING.append(folder)
            # the job exists from now on, so that a delete from here on finds it and cancels it
            reserved = _reserve(folder) if folder not in _COMPLETE else None
        try:
            if reserved is None:
                continue
            if _complete(folder, side) is not None:
                _drop(folder, reserved)
                continue
            grid = tile_grid(size_wh, side=side)
            job = _job(project_dir, rel_path, grid, folder, reserved)
            thread = _start_finish(folder, grid, job)  # at low priority (tiles._finish)
            if writing is not None and writing is not thread:
                # at most two decoded originals held: this one and the one before. Not when this is
                # the image being written (opened again, so queued again): waiting for its own writes
                # held up the decode of the next image until the zoom's ask decoded it itself
                writing.join()
            writing = thread
            prune_tiles(project_dir, keep={folder})
        except Exception:  # noqa: BLE001 - a prefetch is best effort: the zoom's ask reports the problem
            continue
        finally:
            with _LOCK:
                _PREFETCHING.remove(folder)


def _touch(folder: Path) -> None:
    try:
        os.utime(folder)
    except OSError:
        pass


def _folder_bytes(folder: Path) -> int:
    try:
        return sum(p.stat().st_size for p in folder.iterdir())
    except OSError:
        return 0


def prune_tiles(
    project_dir: Path, *, keep_bytes: int = TILE_CACHE_BYTES, keep: set[Path] | None = None
) -> list[Path]:
    """Remove the project's least recently used tile folders (by folder mtime: a tile written, the
    image opened again) until the rest fits in ``keep_bytes``; never ``keep``, a queued image or
    one being cut. Returns the removed folders."""
    base = Path(project_dir) / TILES_DIR
    if not base.is_dir():
        return []
    with _LOCK:
        busy = set(keep or ()) | set(_JOBS) | set(_PREFETCHING) | {tiles_folder(e[0], e[1]) for e in _QUEUE}
    entries = []
    for folder in base.iterdir():
        try:
            entries.append((folder.stat().st_mtime_ns, _folder_bytes(folder), folder))
        except OSError:
            continue
    total = sum(size for _, size, _ in entries)
    removed: list[Path] = []
    for _, size, folder in sorted(entries, key=lambda e: (e[0], str(e[2]))):
        if total <= keep_bytes:
            break
        if folder in busy or not folder.is_dir():
            continue
        _delete_folder(folder)
        total -= size
        removed.append(folder)
    return removed


__all__ = ["PREFETCH_QUEUE", "TILE_CACHE_BYTES", "prefetch_tiles", "prune_tiles"]
