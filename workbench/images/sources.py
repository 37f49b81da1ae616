"""Where images come from: files, folders (recursive, sorted) and zip archives, as candidate sources.

Each candidate is an :class:`~workbench.images.decode.ImageSource` (a path, or bytes for a zip
entry or an upload); whether it really is an image is :func:`~workbench.images.decode.decode_image`'s
call. What cannot even be a candidate (symbolic links, special files, entries escaping an archive,
unsupported picture formats) is reported as :class:`Skipped` with a reason the user can act on.
Zip archives are checked against a size cap and the free disk space before anything is read.
"""

from __future__ import annotations

import errno
import os
import posixpath
import re
import stat
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from workbench.domain import ValidationError
from workbench.images.decode import (
    DEFAULT_MAX_FILE_BYTES,
    SUPPORTED_TEXT,
    SYMLINK_REASON,
    ImageError,
    ImageSource,
)
from workbench.utils.files import file_kind

IMAGE_SUFFIXES: frozenset[str] = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
ZIP_SUFFIXES: frozenset[str] = frozenset({".zip"})
UNSUPPORTED_IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".gif", ".heic", ".heif", ".avif", ".jxl", ".jp2", ".svg", ".ico", ".psd", ".dng", ".cr2", ".nef", ".arw"}
)
"""Pictures a user may expect us to take: reported as unsupported rather than ignored silently."""
MAX_ZIP_TOTAL_BYTES = 64 << 30
"""Largest total of the images one import takes from zip archives (their declared uncompressed sizes)."""

_ESCAPE_REASON = "zip entry escapes the archive folder"
ZIP_IN_FOLDER_REASON = "zip archive inside a folder, not opened: import it by its own path"
ZIP_IN_ZIP_REASON = "zip archive inside a zip archive, not opened: extract it and import it by its own path"
_DRIVE_RE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class Skipped:
    """An input left out of an import, with the reason a user can act on."""

    name: str
    reason: str

    @classmethod
    def from_error(cls, err: ImageError) -> Skipped:
        return cls(err.name, err.reason)

    def __str__(self) -> str:
        return f"{self.name}: {self.reason}"


def _is_metadata_name(name: str) -> bool:
    """macOS resource forks (``._x.jpg``, ``__MACOSX/``) and hidden files: never images."""
    parts = name.split("/")
    return any(p == "__MACOSX" or p.startswith(".") for p in parts if p)


def _has_image_suffix(name: str) -> bool:
    return posixpath.splitext(name)[1].lower() in IMAGE_SUFFIXES


def _unsupported_suffix(name: str) -> Skipped | None:
    suffix = posixpath.splitext(name)[1].lower()
    if suffix in UNSUPPORTED_IMAGE_SUFFIXES:
        return Skipped(name, f"format {suffix} is not supported ({SUPPORTED_TEXT})")
    return None


def _check_readable(path: Path, name: str) -> Skipped | None:
    """A cheap open: permission problems show in the report, not as a failed decode later."""
    try:
        with open(path, "rb") as f:
            f.read(1)
    except OSError as exc:
        return Skipped(name, f"cannot read file: {exc.strerror or exc}")
    return None


def _file_source(path: Path, name: str, skipped: list[Skipped]) -> ImageSource | None:
    try:
        st = os.stat(path, follow_symlinks=False)
    except OSError as exc:
        skipped.append(Skipped(name, f"cannot read file: {exc.strerror or exc}"))
        return None
    if stat.S_ISLNK(st.st_mode):
        skipped.append(Skipped(name, SYMLINK_REASON))
        return None
    if not stat.S_ISREG(st.st_mode):
        skipped.append(Skipped(name, f"not a regular file ({file_kind(st.st_mode)})"))
        return None
    problem = _check_readable(path, name)
    if problem is not None:
        skipped.append(problem)
        return None
    return ImageSource(name=name, path=path)


def _zip_entry_name(raw: str) -> str | None:
    """The entry's normalised relative path, or None when it would land outside the folder."""
    name = raw.replace("\\", "/")
    if name.startswith("/") or _DRIVE_RE.match(name):
        return None
    norm = posixpath.normpath(name)
    if norm == ".." or norm.startswith("../") or norm.startswith("/"):
        return None
    return norm


def _iter_zip(path: Path, display: str, skipped: list[Skipped], max_file_bytes: int) -> Iterator[ImageSource]:
    try:
        zf = zipfile.ZipFile(path)
    except UnicodeDecodeError as exc:
        raw = exc.object.decode("utf-8", "backslashreplace") if isinstance(exc.object, bytes) else "?"
        skipped.append(
            Skipped(
                display,
                f"zip entry name '{raw}' is marked UTF-8 but is not; the archive cannot be read "
                "(extract it and import the folder)",
            )
        )
        return
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        skipped.append(Skipped(display, f"corrupt zip archive: {reason}"))
        return
    with zf:
        entries = []
        for info in zf.infolist():
            if info.is_dir():
                continue
            norm = _zip_entry_name(info.filename)
            label = f"{display}:{info.filename}"
            if norm is None:
                skipped.append(Skipped(label, _ESCAPE_REASON))
                continue
            if _is_metadata_name(norm):
                continue
            if _is_zip_name(norm):
                skipped.append(Skipped(label, ZIP_IN_ZIP_REASON))
                continue
            if not _has_image_suffix(norm):
                unsupported = _unsupported_suffix(norm)
                if unsupported is not None:
                    skipped.append(Skipped(label, unsupported.reason))
                continue
            if stat.S_ISLNK(info.external_attr >> 16):
                skipped.append(Skipped(label, SYMLINK_REASON))
                continue
            entries.append((norm, info))
        entries.sort(key=lambda e: e[0])
        for norm, info in entries:
            label = f"{display}:{norm}"
            if info.flag_bits & 0x1:
                skipped.append(Skipped(label, "encrypted zip entry, cannot read it"))
                continue
            if info.file_size > max_file_bytes:
                skipped.append(
                    Skipped(
                        label, f"file too large: {info.file_size} bytes, over the limit of {max_file_bytes}"
                    )
                )
                continue
            try:
                with zf.open(info) as f:
                    data = f.read(max_file_bytes + 1)
            except Exception as exc:  # noqa: BLE001 - bad CRC, bad compression data, ...
                skipped.append(Skipped(label, f"corrupt zip entry: {exc}"))
                continue
            yield ImageSource(name=norm, data=data, origin=display)




def _link_reason(path: str) -> str:
    """Why a symbolic link inside a scanned folder is left out, in the words a user can act on."""
    try:
        target = os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symbolic link loop, not followed"
        if exc.errno == errno.ENOENT:
            return "dangling symbolic link (its target does not exist), not followed"
        return f"symbolic link whose target cannot be read ({exc.strerror or exc}), not followed"
    if stat.S_ISDIR(target.st_mode):
        real, folder = os.path.realpath(path), os.path.realpath(os.path.dirname(path))
        if folder == real or folder.startswith(real.rstrip(os.sep) + os.sep):
            return "symbolic link to its own folder or one above it, not followed"
    return SYMLINK_REASON


def safe_name(name: str) -> str:
    """``name`` as valid UTF-8 text: bytes of a non-UTF-8 file name shown as ``\\xNN`` escapes.

    Python reads such names with lone surrogates, which no database, report or terminal can encode.
    """
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(name).decode("utf-8", "backslashreplace")
    return name


def _note_renamed(shown: str, name: str, notes: list[str] | None) -> None:
    if shown != name and notes is not None:
        notes.append(f"{shown}: the file name is not UTF-8; imported under this name")


def _walk_sorted(
    folder: Path, prefix: str, skipped: list[Skipped], notes: list[str] | None = None
) -> Iterator[ImageSource]:
    """Depth-first with each folder's entries sorted by name: the order of the relative paths.

    Symbolic links are never followed (loops, dangling links and links to a parent folder are
    reported with their own reason); a name that is not UTF-8 is imported under :func:`safe_name`.
    """
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: os.fsencode(e.name))
    except OSError as exc:
        skipped.append(
            Skipped(safe_name(prefix.rstrip("/") or folder.name), f"cannot read folder: {exc.strerror or exc}")
        )
        return
    for entry in entries:
        rel = prefix + entry.name
        shown = safe_name(rel)
        if _is_metadata_name(entry.name):
            continue
        try:
            is_link = entry.is_symlink()
            is_dir = not is_link and entry.is_dir(follow_symlinks=False)
        except OSError as exc:
            skipped.append(Skipped(shown, f"cannot read: {exc.strerror or exc}"))
            continue
        if is_link:
            reason = _link_reason(entry.path)
            if reason != SYMLINK_REASON or _has_image_suffix(entry.name) or _is_zip_name(entry.name):
                skipped.append(Skipped(shown, reason))
            elif os.path.isdir(entry.path):
                skipped.append(Skipped(shown, reason))
        elif is_dir:
            yield from _walk_sorted(Path(entry.path), rel + "/", skipped, notes)
        elif _has_image_suffix(entry.name):
            src = _file_source(Path(entry.path), shown, skipped)
            if src is not None:
                _note_renamed(shown, rel, notes)
                yield src
        elif _is_zip_name(entry.name):
            # said, not silent: a folder of zips imported '0 images' with no reason given
            skipped.append(Skipped(shown, ZIP_IN_FOLDER_REASON))
        elif (unsupported := _unsupported_suffix(shown)) is not None:
            skipped.append(unsupported)


def _is_zip_name(name: str) -> bool:
    return posixpath.splitext(name)[1].lower() in ZIP_SUFFIXES


def iter_image_sources(
    paths: Iterable[Path],
    *,
    skipped: list[Skipped],
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    notes: list[str] | None = None,
) -> Iterator[ImageSource]:
    """Candidate images from files, folders (recursive, sorted) and zip archives, lazily.

    Files named like pictures we cannot read (.gif, .heic, .avif, ...) are reported, not ignored.
    Names: a file given directly is named by its file name; a file in a folder by its path
    relative to that folder; a zip entry by its normalised path inside the archive (``origin``
    names the archive). Inside folders and archives, files without an image suffix and macOS/
    hidden metadata files are ignored silently; zip archives inside folders are not opened (they go
    to ``skipped``, so the user knows to name them).
    Symbolic links (files or folders, on disk or in a zip), entries escaping the archive folder,
    unreadable or special files go to ``skipped`` with the reason. Whether a file really is an
    image is :func:`decode_image`'s call. Anything that is not a regular file is never opened (a
    named pipe called ``x.zip`` would block the import, and the project's import lock, forever).
    Names that are not UTF-8 are imported under :func:`safe_name` (a line in ``notes`` says so).
    """
    for raw in paths:
        path = Path(raw)
        display = safe_name(path.name or str(path))
        try:
            st = os.stat(path, follow_symlinks=False)
        except OSError as exc:
            skipped.append(Skipped(safe_name(str(path)), f"cannot read: {exc.strerror or exc}"))
            continue
        if stat.S_ISLNK(st.st_mode):
            skipped.append(Skipped(display, SYMLINK_REASON))
        elif stat.S_ISDIR(st.st_mode):
            yield from _walk_sorted(path, "", skipped, notes)
        elif not stat.S_ISREG(st.st_mode):
            skipped.append(Skipped(display, f"not a regular file ({file_kind(st.st_mode)}), not opened"))
        elif path.suffix.lower() in ZIP_SUFFIXES:
            problem = _check_readable(path, display)
            if problem is not None:
                skipped.append(problem)
                continue
            yield from _iter_zip(path, display, skipped, max_file_bytes)
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            src = _file_source(path, display, skipped)
            if src is not None:
                _note_renamed(display, path.name, notes)
                yield src
        elif (unsupported := _unsupported_suffix(display)) is not None:
            skipped.append(unsupported)
        else:
            skipped.append(Skipped(display, f"not an image or zip file name ({path.suffix or 'no suffix'})"))


class ZipTooLargeError(ValidationError):
    """A zip archive whose images would unpack to more than the cap or the free disk space."""


def _human_bytes(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    size, unit = n / 1024, "KiB"
    for bigger in ("MiB", "GiB"):
        if size < 1024:
            break
        size, unit = size / 1024, bigger
    return f"{size:.1f} {unit}"


def check_zip_sizes(
    paths: Iterable[Path],
    *,
    free_bytes: int | None,
    max_total_bytes: int | None = None,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
) -> None:
    """Refuse, before anything is read, zip archives whose images would unpack to too much.

    Each archive's image entries are summed by their declared uncompressed sizes (entries over
    ``max_file_bytes`` are skipped by the import and left out). An archive over ``max_total_bytes``
    (default :data:`MAX_ZIP_TOTAL_BYTES`) is refused, and so are archives that together exceed
    ``free_bytes`` (the free space of the workspace disk; None: not checked). A per-entry cap alone
    let a zip of many 1 GiB entries fill the disk. Unreadable archives are left to the import,
    which reports them as skipped.
    """
    cap = MAX_ZIP_TOTAL_BYTES if max_total_bytes is None else max_total_bytes
    running = 0
    for raw in paths:
        path = Path(raw)
        try:
            if path.is_symlink() or not path.is_file() or path.suffix.lower() not in ZIP_SUFFIXES:
                continue
            with zipfile.ZipFile(path) as zf:
                sizes = [
                    i.file_size
                    for i in zf.infolist()
                    if not i.is_dir()
                    and _has_image_suffix(i.filename)
                    and not _is_metadata_name(i.filename)
                    and i.file_size <= max_file_bytes
                ]
        except (OSError, zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError):
            continue
        total = sum(sizes)
        if total > cap:
            raise ZipTooLargeError(
                f"{path}: its {len(sizes)} images unpack to {_human_bytes(total)}, over the limit of "
                f"{_human_bytes(cap)} for one import; split the archive into smaller ones"
            )
        running += total
        if free_bytes is not None and running > free_bytes:
            more = f" (with the archives before it, {_human_bytes(running)})" if running != total else ""
            raise ZipTooLargeError(
                f"{path}: its {len(sizes)} images unpack to {_human_bytes(total)}{more}, but only "
                f"{_human_bytes(free_bytes)} are free on the workspace disk; free some space or "
                "import a smaller archive"
            )


def count_image_candidates(paths: Iterable[Path]) -> int:
    """About how many sources :func:`iter_image_sources` will yield, without reading any image.

    For progress bars only: it lets an import iterate lazily (one zip entry in memory at a time)
    and still show a total. Unreadable paths count as nothing.
    """
    total = 0
    for raw in paths:
        path = Path(raw)
        try:
            mode = os.stat(path, follow_symlinks=False).st_mode
            if stat.S_ISLNK(mode):
                continue
            if stat.S_ISDIR(mode):
                for _root, _dirs, files in os.walk(path):
                    total += sum(1 for f in files if _has_image_suffix(f) and not _is_metadata_name(f))
            elif not stat.S_ISREG(mode):
                continue  # never opened: a named pipe would block
            elif path.suffix.lower() in ZIP_SUFFIXES:
                with zipfile.ZipFile(path) as zf:
                    total += sum(
                        1 for i in zf.infolist()
                        if not i.is_dir() and _has_image_suffix(i.filename) and not _is_metadata_name(i.filename)
                    )
            elif path.suffix.lower() in IMAGE_SUFFIXES:
                total += 1
        except (OSError, zipfile.BadZipFile, ValueError, EOFError):
            continue
    return total


__all__ = [
    "IMAGE_SUFFIXES",
    "MAX_ZIP_TOTAL_BYTES",
    "UNSUPPORTED_IMAGE_SUFFIXES",
    "ZIP_IN_FOLDER_REASON",
    "ZIP_IN_ZIP_REASON",
    "ZIP_SUFFIXES",
    "Skipped",
    "ZipTooLargeError",
    "check_zip_sizes",
    "count_image_candidates",
    "iter_image_sources",
    "safe_name",
]
