"""Real images written on the fly: random-content files of any format, flat-colour PNGs."""

from __future__ import annotations

import io
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
