"""Real images written on the fly: random-content files of any format, flat-colour PNGs, four-quadrant
patterns (asymmetric under every flip and rotation) in any format, and zips of them."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image


def image_bytes(width: int = 32, height: int = 24, *, seed: int = 0, fmt: str = "PNG") -> bytes:
    """A small real image with random content (distinct per seed, so distinct sha256)."""
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 255, size=(height, width, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


def write_image(path: Path, width: int = 32, height: int = 24, *, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".bmp": "BMP", ".webp": "WEBP", ".tif": "TIFF"}[
        path.suffix.lower()
    ]
    path.write_bytes(image_bytes(width, height, seed=seed, fmt=fmt))
    return path


def png_bytes(size_wh: tuple[int, int], color: tuple[int, int, int] = (120, 140, 160)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size_wh, color).save(buf, format="PNG")
    return buf.getvalue()


def pattern_rgb(width: int = 24, height: int = 16) -> np.ndarray:
    """Four flat quadrants of distinct colours: asymmetric under every flip and rotation."""
    arr = np.zeros((height, width, 3), dtype=np.uint8)
    h2, w2 = height // 2, width // 2
    arr[:h2, :w2] = (220, 30, 30)
    arr[:h2, w2:] = (30, 200, 40)
    arr[h2:, :w2] = (40, 60, 210)
    arr[h2:, w2:] = (240, 230, 60)
    return arr


def encode(img: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def pattern_jpeg(width: int = 24, height: int = 16) -> bytes:
    return encode(Image.fromarray(pattern_rgb(width, height)), "JPEG", quality=95)


def pattern_png(width: int = 24, height: int = 16) -> bytes:
    return encode(Image.fromarray(pattern_rgb(width, height)), "PNG")


def write_file(path: Path, data: bytes) -> Path:
    """``data`` at ``path``, its folders made."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def make_zip(path: Path, entries: list[tuple[str, bytes]], *, symlinks: tuple[str, ...] = ()) -> Path:
    """A zip of ``entries`` (name, bytes); the names in ``symlinks`` are stored as symbolic links."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries:
            info = zipfile.ZipInfo(name)
            if name in symlinks:
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, data)
    return path
