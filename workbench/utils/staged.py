"""The one way the workbench writes a folder of results (exports, previews, reports): all or nothing.

Everything is written into a hidden staging folder inside the target (``.wb-staging-<random>``,
on the target's own disk, so a full disk shows while staging and the final moves are renames),
and moved into place only when complete. The caller names each path it writes with
:meth:`Staged.put` (a file, or a folder that replaces the old one as a whole) and each stale path
to remove with :meth:`Staged.drop`; nothing else in the target is touched, so a user's own files
beside an export stay. On any error the staging folder is removed and the previous results are
intact; a full disk (or another refusal of the system) is reported as one line naming the target.

A kill -9 leaves a staging folder (or a ``.wb-old-*`` folder of replaced entries, or an atomic
write's ``.<name>.<random>.tmp``): the next staged write into the same target sweeps them. A
staging folder in use holds an ``flock`` on its lock file, so a concurrent write's stage is left
alone.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path, PurePosixPath

from workbench.domain import WorkbenchError
from workbench.utils.atomic import fsync_dir

try:
    import fcntl
except ImportError:  # Windows: no flock; stages are swept without the in-use check
    fcntl = None  # type: ignore[assignment]

STAGE_PREFIX = ".wb-staging-"
OLD_PREFIX = ".wb-old-"
_LOCK_NAME = ".lock"
_ATOMIC_LEFTOVER = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")
_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))


def make_dir(parent: Path, prefix: str) -> Path:
    """A new uniquely named folder in ``parent`` with mode 0777 less the umask (``tempfile.mkdtemp``
    makes 0700, which hid exports from the other users of a shared machine)."""
    for _ in range(100):
        path = Path(parent) / f"{prefix}{secrets.token_hex(4)}"
        try:
            os.mkdir(path)
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"{parent}: no free folder name for {prefix}*")


def _rel(rel: str) -> PurePosixPath:
    p = PurePosixPath(rel)
    if p.is_absolute() or not p.parts or any(x in ("", ".", "..") for x in p.parts):
        raise ValueError(f"staged path must be relative and inside the target: {rel!r}")
    return p


class Staged:
    """The staging folder of one write; :attr:`path` is where the new content goes."""

    def __init__(self, target: Path, path: Path) -> None:
        self.target = target
        self.path = path
        self._puts: list[PurePosixPath] = []
        self._drops: list[PurePosixPath] = []

    def put(self, rel: str, *, folder: bool = False) -> Path:
        """Where to write ``target/rel`` (its parent is made; with ``folder`` the folder itself).
        At commit it replaces the old ``target/rel`` as a whole; not written, the old one goes."""
        p = _rel(rel)
        self._puts.append(p)
        dest = self.path.joinpath(*p.parts)
        (dest if folder else dest.parent).mkdir(parents=True, exist_ok=True)
        return dest

    def drop(self, rel: str) -> None:
        """Remove ``target/rel`` at commit (a stale entry of an earlier write)."""
        self._drops.append(_rel(rel))

    def commit(self) -> None:
        """Move every put path into place, old entries into a trash folder first; undone on error."""
        trash = make_dir(self.target, OLD_PREFIX)
        moves: list[tuple[Path, Path]] = []
        try:
            for i, rel in enumerate(dict.fromkeys([*self._drops, *self._puts])):
                old = self.target.joinpath(*rel.parts)
                if old.exists() or old.is_symlink():
                    os.replace(old, trash / str(i))
                    moves.append((old, trash / str(i)))
            for rel in dict.fromkeys(self._puts):
                new = self.path.joinpath(*rel.parts)
                if new.exists():
                    dest = self.target.joinpath(*rel.parts)
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(new, dest)
                    moves.append((new, dest))
        except BaseException:
            for src, dst in reversed(moves):
                with suppress(OSError):
                    os.replace(dst, src)
            shutil.rmtree(trash, ignore_errors=True)
            raise
        shutil.rmtree(trash, ignore_errors=True)
        for folder in {self.target.joinpath(*rel.parts).parent for rel in (*self._puts, *self._drops)}:
            _sweep_atomic_leftovers(folder)
            fsync_dir(folder)


def _in_use(stage: Path) -> bool:
    """Whether a live write holds the stage's lock (kill -9 releases it)."""
    if fcntl is None:
        return False
    try:
        fd = os.open(stage / _LOCK_NAME, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def _sweep_atomic_leftovers(folder: Path) -> list[Path]:
    removed = []
    with suppress(OSError):
        for p in folder.iterdir():
            if _ATOMIC_LEFTOVER.match(p.name) and p.is_file() and not p.is_symlink():
                p.unlink(missing_ok=True)
                removed.append(p)
    return removed


def sweep(target: Path) -> list[Path]:
    """Remove what interrupted writes left: stages not in use and trash folders inside ``target``,
    atomic-write temp files in it, and the ``.<name>.tmp-*`` / ``.<name>.old-*`` folders beside it
    that label-map exports once built there. Returns the removed paths."""
    target = Path(target)
    removed: list[Path] = []
    candidates: list[Path] = []
    with suppress(OSError):
        candidates += [p for p in target.iterdir() if p.name.startswith((STAGE_PREFIX, OLD_PREFIX))]
    with suppress(OSError):
        candidates += [p for p in target.parent.iterdir()
                       if p.name.startswith((f".{target.name}.tmp-", f".{target.name}.old-"))]
    for p in candidates:
        if not p.is_dir() or p.is_symlink() or (p.name.startswith(STAGE_PREFIX) and _in_use(p)):
            continue
        shutil.rmtree(p, ignore_errors=True)
        removed.append(p)
    removed += _sweep_atomic_leftovers(target)
    return sorted(removed)


def _refusal(target: Path, what: str, exc: OSError) -> WorkbenchError | None:
    """One line naming the target for a disk that is full or refuses the write; None for errors
    about other paths (a missing source image names that image)."""
    if exc.errno in _FULL:
        return WorkbenchError(f"{target}: the disk is full; the {what} was not written and nothing there changed")
    name = str(exc.filename) if exc.filename else None
    if name is None or Path(os.path.abspath(name)).is_relative_to(os.path.abspath(target)):
        return WorkbenchError(f"{target}: cannot write the {what} ({exc.strerror or exc}); nothing there changed")
    return None


@contextmanager
def staged_folder(target: Path | str, *, what: str) -> Iterator[Staged]:
    """Stage a write into the folder ``target`` (made when missing); commit it when the block ends.

    ``what`` names the results in messages ("COCO export"). Leftovers of earlier interrupted
    writes are swept first. On an error nothing in the target changes and a target this call made
    is removed again.
    """
    target = Path(target)
    made = not target.exists()
    lock_fd = None
    stage: Path | None = None
    done = False
    try:
        try:
            target.mkdir(parents=True, exist_ok=True)
            sweep(target)
            stage = make_dir(target, STAGE_PREFIX)
            lock_fd = os.open(stage / _LOCK_NAME, os.O_WRONLY | os.O_CREAT, 0o644)
            if fcntl is not None:
                fcntl.flock(lock_fd, fcntl.LOCK_EX)
            staged = Staged(target, stage)
            yield staged
            staged.commit()
            done = True
        except OSError as exc:
            refusal = _refusal(target, what, exc)
            if refusal is None:
                raise
            raise refusal from None
    finally:
        if lock_fd is not None:
            os.close(lock_fd)
        if stage is not None:
            shutil.rmtree(stage, ignore_errors=True)
        if made and not done:
            with suppress(OSError):
                target.rmdir()  # only when empty: nothing was committed


__all__ = ["OLD_PREFIX", "STAGE_PREFIX", "Staged", "make_dir", "staged_folder", "sweep"]
