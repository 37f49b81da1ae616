"""Decoding policy: one candidate image in (a file or bytes), a validated upright image out.

Everything that enters the workbench as an image passes through :func:`decode_image`, which is the
single place that decides what is a usable image. It refuses, with the file's name and the problem:
empty files, non-images (whatever their name), truncated or corrupt data (the image is fully
decoded, not just its header), images over a pixel limit (checked from the header before any
decoding: decompression bombs), formats outside JPEG/PNG/BMP/TIFF/WebP (a GIF named ``.jpg`` is
refused, not silently accepted), and pixel modes without a faithful 8-bit view (32-bit float,
LAB, HSV).

Stored bytes policy (what :mod:`workbench.images.storage` writes under ``images/``):

* the ORIGINAL bytes, unchanged, when the image needs no EXIF rotation (orientation absent or 1)
  and is a single-frame JPEG, PNG, WebP or BMP: browsers show those as they are, and the file
  the user gave us stays bit-identical (its sha256 is the content address);
* otherwise an upright, lossless PNG of the first frame: EXIF-rotated images (so that no reader,
  browser or PIL, ever has to apply the orientation again), TIFF (browsers cannot show it),
  animated WebP/PNG. The PNG keeps the bit depth and alpha (16-bit grey stays 16-bit).

``sha256`` is always of the original bytes, so the same upload is recognised as a duplicate
whatever was stored. Width and height are always the upright size.

Zero-dimension headers (0x0, 1x0) are refused by PIL's own parsers as "cannot identify image
file"; for PNG we read the header ourselves to say so plainly.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import stat
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile

from workbench.domain import ValidationError
from workbench.utils.files import file_kind

SUPPORTED_TEXT = "JPEG, PNG, BMP, TIFF, WebP are"

DEFAULT_MAX_PIXELS = 89_478_485
"""PIL's own default limit (about 89 megapixels, a 1 GiB RGBA buffer / 3)."""
DEFAULT_MAX_FILE_BYTES = 1 << 30
"""Largest file or zip entry read into memory (1 GiB)."""

ACCEPTED_FORMATS: dict[str, str] = {
    # PIL format name -> the name we report; MPO is how PIL names multi-picture JPEGs from phones.
    "JPEG": "JPEG",
    "MPO": "JPEG",
    "PNG": "PNG",
    "BMP": "BMP",
    "TIFF": "TIFF",
    "WEBP": "WEBP",
}
KEEP_ORIGINAL_FORMATS: dict[str, str] = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "BMP": ".bmp"}
UNSUPPORTED_MODES: dict[str, str] = {
    "F": "32-bit floating point",
    "LAB": "CIE L*a*b*",
    "HSV": "HSV",
}

_ORIENTATION_TAG = 0x0112
_TRANSPOSE_FOR_ORIENTATION: dict[int, Image.Transpose] = {
    # The same table as PIL.ImageOps.exif_transpose.
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

# Magic numbers, to tell "a damaged PNG" from "not an image at all" when PIL cannot identify a file.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"GIF8", "GIF"),
)
SYMLINK_REASON = "symbolic link, not followed"


class ImageError(ValidationError):
    """An input that is not a usable image; ``name`` is the file, ``reason`` the problem alone."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


@dataclass(frozen=True)
class ImageSource:
    """One candidate image: a file on disk (``path``) or bytes (a zip entry, an upload).

    When both are set, ``data`` is what is read (LabelMe's embedded imageData beside a path);
    when neither is, :func:`decode_image` refuses it with a clear reason.
    """

    name: str
    """Display/original relative name: the file name, the path inside a folder or an archive."""
    path: Path | None = None
    data: bytes | None = None
    origin: str | None = None
    """The archive it came from (its file name), for messages; None for files and uploads."""

    @property
    def display_name(self) -> str:
        return f"{self.origin}:{self.name}" if self.origin else self.name


@dataclass(frozen=True)
class DecodedImage:
    """A validated, upright image and the bytes to store for it (see the module's policy)."""

    name: str
    sha256: str
    """Of the ORIGINAL bytes: the content address and the duplicate key."""
    width: int
    height: int
    """Upright size, after EXIF orientation."""
    format: str
    """JPEG, PNG, BMP, TIFF or WEBP (the content's format, whatever the file's suffix)."""
    image: Image.Image
    """Upright pixels as 8-bit RGB: exactly what :func:`image_to_rgb` and training see."""
    stored_bytes: bytes
    stored_suffix: str
    mode: str = ""
    """The original PIL mode (L, I;16, P, RGBA, CMYK, ...)."""
    orientation: int = 1
    """The EXIF orientation that was applied (1 = none)."""


# --------------------------------------------------------------------------------------------
# Opening with PIL's global pixel limit lifted (our own limit is checked first, from the header)

_PIL_LIMIT_LOCK = threading.RLock()


@contextlib.contextmanager
def pixel_limit_lifted() -> Iterator[None]:
    """Lift PIL's global MAX_IMAGE_PIXELS while we open and decode.

    PIL warns above 89 Mpx and raises above twice that, in ``Image.open`` and again while
    loading TIFF tiles; left in place it would preempt our configurable limit and our message.
    The global is process-wide, so the change is made under a lock and always restored. Inside,
    truncated files are errors (``LOAD_TRUNCATED_IMAGES`` off), whatever another module set.
    """
    with _PIL_LIMIT_LOCK:
        saved = Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES
        Image.MAX_IMAGE_PIXELS = None
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES = saved


def read_orientation(img: Image.Image) -> int:
    """EXIF orientation 1..8; 1 when absent, invalid or unreadable (a broken EXIF block)."""
    try:
        value = img.getexif().get(_ORIENTATION_TAG, 1)
    except Exception:  # noqa: BLE001 - a corrupt EXIF block must not reject the pixels
        return 1
    return value if isinstance(value, int) and value in _TRANSPOSE_FOR_ORIENTATION else 1


def apply_orientation(img: Image.Image, orientation: int) -> Image.Image:
    """The upright image (as ``ImageOps.exif_transpose``), applied exactly once."""
    method = _TRANSPOSE_FOR_ORIENTATION.get(orientation)
    return img.transpose(method) if method is not None else img


def image_to_rgb(img: Image.Image) -> Image.Image:
    """8-bit RGB view of any supported mode, the one view training and the UI share.

    Alpha is composited over white (what a viewer shows; transparent pixels often hide junk
    colour). 16-bit and 32-bit integer grey are scaled by 255/65535 (a fixed scale, so that all
    images of a dataset keep comparable intensities), CMYK/YCbCr through PIL's conversions.
    """
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in UNSUPPORTED_MODES:
        raise ValueError(f"unsupported pixel mode {mode} ({UNSUPPORTED_MODES[mode]})")
    if mode.startswith("I"):  # I, I;16, I;16B, I;16L, I;16N
        arr = np.asarray(img).astype(np.float64)
        arr = np.clip(arr, 0, 65535) * (255.0 / 65535.0)
        grey = Image.fromarray(np.rint(arr).astype(np.uint8), mode="L")
        return grey.convert("RGB")
    has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or (mode == "P" and "transparency" in img.info)
    if has_alpha:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def image_to_png_mode(img: Image.Image) -> Image.Image:
    """The image in a mode PNG can hold without losing depth or alpha."""
    mode = img.mode
    if mode in ("1", "L", "LA", "P", "RGB", "RGBA", "I;16"):
        return img
    if mode.startswith("I"):
        arr = np.clip(np.asarray(img).astype(np.int64), 0, 65535).astype(np.uint16)
        return Image.fromarray(arr, mode="I;16")
    if mode in ("PA", "La", "RGBa"):
        return img.convert("RGBA")
    return image_to_rgb(img)


def load_upright(path: Path, *, draft_size_wh: tuple[int, int] | None = None) -> Image.Image:
    """Open a stored image file, decode it fully and return it upright (for media and training).

    ``draft_size_wh`` (upright) lets JPEG decode at 1/2, 1/4 or 1/8 scale when the result is
    only needed at that size or larger (thumbnails, display copies): several times faster.
    """
    with pixel_limit_lifted(), Image.open(path) as img:
        if draft_size_wh is not None and img.format in ("JPEG", "MPO"):
            w, h = draft_size_wh
            if read_orientation(img) in (5, 6, 7, 8):
                w, h = h, w
            img.draft("RGB", (w, h))
        img.load()
        orientation = read_orientation(img)
        upright = apply_orientation(img, orientation)
        if upright is img:
            upright = img.copy()
    return upright


# --------------------------------------------------------------------------------------------
# Decoding


def _read_source(src: ImageSource, max_file_bytes: int) -> bytes:
    if src.data is not None:
        return src.data
    if src.path is None:
        raise ImageError(src.display_name, "no image file and no image data")
    try:
        st = os.stat(src.path, follow_symlinks=False)
        if stat.S_ISLNK(st.st_mode):
            raise ImageError(src.display_name, SYMLINK_REASON)
        if not stat.S_ISREG(st.st_mode):
            raise ImageError(src.display_name, f"not a regular file ({file_kind(st.st_mode)})")
        if st.st_size > max_file_bytes:
            raise ImageError(
                src.display_name, f"file too large: {st.st_size} bytes, over the limit of {max_file_bytes}"
            )
        with open(src.path, "rb") as f:
            return f.read(max_file_bytes + 1)
    except ImageError:
        raise
    except OSError as exc:
        raise ImageError(src.display_name, f"cannot read file: {exc.strerror or exc}") from exc


def _png_header_size(data: bytes) -> tuple[int, int] | None:
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    return None


def _sniff_format(data: bytes) -> str | None:
    for magic, fmt in _SIGNATURES:
        if data.startswith(magic) and (fmt != "BMP" or data[6:10] == b"\0\0\0\0"):
            return fmt
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def _unidentified_reason(data: bytes) -> str:
    size = _png_header_size(data)
    if size is not None and (size[0] == 0 or size[1] == 0):
        return f"image has no pixels: its header says {size[0]}x{size[1]}"
    fmt = _sniff_format(data)
    if fmt == "GIF":
        return f"format GIF is not supported ({SUPPORTED_TEXT})"
    if fmt is not None:
        return f"truncated or corrupt {fmt} header: cannot identify image file"
    return "not an image: cannot identify image file"


def decode_image(
    src: ImageSource,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
) -> DecodedImage:
    """Validate and fully decode one image; raise :class:`ImageError` naming the file and problem."""
    name = src.display_name
    data = _read_source(src, max_file_bytes)
    if len(data) == 0:
        raise ImageError(name, "empty file (0 bytes)")
    if len(data) > max_file_bytes:
        raise ImageError(name, f"file too large: over the limit of {max_file_bytes} bytes")
    sha256 = hashlib.sha256(data).hexdigest()

    with pixel_limit_lifted():
        try:
            img = Image.open(io.BytesIO(data))
        except Image.UnidentifiedImageError as exc:
            raise ImageError(name, _unidentified_reason(data)) from exc
        except Exception as exc:  # noqa: BLE001 - parsers of untrusted bytes raise anything
            fmt = _sniff_format(data) or "image"
            raise ImageError(name, f"truncated or corrupt {fmt} header: {exc}") from exc
        with img:
            return _decode_opened(src, img, data, sha256, max_pixels)


def _verify_png_checksums(name: str, data: bytes) -> None:
    """PNG carries a CRC per chunk that PIL's decoder does not check: scrambled pixel data would
    otherwise decode into silent garbage."""
    try:
        with Image.open(io.BytesIO(data)) as probe:
            probe.verify()
    except Exception as exc:  # noqa: BLE001
        raise ImageError(name, f"truncated or corrupt PNG data: {exc}") from exc


def _decode_opened(
    src: ImageSource, img: ImageFile.ImageFile, data: bytes, sha256: str, max_pixels: int
) -> DecodedImage:
    name = src.display_name
    pil_format = img.format or "?"
    if pil_format not in ACCEPTED_FORMATS:
        raise ImageError(name, f"format {pil_format} is not supported ({SUPPORTED_TEXT})")
    fmt = ACCEPTED_FORMATS[pil_format]
    width, height = img.size
    if width <= 0 or height <= 0:
        raise ImageError(name, f"image has no pixels: its header says {width}x{height}")
    if width * height > max_pixels:
        raise ImageError(
            name,
            f"too many pixels: {width}x{height} = {width * height} pixels, over the limit of "
            f"{max_pixels} (possible decompression bomb)",
        )
    if img.mode in UNSUPPORTED_MODES:
        raise ImageError(name, f"unsupported pixel mode {img.mode} ({UNSUPPORTED_MODES[img.mode]})")
    mode = img.mode
    declared_orientation = read_orientation(img)
    if pil_format == "PNG":
        _verify_png_checksums(name, data)
    try:
        frames = int(getattr(img, "n_frames", 1))  # counted before load: counting may seek
        img.seek(0)
    except Exception as exc:  # noqa: BLE001
        raise ImageError(name, f"truncated or corrupt {fmt} data: {exc}") from exc
    try:
        img.load()  # the full decode: truncated and corrupt data fail here, not later in training
    except Exception as exc:  # noqa: BLE001 - decoders of untrusted bytes raise anything
        raise ImageError(name, f"truncated or corrupt {fmt} data: {exc}") from exc
    if img.mode in UNSUPPORTED_MODES:  # some decoders settle the mode only on load
        raise ImageError(name, f"unsupported pixel mode {img.mode} ({UNSUPPORTED_MODES[img.mode]})")
    # PIL's TIFF loader applies the orientation itself while loading (and drops the tag): read
    # what is left to do after the load, so that it is applied exactly once whatever the format.
    orientation = read_orientation(img)

    upright = apply_orientation(img, orientation)
    try:
        rgb = image_to_rgb(upright)
        if rgb is img:
            rgb = img.copy()
    except Exception as exc:  # noqa: BLE001
        raise ImageError(name, f"unsupported pixel mode {img.mode}: {exc}") from exc

    multi_frame = frames > 1 and pil_format != "MPO"
    if declared_orientation == 1 and fmt in KEEP_ORIGINAL_FORMATS and not multi_frame:
        stored_bytes, stored_suffix = data, KEEP_ORIGINAL_FORMATS[fmt]
    else:
        buf = io.BytesIO()
        image_to_png_mode(upright).save(buf, format="PNG", compress_level=6)
        stored_bytes, stored_suffix = buf.getvalue(), ".png"
    return DecodedImage(
        name=src.name,
        sha256=sha256,
        width=upright.width,
        height=upright.height,
        format=fmt,
        image=rgb,
        stored_bytes=stored_bytes,
        stored_suffix=stored_suffix,
        mode=mode,
        orientation=declared_orientation,
    )


__all__ = [
    "ACCEPTED_FORMATS",
    "DEFAULT_MAX_FILE_BYTES",
    "DEFAULT_MAX_PIXELS",
    "SUPPORTED_TEXT",
    "SYMLINK_REASON",
    "DecodedImage",
    "ImageError",
    "ImageSource",
    "apply_orientation",
    "decode_image",
    "image_to_png_mode",
    "image_to_rgb",
    "load_upright",
    "pixel_limit_lifted",
    "read_orientation",
]
