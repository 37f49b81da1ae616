"""The one way the workbench replaces a file: readers see the old file or the whole new one, never half.

A temp file in the same folder (``.<name>.<random>.tmp``, so :data:`TMP_SUFFIX` tells leftovers
apart), then ``os.replace``. On any error the temp file is removed and the old file stays. The
temp file is created with mode 0666 less the umask, as ``open`` would (``tempfile.mkstemp`` makes
0600, which kept exports and stored images from other users and web servers of a shared machine).

``fsync`` is the caller's explicit choice, because what a power cut may lose differs:

* ``fsync=True``: the data is flushed to disk before the rename and the folder after it, so the
  new file survives a power cut once the call returns. For files that are written once and must
  last: stored images and their thumbnails, COCO files, reports, checkpoints.
* ``fsync=False``: atomic against crashes and kills of the process, not against a power cut (the
  file may then be the old one, or missing). For files written so often or in such numbers that a
  sync each would cost more than their loss: a run's ``status.json`` rewritten every few
  iterations, the images an export copies (the export can be run again).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

TMP_SUFFIX = ".tmp"


@contextmanager
def atomic_file(path: Path, *, fsync: bool) -> Iterator[BinaryIO]:
    """A binary file to write ``path``'s new content into; it replaces ``path`` when the block ends.

    For content produced as a stream (``torch.save``, a copied file); :func:`atomic_write` takes
    the whole content as bytes. The folder is created when missing.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = _create_temp(path)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
    if fsync:
        fsync_dir(path.parent)


def _create_temp(path: Path) -> tuple[int, str]:
    """A new ``.<name>.<8 hex>.tmp`` beside ``path``, opened for writing; the umask applies."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        name = str(path.parent / f".{path.name}.{secrets.token_hex(4)}{TMP_SUFFIX}")
        try:
            return os.open(name, flags, 0o666), name
        except FileExistsError:
            continue
    raise FileExistsError(f"{path.parent}: no free temporary file name for {path.name}")


def atomic_write(path: Path, data: bytes, *, fsync: bool) -> None:
    """Replace ``path`` by ``data`` (text callers encode it, as UTF-8)."""
    with atomic_file(path, fsync=fsync) as f:
        f.write(data)


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


__all__ = ["TMP_SUFFIX", "atomic_file", "atomic_write", "fsync_dir"]
