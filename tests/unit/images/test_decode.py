"""Image decoding: a corpus of bad inputs (each refused with its reason, nothing stored), every
accepted format and mode, and EXIF orientations."""

from __future__ import annotations

import hashlib
import io
import os
import struct
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.support.images import encode, make_zip, pattern_jpeg, pattern_png, pattern_rgb, write_file
from workbench.domain import ValidationError
from workbench.images.decode import DecodedImage, ImageError, ImageSource, decode_image
from workbench.images.sources import Skipped, iter_image_sources
from workbench.images.storage import store_image

# ---------------------------------------------------------------------------------------------
# Factories


def noisy_jpeg_bytes(width: int = 96, height: int = 64) -> bytes:
    """Noise compresses badly, so that half of the file is well inside the scan data."""
    arr = np.random.default_rng(1).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return encode(Image.fromarray(arr), "JPEG", quality=90)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_with_header(width: int, height: int) -> bytes:
    """A tiny PNG whose IHDR claims any size: a decompression bomb costs a few dozen bytes."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\0" * 16))
        + png_chunk(b"IEND", b"")
    )


def run_import(
    paths: list[Path], project_dir: Path, *, max_pixels: int = 89_478_485
) -> tuple[list[DecodedImage], list[Skipped]]:
    """What the import service does: walk, decode, store the good ones, report the rest."""
    skipped: list[Skipped] = []
    decoded: list[DecodedImage] = []
    for src in iter_image_sources(paths, skipped=skipped):
        try:
            d = decode_image(src, max_pixels=max_pixels)
        except ImageError as err:
            skipped.append(Skipped.from_error(err))
            continue
        store_image(project_dir, d)
        decoded.append(d)
    return decoded, skipped


# ---------------------------------------------------------------------------------------------
# Bad-input corpus: each case builds its input in a folder and names the reason it must give


def _truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _corrupt_zip_entry(tmp: Path) -> list[Path]:
    path = make_zip(tmp / "bad_crc.zip", [("photo.png", pattern_png())])
    raw = bytearray(path.read_bytes())
    at = raw.index(b"IDAT") + 8  # inside the stored (uncompressed) entry's image data
    raw[at] ^= 0xFF
    path.write_bytes(bytes(raw))
    return [path]


def _fifo(tmp: Path) -> list[Path]:
    os.mkfifo(tmp / "pipe.jpg")
    return [tmp]


def _symlink_on_disk(tmp: Path) -> list[Path]:
    target = write_file(tmp / "elsewhere" / "real.png", pattern_png())
    folder = tmp / "photos"
    folder.mkdir()
    (folder / "link.png").symlink_to(target)
    return [folder]


def _unreadable(tmp: Path) -> list[Path]:
    if os.geteuid() == 0:
        pytest.skip("running as root: chmod 000 does not stop root from reading (the fifo case covers it)")
    path = write_file(tmp / "secret.png", pattern_png())
    path.chmod(0)
    return [path]


def _mode_f_tiff(tmp: Path) -> list[Path]:
    img = Image.fromarray(np.linspace(0, 1, 48, dtype=np.float32).reshape(6, 8), mode="F")
    return [write_file(tmp / "depth.tif", encode(img, "TIFF"))]


def _lab_tiff(tmp: Path) -> list[Path]:
    return [write_file(tmp / "lab.tiff", encode(Image.new("LAB", (8, 6), (50, 10, 10)), "TIFF"))]


def _gif_named_jpg(tmp: Path) -> list[Path]:
    return [write_file(tmp / "anim.jpg", encode(Image.new("RGB", (8, 6), (9, 9, 9)), "GIF"))]


def _corrupt_idat(tmp: Path) -> list[Path]:
    data = bytearray(encode(Image.fromarray(pattern_rgb(64, 64)), "PNG", compress_level=1))
    start = data.index(b"IDAT") + 4
    for i in range(start + 2, start + 40):
        data[i] ^= 0x5A
    return [write_file(tmp / "scrambled.png", bytes(data))]


BAD_CASES: dict[str, tuple[Callable[[Path], list[Path]], str, str]] = {
    # id: (build input, name in the report, expected reason substring)
    "zero-byte jpg": (lambda t: [write_file(t / "empty.jpg", b"")], "empty.jpg", "empty file (0 bytes)"),
    "truncated jpeg": (
        lambda t: [write_file(t / "cut.jpg", _truncated(noisy_jpeg_bytes()))],
        "cut.jpg",
        "truncated or corrupt JPEG data: image file is truncated",
    ),
    "truncated png": (
        lambda t: [write_file(t / "cut.png", _truncated(pattern_png(64, 48)))],
        "cut.png",
        "truncated or corrupt PNG data",
    ),
    "truncated webp": (
        lambda t: [write_file(t / "cut.webp", _truncated(encode(Image.fromarray(pattern_rgb(64, 48)), "WEBP")))],
        "cut.webp",
        "truncated or corrupt WEBP",
    ),
    "png header only": (
        lambda t: [write_file(t / "head.png", pattern_png()[:20])],
        "head.png",
        "truncated or corrupt PNG header",
    ),
    "scrambled png data": (_corrupt_idat, "scrambled.png", "truncated or corrupt PNG data"),
    "random bytes named png": (
        lambda t: [write_file(t / "noise.png", np.random.default_rng(0).bytes(2000))],
        "noise.png",
        "not an image: cannot identify image file",
    ),
    "text named jpg": (
        lambda t: [write_file(t / "notes.jpg", b"shopping list: eggs, milk\n")],
        "notes.jpg",
        "not an image: cannot identify image file",
    ),
    "html named webp": (
        lambda t: [write_file(t / "page.webp", b"<!doctype html><html><body>404 Not Found</body></html>")],
        "page.webp",
        "not an image: cannot identify image file",
    ),
    "decompression bomb header": (
        lambda t: [write_file(t / "bomb.png", png_with_header(100_000, 100_000))],
        "bomb.png",
        "too many pixels: 100000x100000 = 10000000000 pixels, over the limit of 89478485",
    ),
    "zero-size header 0x0": (
        lambda t: [write_file(t / "zero.png", png_with_header(0, 0))],
        "zero.png",
        "image has no pixels: its header says 0x0",
    ),
    "zero-size header 1x0": (
        lambda t: [write_file(t / "flat.png", png_with_header(1, 0))],
        "flat.png",
        "image has no pixels: its header says 1x0",
    ),
    "zip slip": (
        lambda t: [make_zip(t / "a.zip", [("../evil.png", pattern_png())])],
        "a.zip:../evil.png",
        "zip entry escapes the archive folder",
    ),
    "zip slip deep": (
        lambda t: [make_zip(t / "a.zip", [("sub/../../evil.png", pattern_png())])],
        "a.zip:sub/../../evil.png",
        "zip entry escapes the archive folder",
    ),
    "zip absolute entry": (
        lambda t: [make_zip(t / "a.zip", [("/tmp/evil.png", pattern_png())])],
        "a.zip:/tmp/evil.png",
        "zip entry escapes the archive folder",
    ),
    "zip drive letter entry": (
        lambda t: [make_zip(t / "a.zip", [("C:/Windows/evil.png", pattern_png())])],
        "a.zip:C:/Windows/evil.png",
        "zip entry escapes the archive folder",
    ),
    "zip backslash slip": (
        lambda t: [make_zip(t / "a.zip", [("..\\evil.png", pattern_png())])],
        "a.zip:..\\evil.png",
        "zip entry escapes the archive folder",
    ),
    "zip symlink entry": (
        lambda t: [make_zip(t / "a.zip", [("link.png", b"/etc/passwd")], symlinks=("link.png",))],
        "a.zip:link.png",
        "symbolic link, not followed",
    ),
    "zip entry not an image": (
        lambda t: [make_zip(t / "a.zip", [("pics/readme.png", b"not a picture")])],
        "a.zip:pics/readme.png",
        "not an image: cannot identify image file",
    ),
    "zip entry bad crc": (_corrupt_zip_entry, "bad_crc.zip:photo.png", "corrupt zip entry"),
    "corrupt zip": (
        lambda t: [write_file(t / "broken.zip", b"PK\x03\x04 this is not really a zip archive")],
        "broken.zip",
        "corrupt zip archive",
    ),
    "symlink on disk": (_symlink_on_disk, "link.png", "symbolic link, not followed"),
    "symlink given directly": (
        lambda t: [_link(t)],
        "given.png",
        "symbolic link, not followed",
    ),
    "fifo named jpg": (_fifo, "pipe.jpg", "not a regular file (named pipe)"),
    "unreadable file": (_unreadable, "secret.png", "cannot read file: Permission denied"),
    "float mode tiff": (_mode_f_tiff, "depth.tif", "unsupported pixel mode F (32-bit floating point)"),
    "lab mode tiff": (_lab_tiff, "lab.tiff", "unsupported pixel mode LAB"),
    "gif renamed jpg": (_gif_named_jpg, "anim.jpg", "format GIF is not supported"),
    "non-image name given": (
        lambda t: [write_file(t / "notes.txt", b"hello")],
        "notes.txt",
        "not an image or zip file name (.txt)",
    ),
    "heic in a folder": (
        lambda t: [write_file(t / "phone" / "IMG_0001.HEIC", b"\0\0\0\x18ftypheic").parent],
        "IMG_0001.HEIC",
        "format .heic is not supported (JPEG, PNG, BMP, TIFF, WebP are)",
    ),
    "gif in a zip": (
        lambda t: [make_zip(t / "a.zip", [("x/anim.gif", b"GIF89a")])],
        "a.zip:x/anim.gif",
        "format .gif is not supported",
    ),
    "missing path": (lambda t: [t / "nowhere.png"], "nowhere.png", "cannot read: No such file"),
}


def _link(tmp: Path) -> Path:
    target = write_file(tmp / "target" / "real.png", pattern_png())
    link = tmp / "given.png"
    link.symlink_to(target)
    return link


@pytest.mark.parametrize("case", list(BAD_CASES), ids=list(BAD_CASES))
def test_bad_input_is_skipped_with_its_reason_and_nothing_is_stored(case: str, tmp_path: Path) -> None:
    build, name, reason = BAD_CASES[case]
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    project = tmp_path / "project"
    decoded, skipped = run_import(build(inputs), project)
    assert decoded == []
    assert len(skipped) == 1, skipped
    assert skipped[0].name.endswith(name)
    assert reason in skipped[0].reason
    assert not project.exists() or not any(p.is_file() for p in project.rglob("*"))


def test_bad_cases_cover_at_least_fifteen_inputs() -> None:
    assert len(BAD_CASES) >= 15


def test_pixel_limit_is_configurable_for_real_images(tmp_path: Path) -> None:
    path = write_file(tmp_path / "big.png", pattern_png(40, 30))
    decoded, skipped = run_import([path], tmp_path / "project", max_pixels=1000)
    assert decoded == []
    assert skipped == [
        Skipped(
            "big.png",
            "too many pixels: 40x30 = 1200 pixels, over the limit of 1000 (possible decompression bomb)",
        )
    ]
    assert decode_image(ImageSource("big.png", path=path), max_pixels=1200).width == 40


def test_our_limit_not_pils_decides_and_pils_global_is_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50)  # PIL would warn at 50 px and raise at 100
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a DecompressionBombWarning would fail the test
        ok = decode_image(ImageSource("ok.png", data=pattern_png(24, 16)))
        assert (ok.width, ok.height) == (24, 16)
        with pytest.raises(ImageError, match=r"bomb\.png: too many pixels: 100000x100000"):
            decode_image(ImageSource("bomb.png", data=png_with_header(100_000, 100_000)))
    assert Image.MAX_IMAGE_PIXELS == 50


def test_image_error_is_a_validation_error_naming_file_and_problem() -> None:
    with pytest.raises(ValidationError) as info:
        decode_image(ImageSource("shots/x.jpg", data=b""))
    assert str(info.value) == "shots/x.jpg: empty file (0 bytes)"
    assert isinstance(info.value, ImageError)
    assert (info.value.name, info.value.reason) == ("shots/x.jpg", "empty file (0 bytes)")


def test_zip_entry_errors_name_the_archive() -> None:
    src = ImageSource("pics/bad.jpg", data=b"junk", origin="batch.zip")
    with pytest.raises(ImageError, match=r"^batch\.zip:pics/bad\.jpg: not an image"):
        decode_image(src)


def test_file_vanished_between_walk_and_decode(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="gone.png: cannot read file: No such file"):
        decode_image(ImageSource("gone.png", path=tmp_path / "gone.png"))


def test_image_source_without_path_or_data_is_refused() -> None:
    with pytest.raises(ImageError, match="x.png: no image file and no image data"):
        decode_image(ImageSource("x.png"))


def test_image_source_data_wins_over_path(tmp_path: Path) -> None:
    path = write_file(tmp_path / "x.png", b"not read")
    d = decode_image(ImageSource("x.png", path=path, data=pattern_png()))
    assert d.sha256 == hashlib.sha256(pattern_png()).hexdigest()


def test_bad_files_do_not_stop_the_good_ones(tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    write_file(folder / "a_good.png", pattern_png())
    write_file(folder / "b_empty.jpg", b"")
    write_file(folder / "c" / "good.jpg", pattern_jpeg())
    write_file(folder / "c" / "d_text.png", b"hello")
    decoded, skipped = run_import([folder], tmp_path / "project")
    assert [d.name for d in decoded] == ["a_good.png", "c/good.jpg"]
    assert [(s.name, s.reason.split(":")[0]) for s in skipped] == [
        ("b_empty.jpg", "empty file (0 bytes)"),
        ("c/d_text.png", "not an image"),
    ]
    stored = sorted(p.name for p in (tmp_path / "project" / "images").rglob("*") if p.is_file())
    assert stored == sorted(f"{d.sha256}{d.stored_suffix}" for d in decoded)


# ---------------------------------------------------------------------------------------------
# Accepted formats and modes


def _grey16() -> Image.Image:
    arr = (np.arange(16 * 24, dtype=np.uint32).reshape(16, 24) * 170).astype(np.uint16)
    return Image.fromarray(arr)  # mode I;16


def png16_rgb_bytes(arr: np.ndarray) -> bytes:
    """A 48-bit RGB PNG written by hand (PIL cannot write one): 16 bits per channel."""
    h, w, _ = arr.shape
    rows = b"".join(b"\0" + arr[y].astype(">u2").tobytes() for y in range(h))
    ihdr = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(rows))
        + png_chunk(b"IEND", b"")
    )


def test_sixteen_bit_rgb_png() -> None:
    arr = pattern_rgb().astype(np.uint16) * 257 + 100
    data = png16_rgb_bytes(arr)
    d = decode_image(ImageSource("deep.png", data=data))
    assert (d.width, d.height, d.format) == (24, 16, "PNG")
    assert d.stored_bytes == data
    assert np.abs(np.asarray(d.image).astype(int) - pattern_rgb().astype(int)).max() <= 1


def _expected_rgb(img: Image.Image) -> np.ndarray:
    """Independent expectation: 16-bit scaled by 255/65535, alpha over white, the rest as PIL."""
    if img.mode.startswith("I"):
        grey = np.rint(np.asarray(img).astype(np.float64) * 255 / 65535).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        rgba = np.asarray(img.convert("RGBA")).astype(np.float64)
        alpha = rgba[:, :, 3:] / 255
        return np.rint(rgba[:, :, :3] * alpha + 255 * (1 - alpha)).astype(np.uint8)
    return np.asarray(img.convert("RGB"))


def _rgba() -> Image.Image:
    arr = np.dstack([pattern_rgb(), np.tile(np.linspace(0, 255, 24, dtype=np.uint8), (16, 1))])
    return Image.fromarray(arr, mode="RGBA")


def _palette(transparent: bool) -> Image.Image:
    img = Image.fromarray(pattern_rgb()).quantize(colors=4)
    if transparent:
        img.info["transparency"] = 0
    return img


GOOD_CASES: dict[str, tuple[Callable[[], Image.Image], str, dict[str, object], str, str, bool]] = {
    # id: (image, PIL save format, save options, file suffix, stored suffix, lossless)
    "jpeg rgb": (lambda: Image.fromarray(pattern_rgb()), "JPEG", {"quality": 95}, ".jpg", ".jpg", False),
    "jpeg grey": (lambda: Image.fromarray(pattern_rgb()).convert("L"), "JPEG", {}, ".jpeg", ".jpg", False),
    "jpeg cmyk": (
        lambda: Image.fromarray(pattern_rgb()).convert("CMYK"),
        "JPEG",
        {"quality": 95},
        ".jpg",
        ".jpg",
        False,
    ),
    "png rgb 8-bit": (lambda: Image.fromarray(pattern_rgb()), "PNG", {}, ".png", ".png", True),
    "png grey": (lambda: Image.fromarray(pattern_rgb()).convert("L"), "PNG", {}, ".png", ".png", True),
    "png grey 16-bit": (_grey16, "PNG", {}, ".png", ".png", True),
    "png palette": (lambda: _palette(False), "PNG", {}, ".png", ".png", True),
    "png palette transparent": (lambda: _palette(True), "PNG", {}, ".png", ".png", True),
    "png rgba": (_rgba, "PNG", {}, ".png", ".png", True),
    "png grey alpha": (lambda: _rgba().convert("LA"), "PNG", {}, ".png", ".png", True),
    "png 1-bit": (lambda: Image.fromarray(pattern_rgb()).convert("1"), "PNG", {}, ".png", ".png", True),
    "bmp rgb": (lambda: Image.fromarray(pattern_rgb()), "BMP", {}, ".bmp", ".bmp", True),
    "bmp palette": (lambda: _palette(False), "BMP", {}, ".bmp", ".bmp", True),
    "tiff rgb": (lambda: Image.fromarray(pattern_rgb()), "TIFF", {}, ".tif", ".png", True),
    "tiff lzw rgba": (_rgba, "TIFF", {"compression": "tiff_lzw"}, ".tiff", ".png", True),
    "tiff grey 16-bit": (_grey16, "TIFF", {}, ".tif", ".png", True),
    "tiff cmyk": (lambda: Image.fromarray(pattern_rgb()).convert("CMYK"), "TIFF", {}, ".tif", ".png", True),
    "webp lossy": (lambda: Image.fromarray(pattern_rgb()), "WEBP", {"quality": 95}, ".webp", ".webp", False),
    "webp lossless rgba": (_rgba, "WEBP", {"lossless": True}, ".webp", ".webp", True),
    "png named jpg": (lambda: Image.fromarray(pattern_rgb()), "PNG", {}, ".jpg", ".png", True),
}


@pytest.mark.parametrize("case", list(GOOD_CASES), ids=list(GOOD_CASES))
def test_accepted_formats_and_modes(case: str, tmp_path: Path) -> None:
    make, fmt, options, suffix, stored_suffix, lossless = GOOD_CASES[case]
    img = make()
    data = encode(img, fmt, **options)
    path = write_file(tmp_path / f"in{suffix}", data)
    d = decode_image(ImageSource(path.name, path=path))
    assert (d.width, d.height) == (24, 16)
    assert d.format == fmt
    assert d.sha256 == hashlib.sha256(data).hexdigest()
    assert d.stored_suffix == stored_suffix
    if stored_suffix != ".png" or fmt == "PNG":
        assert d.stored_bytes == data  # the original, bit for bit
    assert d.image.mode == "RGB" and d.image.size == (24, 16)
    got = np.asarray(d.image).astype(int)
    want = _expected_rgb(Image.open(io.BytesIO(data)))
    if lossless:
        assert np.abs(got - want).max() <= 1
    else:
        assert np.abs(got - _expected_rgb(img)).mean() < 8
    # what is stored decodes to the same upright pixels
    stored = Image.open(io.BytesIO(d.stored_bytes))
    assert stored.size == (24, 16)
    if lossless:
        assert np.abs(_expected_rgb(stored).astype(int) - got).max() <= 1


def test_sixteen_bit_tiff_is_stored_as_sixteen_bit_png() -> None:
    data = encode(_grey16(), "TIFF")
    d = decode_image(ImageSource("g.tif", data=data))
    stored = Image.open(io.BytesIO(d.stored_bytes))
    assert stored.format == "PNG" and stored.mode == "I;16"
    assert np.array_equal(np.asarray(stored), np.asarray(_grey16()))


def test_multi_page_tiff_gives_first_page() -> None:
    first = Image.fromarray(pattern_rgb())
    second = Image.new("RGB", (24, 16), (0, 0, 0))
    data = encode(first, "TIFF", save_all=True, append_images=[second])
    d = decode_image(ImageSource("pages.tif", data=data))
    assert np.array_equal(np.asarray(d.image), pattern_rgb())
    stored = Image.open(io.BytesIO(d.stored_bytes))
    assert stored.format == "PNG" and np.array_equal(np.asarray(stored.convert("RGB")), pattern_rgb())


def test_animated_webp_stores_first_frame_as_png() -> None:
    frames = [Image.fromarray(pattern_rgb()), Image.new("RGB", (24, 16), (0, 0, 0))]
    data = encode(frames[0], "WEBP", save_all=True, append_images=frames[1:], lossless=True)
    d = decode_image(ImageSource("anim.webp", data=data))
    assert d.stored_suffix == ".png"
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(d.stored_bytes)).convert("RGB")), pattern_rgb())


# ---------------------------------------------------------------------------------------------
# EXIF orientation


def upright_for(arr: np.ndarray, orientation: int) -> np.ndarray:
    """What a viewer shows for stored pixels ``arr`` tagged with EXIF ``orientation`` (spec table)."""
    return {
        1: lambda a: a,
        2: lambda a: a[:, ::-1],  # mirrored horizontally
        3: lambda a: a[::-1, ::-1],  # rotated 180
        4: lambda a: a[::-1, :],  # mirrored vertically
        5: lambda a: a.transpose(1, 0, 2),  # mirrored across the main diagonal
        6: lambda a: np.rot90(a, k=-1),  # needs 90 degrees clockwise
        7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),  # mirrored across the anti-diagonal
        8: lambda a: np.rot90(a, k=1),  # needs 90 degrees counter-clockwise
    }[orientation](arr)


def with_orientation(arr: np.ndarray, fmt: str, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    options: dict[str, object] = {"exif": exif.tobytes()}
    if fmt == "JPEG":
        options.update(quality=95, subsampling=0)
    return encode(Image.fromarray(arr), fmt, **options)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_gives_upright_size_and_pixels(orientation: int, fmt: str) -> None:
    arr = pattern_rgb(32, 16)
    data = with_orientation(arr, fmt, orientation)
    d = decode_image(ImageSource(f"o{orientation}", data=data))
    want = upright_for(arr, orientation)
    assert (d.height, d.width) == want.shape[:2]
    assert d.orientation == orientation
    got = np.asarray(d.image).astype(int)
    tolerance = 0 if fmt == "PNG" else 12
    assert np.abs(got - want.astype(int)).mean() <= tolerance
    if orientation == 1:
        assert d.stored_bytes == data
    else:
        # stored upright and without the tag: nobody applies the orientation a second time
        stored = Image.open(io.BytesIO(d.stored_bytes))
        assert d.stored_suffix == ".png"
        assert stored.getexif().get(0x0112, 1) == 1
        assert np.array_equal(np.asarray(stored.convert("RGB")), np.asarray(d.image))


@pytest.mark.parametrize("compression", ["raw", "tiff_lzw"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_tiff_orientation_is_applied_exactly_once(orientation: int, compression: str) -> None:
    # PIL's TIFF loader rotates by itself while loading; we must not rotate a second time
    arr = pattern_rgb(32, 16)
    data = encode(Image.fromarray(arr), "TIFF", tiffinfo={0x0112: orientation}, compression=compression)
    d = decode_image(ImageSource("r.tif", data=data))
    assert np.array_equal(np.asarray(d.image), upright_for(arr, orientation))
    assert d.orientation == orientation
    assert np.array_equal(
        np.asarray(Image.open(io.BytesIO(d.stored_bytes)).convert("RGB")), np.asarray(d.image)
    )


def test_invalid_orientation_value_means_upright() -> None:
    data = with_orientation(pattern_rgb(32, 16), "PNG", 9)
    d = decode_image(ImageSource("nine.png", data=data))
    assert (d.width, d.height, d.orientation) == (32, 16, 1)
    assert d.stored_bytes == data


# ---------------------------------------------------------------------------------------------
# Walking files, folders and zip archives


