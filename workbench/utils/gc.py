"""Pausing Python's cyclic garbage collector around bulk parsing."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


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


__all__ = ["paused_gc"]
