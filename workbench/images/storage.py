"""Content-addressed image files of a project: stored originals, thumbnails and display copies.

Layout under a project folder::

    images/<sha256[:2]>/<sha256><suffix>   the stored bytes (see workbench.images.decode)
    thumbs/<sha256>.jpg                    grid thumbnails (longest side 256 by default)
    display/<sha256>.jpg                   what the browser annotator loads (longest side 2048)

Every path handed around is relative to the project folder, in POSIX form, so that it can live in
the store and survive moving the workspace. Stored files are already upright (EXIF orientation is
applied at import), so their pixel size is the stored width/height and every coordinate refers to
it. A display copy may be smaller: the caller maps coordinates with
``natural size / display size``, where the display size is :func:`fit_size_wh` of the stored size.

All writes go through :func:`workbench.utils.atomic.atomic_write` with fsync: a crash leaves
either the old state or the new one, plus at worst a ``*.tmp`` that :func:`sweep_orphans` removes.
This module writes no database rows; the store calls it inside its transactions and calls
:func:`sweep_orphans` with the paths it knows about after a crash.
"""

from __future__ import annotations

import io
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from workbench.domain import ValidationError
from workbench.images.decode import (
    DecodedImage,
    image_to_rgb,
    load_upright,
    pixel_limit_lifted,
    read_orientation,
)
from workbench.utils.atomic import TMP_SUFFIX, atomic_write

IMAGES_DIR = "images"
THUMBS_DIR = "thumbs"
DISPLAY_DIR = "display"
THUMB_MAX_SIDE = 256
DISPLAY_MAX_SIDE = 2048
THUMB_JPEG_QUALITY = 85
DISPLAY_JPEG_QUALITY = 90


def stored_rel_path(sha256: str, suffix: str) -> str:
    """Where the bytes of an image with this content hash live, relative to the project folder."""
    _check_sha(sha256)
    return f"{IMAGES_DIR}/{sha256[:2]}/{sha256}{suffix.lower()}"


def _check_sha(sha256: str) -> None:
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ValidationError(f"not a sha256 hex digest: {sha256!r}")


def _resolve(project_dir: Path, rel_path: str) -> Path:
    """The absolute path of a stored file; refuses paths that leave ``images/``."""
    rel = PurePosixPath(str(rel_path).replace("\\", "/"))
    if rel.is_absolute() or ".." in rel.parts or not rel.parts or rel.parts[0] != IMAGES_DIR:
        raise ValidationError(f"stored image path must be relative and under {IMAGES_DIR}/: {rel_path!r}")
    return Path(project_dir, *rel.parts)


def _sha_of(rel_path: str) -> str:
    sha = PurePosixPath(str(rel_path).replace("\\", "/")).stem
    _check_sha(sha)
    return sha


def store_image(project_dir: Path, decoded: DecodedImage) -> str:
    """Write the image's stored bytes under its content address; return the relative path.

    Idempotent: when the file is already there (same sha256, same suffix) nothing is written.
    """
    rel = stored_rel_path(decoded.sha256, decoded.stored_suffix)
    dest = _resolve(Path(project_dir), rel)
    if not dest.is_file():
        atomic_write(dest, decoded.stored_bytes, fsync=True)
    return rel


def fit_size_wh(size_wh: tuple[int, int], max_side: int) -> tuple[int, int]:
    """The size an image of ``size_wh`` is shrunk to so that its longest side is <= ``max_side``.

    Never enlarges; keeps the aspect ratio to the nearest pixel and at least 1 pixel per side.
    """
    if max_side < 1:
        raise ValidationError(f"max_side must be at least 1, got {max_side}")
    w, h = size_wh
    scale = min(1.0, max_side / max(w, h))
    if scale >= 1.0:
        return (w, h)
    return (max(1, round(w * scale)), max(1, round(h * scale)))


def _resized_jpeg(src: Path, size_wh: tuple[int, int] | None, max_side: int, quality: int) -> bytes:
    img = load_upright(src, draft_size_wh=fit_size_wh(size_wh, max_side) if size_wh else None)
    rgb = image_to_rgb(img)
    # the target comes from the stored size, not the drafted one, so that it equals fit_size_wh
    size = fit_size_wh(size_wh or rgb.size, max_side)
    if size != rgb.size:
        rgb = rgb.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    buf = io.BytesIO()
    rgb.save(buf, format="JPEG", quality=quality, optimize=True)
    return buf.getvalue()


def _stored_size_wh(src: Path) -> tuple[int, int] | None:
    """The upright size from the header alone (stored files carry no pending EXIF rotation)."""
    try:
        with pixel_limit_lifted(), Image.open(src) as img:
            w, h = img.size
            # PIL's TIFF reader reports the rotated size itself; other formats report raw
            if img.format != "TIFF" and read_orientation(img) in (5, 6, 7, 8):
                return (h, w)
            return (w, h)
    except Exception:  # noqa: BLE001 - the full load right after reports the real problem
        return None


def _derived(project_dir: Path, rel_path: str, folder: str, max_side: int, quality: int) -> Path:
    project_dir = Path(project_dir)
    src = _resolve(project_dir, rel_path)
    dest = project_dir / folder / f"{_sha_of(rel_path)}.jpg"
    if dest.is_file():
        return dest
    if not src.is_file():
        raise ValidationError(f"{rel_path}: stored image file is missing")
    atomic_write(dest, _resized_jpeg(src, _stored_size_wh(src), max_side, quality), fsync=True)
    return dest


def make_thumbnail(project_dir: Path, rel_path: str, *, max_side: int = THUMB_MAX_SIDE) -> Path:
    """JPEG thumbnail (cached: an existing one is reused whatever its size)."""
    return _derived(project_dir, rel_path, THUMBS_DIR, max_side, THUMB_JPEG_QUALITY)


def make_display_copy(project_dir: Path, rel_path: str, *, max_side: int = DISPLAY_MAX_SIDE) -> Path:
    """JPEG copy for the browser annotator, of size :func:`fit_size_wh` (cached like thumbnails)."""
    return _derived(project_dir, rel_path, DISPLAY_DIR, max_side, DISPLAY_JPEG_QUALITY)


def delete_image_files(project_dir: Path, rel_path: str) -> None:
    """Remove the stored file, its thumbnail and display copy; missing ones are fine."""
    project_dir = Path(project_dir)
    src = _resolve(project_dir, rel_path)
    sha = _sha_of(rel_path)
    for path in (src, project_dir / THUMBS_DIR / f"{sha}.jpg", project_dir / DISPLAY_DIR / f"{sha}.jpg"):
        try:
            path.unlink()
        except FileNotFoundError:
            pass
    try:
        src.parent.rmdir()  # the shard folder, only when empty
    except OSError:
        pass
    from workbench.images import tiles  # tiles builds on this module

    tiles.delete_tiles(project_dir, rel_path)


def load_image_rgb(project_dir: Path, rel_path: str) -> np.ndarray:
    """The stored image as an upright H x W x 3 uint8 array (see ``image_to_rgb`` for modes)."""
    src = _resolve(Path(project_dir), rel_path)
    try:
        img = load_upright(src)
    except FileNotFoundError as exc:
        raise ValidationError(f"{rel_path}: stored image file is missing") from exc
    arr = np.asarray(image_to_rgb(img), dtype=np.uint8)
    return np.ascontiguousarray(arr)


def sweep_orphans(project_dir: Path, known_rel_paths: set[str]) -> list[Path]:
    """Remove stored files no row refers to, their derived copies, and leftover ``*.tmp`` files.

    Meant for opening a project after a crash mid-import (files written, rows rolled back). It
    must not run while an import into the same project is in flight: that import's files are
    not known yet. Returns the removed paths, sorted.
    """
    project_dir = Path(project_dir)
    known = {PurePosixPath(str(p).replace("\\", "/")).as_posix() for p in known_rel_paths}
    known_shas = set()
    for rel in known:
        try:
            known_shas.add(_sha_of(rel))
        except ValidationError:
            continue
    removed: list[Path] = []
    images = project_dir / IMAGES_DIR
    if images.is_dir():
        for path in sorted(images.rglob("*")):
            if not (path.is_file() or path.is_symlink()):
                continue
            rel = path.relative_to(project_dir).as_posix()
            if path.name.endswith(TMP_SUFFIX) or rel not in known:
                path.unlink(missing_ok=True)
                removed.append(path)
        for shard in sorted(images.iterdir(), reverse=True):
            if shard.is_dir():
                try:
                    shard.rmdir()
                except OSError:
                    pass
    for folder in (THUMBS_DIR, DISPLAY_DIR):
        base = project_dir / folder
        if not base.is_dir():
            continue
        for path in sorted(base.iterdir()):
            if not (path.is_file() or path.is_symlink()):
                continue
            if path.name.endswith(TMP_SUFFIX) or path.stem not in known_shas:
                path.unlink(missing_ok=True)
                removed.append(path)
    from workbench.images import tiles  # tiles builds on this module

    removed.extend(tiles.sweep_tiles(project_dir, known_shas))
    return sorted(removed)


__all__ = [
    "DISPLAY_MAX_SIDE",
    "THUMB_MAX_SIDE",
    "delete_image_files",
    "fit_size_wh",
    "load_image_rgb",
    "make_display_copy",
    "make_thumbnail",
    "stored_rel_path",
    "store_image",
    "sweep_orphans",
]
