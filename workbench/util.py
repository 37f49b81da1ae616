"""Small helpers with no better home."""

from __future__ import annotations

import gc
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TMP_SUFFIX = ".tmp"


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many small objects (a big COCO file).

    Parsing 200k annotations allocates millions of lists and floats, each allocation burst setting
    off full collections that scan them all again; none of it forms cycles, so pausing is safe.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one, never half.

    A temp file in the same folder (``.<name>.*.tmp``), fsync, ``os.replace``, then fsync of the folder
    so the rename itself survives a power cut. On any error the temp file is removed.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def fsync_dir(folder: Path) -> None:
    """Make a rename durable (POSIX); a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def plural(n: int | None, noun: str, plural_noun: str | None = None) -> str:
    """A count with its noun in the right number: '1 image', '0 images', '2 classes'.

    The plural adds 'es' after s, x, z, ch and sh ('class' -> 'classes'), else 's'; irregular ones
    are given (``plural(n, 'entry', 'entries')``). An unknown count (None) reads '? images'.
    """
    if n == 1:
        return f"1 {noun}"
    if plural_noun is None:
        # 'es' after a hissing end (class, box, batch, mesh), not after a hard 'ch' (epoch)
        hiss = noun.endswith(("s", "x", "z", "sh")) or (noun.endswith("ch") and not noun.endswith("och"))
        plural_noun = noun + ("es" if hiss else "s")
    return f"{'?' if n is None else n} {plural_noun}"
