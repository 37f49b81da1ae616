"""The pixels a tool sees: the stored file decoded upright (EXIF orientation applied) as 8-bit RGB.

Tools see the original resolution, not the display copy: prompts and results are in natural pixels
of the upright image, so they line up on EXIF-rotated images without any further mapping.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from workbench.domain import ValidationError
from workbench.images.decode import image_to_rgb, load_upright


def load_rgb(path: Path, *, name: str = "") -> np.ndarray:
    """H x W x 3 uint8 RGB of the upright image at ``path``; a missing file names the image."""
    try:
        img = load_upright(Path(path))
    except FileNotFoundError as exc:
        raise ValidationError(f"{name or path}: image file {path} is missing") from exc
    return np.ascontiguousarray(np.asarray(image_to_rgb(img), dtype=np.uint8))
