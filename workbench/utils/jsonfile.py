"""The one way a JSON file a user names is read: regular files only, errors in one line naming the file.

A named pipe, socket or device given as a JSON file would block ``read`` forever (while an import
holds its project's lock), so the file is opened non-blocking and refused unless it is a regular
file. JSON nested deeper than :data:`MAX_DEPTH` is refused as "nested too deeply" instead of ending
in a RecursionError or a parser's own wording.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from workbench.domain import ValidationError
from workbench.utils.files import file_kind

__all__ = ["MAX_DEPTH", "MAX_STORED_DEPTH", "check_regular_file", "nested_too_deeply", "parse_json_text", "read_json_file"]

MAX_DEPTH = 1024
"""Deepest nesting of arrays and objects accepted from a user's JSON file (orjson's own limit)."""
MAX_STORED_DEPTH = 100
"""Deepest nesting of a value kept from a user's file in the store (attributes, flags): the store's
JSON writer stops at 255 levels."""
_TOO_DEEP = "nested too deeply"


def nested_too_deeply(value: Any, limit: int = MAX_STORED_DEPTH) -> bool:
    """Whether ``value``'s lists and dicts nest deeper than ``limit`` (iterative: no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def _kind(mode: int) -> str:
    kind = file_kind(mode)
    return "not a regular file" if kind == "special file" else f"a {kind}"


def check_regular_file(path: Path, *, error: type[Exception] = ValidationError) -> None:
    """Refuse, without opening it, a path that is not a regular file (following links)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise error(f"{path}: file not found") from None
    except OSError as exc:
        raise error(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{path}: not a regular file ({_kind(st.st_mode)}), not read") from None


def _read_bytes(path: Path, error: type[Exception]) -> bytes:
    check_regular_file(path, error=error)
    try:
        # O_NONBLOCK: a file swapped for a pipe after the check still cannot block the open
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise error(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise error(f"{path}: not a regular file, not read")
        try:
            return f.read()
        except OSError as exc:
            raise error(f"{path}: cannot read the file ({exc.strerror or exc})") from None


def parse_json_text(
    text: str | bytes,
    source: str,
    *,
    error: type[Exception] = ValidationError,
    loads: Callable[[str], Any] | None = None,
) -> Any:
    """Parse JSON ``text`` from ``source`` (a file name, for messages) with ``loads`` (orjson's by default)."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise error(f"{source}: cannot read the file (not UTF-8 text: {exc.reason} at byte {exc.start})") from None
    elif text.startswith("\ufeff"):
        text = text[1:]
    try:
        if loads is None:
            obj = orjson.loads(text)
        else:
            obj = loads(text)
    except RecursionError:
        raise error(f"{source}: not valid JSON ({_TOO_DEEP})") from None
    except orjson.JSONDecodeError as exc:
        if "depth" in exc.msg or "recursion" in exc.msg.lower():
            raise error(f"{source}: not valid JSON ({_TOO_DEEP}, over {MAX_DEPTH} levels)") from None
        raise error(f"{source}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    except json.JSONDecodeError as exc:
        raise error(f"{source}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    if loads is not None and "\\u" in text:
        _refuse_lone_surrogates(obj, source, error)
    return obj


def _refuse_lone_surrogates(obj: Any, source: str, error: type[Exception]) -> None:
    """Python's own parser lets ``"\\udce9"`` through (orjson refuses it): text no store can hold."""
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                shown = item.encode("utf-8", "backslashreplace").decode("ascii", "replace")
                raise error(f"{source}: not valid JSON (the text '{shown}' holds a lone UTF-16 surrogate)") from None


def read_json_file(
    path: Path,
    *,
    error: type[Exception] = ValidationError,
    loads: Callable[[str], Any] | None = None,
) -> Any:
    """The parsed content of the JSON file ``path``; any problem is one ``error`` naming the file."""
    path = Path(path)
    return parse_json_text(_read_bytes(path, error), str(path), error=error, loads=loads)
