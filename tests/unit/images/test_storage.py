"""Content-addressed image files: atomic idempotent store, thumbnails and display copies, RGB loading
of every stored mode, deletion, and the sweep that cleans up after a crash mid-import."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workbench.domain import ValidationError
from workbench.images.decode import DecodedImage, ImageSource, decode_image
from workbench.images.storage import (
    delete_image_files,
    fit_size_wh,
    load_image_rgb,
    make_display_copy,
    make_thumbnail,
    store_image,
    stored_rel_path,
    sweep_orphans,
)
from workbench.utils.atomic import atomic_write


def quadrants(width: int, height: int) -> np.ndarray:
    arr = np.zeros((height, width, 3), dtype=np.uint8)
    arr[: height // 2, : width // 2] = (220, 30, 30)
    arr[: height // 2, width // 2 :] = (30, 200, 40)
    arr[height // 2 :, : width // 2] = (40, 60, 210)
    arr[height // 2 :, width // 2 :] = (240, 230, 60)
    return arr


def decoded_from(img: Image.Image, fmt: str = "PNG", name: str = "x", **options: object) -> DecodedImage:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **options)
    return decode_image(ImageSource(name, data=buf.getvalue()))


def decoded_rgb(width: int = 40, height: int = 20, fmt: str = "PNG", **options: object) -> DecodedImage:
    return decoded_from(Image.fromarray(quadrants(width, height)), fmt, **options)


def all_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


# ---------------------------------------------------------------------------------------------
# store_image


def test_store_writes_content_addressed_file_atomically(tmp_path: Path) -> None:
    d = decoded_rgb()
    rel = store_image(tmp_path, d)
    assert rel == f"images/{d.sha256[:2]}/{d.sha256}.png"
    assert (tmp_path / rel).read_bytes() == d.stored_bytes
    assert all_files(tmp_path) == [rel]  # no *.tmp left behind


def test_store_is_idempotent(tmp_path: Path) -> None:
    d = decoded_rgb()
    rel = store_image(tmp_path, d)
    before = os.stat(tmp_path / rel)
    assert store_image(tmp_path, d) == rel
    after = os.stat(tmp_path / rel)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_rotated_jpeg_is_stored_as_upright_png(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    d = decoded_rgb(40, 20, "JPEG", exif=exif.tobytes(), quality=95)
    rel = store_image(tmp_path, d)
    assert rel.endswith(".png")
    arr = load_image_rgb(tmp_path, rel)
    assert arr.shape == (40, 20, 3) == (d.height, d.width, 3)
    assert np.array_equal(arr, np.asarray(d.image))


def test_failed_write_leaves_no_file(tmp_path: Path) -> None:
    target = tmp_path / "images" / "ab" / "x.png"
    with pytest.raises(TypeError):
        atomic_write(target, "not bytes", fsync=True)  # type: ignore[arg-type]
    assert all_files(tmp_path) == []


def test_stored_rel_path_refuses_non_hashes() -> None:
    with pytest.raises(ValidationError):
        stored_rel_path("../../etc/passwd", ".png")
    assert stored_rel_path("ab" * 32, ".JPG") == f"images/ab/{'ab' * 32}.jpg"


@pytest.mark.parametrize("bad", ["../x/" + "a" * 64 + ".png", "/etc/" + "a" * 64 + ".png", "thumbs/a.jpg", ""])
def test_paths_outside_images_are_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValidationError):
        load_image_rgb(tmp_path, bad)
    with pytest.raises(ValidationError):
        delete_image_files(tmp_path, bad)


# ---------------------------------------------------------------------------------------------
# thumbnails and display copies


@pytest.mark.parametrize(
    ("size_wh", "max_side", "expected"),
    [
        ((100, 50), 256, (100, 50)),  # never enlarged
        ((4000, 3000), 2048, (2048, 1536)),
        ((3000, 4000), 256, (192, 256)),
        ((1000, 3), 100, (100, 1)),  # at least one pixel
        ((333, 333), 100, (100, 100)),
        ((1001, 500), 1000, (1000, 500)),
    ],
)
def test_fit_size_wh(size_wh: tuple[int, int], max_side: int, expected: tuple[int, int]) -> None:
    assert fit_size_wh(size_wh, max_side) == expected


@pytest.mark.parametrize("maker", [make_thumbnail, make_display_copy])
def test_derived_copy_is_a_cached_jpeg_of_the_fitted_size(tmp_path: Path, maker) -> None:  # noqa: ANN001
    d = decoded_rgb(300, 100)
    rel = store_image(tmp_path, d)
    path = maker(tmp_path, rel, max_side=64)
    assert path.parent.name in ("thumbs", "display") and path.name == f"{d.sha256}.jpg"
    with Image.open(path) as img:
        assert img.format == "JPEG"
        assert img.size == fit_size_wh((d.width, d.height), 64) == (64, 21)
        small = np.asarray(img.convert("RGB")).astype(int)
    # the quadrants survive: top-left red, bottom-right yellow
    assert np.abs(small[2, 2] - (220, 30, 30)).max() < 30
    assert np.abs(small[-3, -3] - (240, 230, 60)).max() < 30
    first = os.stat(path)
    assert maker(tmp_path, rel, max_side=64) == path
    assert os.stat(path).st_mtime_ns == first.st_mtime_ns  # reused, not rewritten
    assert not any(p.name.endswith(".tmp") for p in tmp_path.rglob("*"))


@pytest.mark.parametrize("max_side", [256, 100, 37])
def test_large_jpeg_drafted_copy_has_exact_fitted_size(tmp_path: Path, max_side: int) -> None:
    d = decoded_rgb(1203, 801, "JPEG", quality=90)
    rel = store_image(tmp_path, d)
    assert rel.endswith(".jpg")
    with Image.open(make_thumbnail(tmp_path, rel, max_side=max_side)) as img:
        assert img.size == fit_size_wh((1203, 801), max_side)
        small = np.asarray(img.convert("RGB")).astype(int)
    assert np.abs(small[2, 2] - (220, 30, 30)).max() < 30
    assert np.abs(small[-3, -3] - (240, 230, 60)).max() < 30


def test_display_copy_of_small_image_keeps_natural_size(tmp_path: Path) -> None:
    rel = store_image(tmp_path, decoded_rgb(50, 30))
    with Image.open(make_display_copy(tmp_path, rel)) as img:
        assert img.size == (50, 30)


def test_derived_copy_of_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    rel = stored_rel_path("cd" * 32, ".png")
    with pytest.raises(ValidationError, match="stored image file is missing"):
        make_thumbnail(tmp_path, rel)


def test_thumbnail_of_sixteen_bit_image(tmp_path: Path) -> None:
    grey = np.full((20, 30), 65535, dtype=np.uint16)
    grey[:, :15] = 0
    rel = store_image(tmp_path, decoded_from(Image.fromarray(grey)))
    with Image.open(make_thumbnail(tmp_path, rel)) as img:
        arr = np.asarray(img.convert("RGB")).astype(int)
    assert arr[10, 3].max() < 20 and arr[10, 27].min() > 235


# ---------------------------------------------------------------------------------------------
# load_image_rgb


def _rgba() -> tuple[Image.Image, np.ndarray]:
    rgb = quadrants(8, 4)
    alpha = np.array([[0, 255, 128, 255, 0, 255, 128, 255]] * 4, dtype=np.uint8)
    img = Image.fromarray(np.dstack([rgb, alpha]), mode="RGBA")
    a = alpha[:, :, None] / 255
    return img, np.rint(rgb * a + 255 * (1 - a)).astype(np.uint8)


def _grey16() -> tuple[Image.Image, np.ndarray]:
    values = np.array([[0, 257, 32768, 65535]] * 2, dtype=np.uint16)
    want = np.rint(values.astype(np.float64) * 255 / 65535).astype(np.uint8)
    return Image.fromarray(values), np.repeat(want[:, :, None], 3, axis=2)


def _grey8() -> tuple[Image.Image, np.ndarray]:
    values = np.array([[0, 10, 200, 255]], dtype=np.uint8)
    return Image.fromarray(values), np.repeat(values[:, :, None], 3, axis=2)


def _palette() -> tuple[Image.Image, np.ndarray]:
    img = Image.fromarray(quadrants(8, 4)).quantize(colors=4)
    return img, quadrants(8, 4)


def _cmyk_tiff() -> tuple[Image.Image, np.ndarray]:
    img = Image.fromarray(quadrants(8, 4)).convert("CMYK")
    return img, np.asarray(img.convert("RGB"))


@pytest.mark.parametrize(
    ("factory", "fmt"),
    [(_rgba, "PNG"), (_grey16, "PNG"), (_grey16, "TIFF"), (_grey8, "PNG"), (_palette, "PNG"), (_palette, "BMP"),
     (_cmyk_tiff, "TIFF"), (_rgba, "WEBP")],
    ids=["rgba", "grey16-png", "grey16-tiff", "grey8", "palette-png", "palette-bmp", "cmyk-tiff", "rgba-webp"],
)
def test_load_image_rgb_converts_modes_sensibly(tmp_path: Path, factory, fmt: str) -> None:  # noqa: ANN001
    img, want = factory()
    options = {"lossless": True} if fmt == "WEBP" else {}
    d = decoded_from(img, fmt, **options)
    arr = load_image_rgb(tmp_path, store_image(tmp_path, d))
    assert arr.dtype == np.uint8 and arr.shape == (*want.shape[:2], 3)
    assert arr.flags.c_contiguous
    assert np.abs(arr.astype(int) - want.astype(int)).max() <= 1
    assert np.array_equal(arr, np.asarray(d.image))  # import and training see the same pixels


def test_load_image_rgb_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="missing"):
        load_image_rgb(tmp_path, stored_rel_path("ef" * 32, ".jpg"))


# ---------------------------------------------------------------------------------------------
# delete and sweep


def test_delete_removes_stored_file_and_derived_copies(tmp_path: Path) -> None:
    keep = store_image(tmp_path, decoded_rgb(10, 10))
    rel = store_image(tmp_path, decoded_rgb(12, 10))
    make_thumbnail(tmp_path, rel)
    make_display_copy(tmp_path, rel)
    make_thumbnail(tmp_path, keep)
    delete_image_files(tmp_path, rel)
    sha_keep = Path(keep).stem
    assert all_files(tmp_path) == sorted([keep, f"thumbs/{sha_keep}.jpg"])
    delete_image_files(tmp_path, rel)  # again: missing files are fine


def test_sweep_removes_orphans_their_copies_and_tmp_files(tmp_path: Path) -> None:
    known = store_image(tmp_path, decoded_rgb(10, 10))
    orphan = store_image(tmp_path, decoded_rgb(14, 10))  # written, then the row was rolled back
    for rel in (known, orphan):
        make_thumbnail(tmp_path, rel)
        make_display_copy(tmp_path, rel)
    leftover = tmp_path / Path(known).parent / f".{Path(known).name}.x1y2.tmp"  # a write cut by a kill
    leftover.write_bytes(b"half")
    thumb_tmp = tmp_path / "thumbs" / ".abc.jpg.q.tmp"
    thumb_tmp.write_bytes(b"half")

    removed = sweep_orphans(tmp_path, {known})

    sha_k, sha_o = Path(known).stem, Path(orphan).stem
    assert removed == sorted(
        [tmp_path / orphan, tmp_path / "thumbs" / f"{sha_o}.jpg", tmp_path / "display" / f"{sha_o}.jpg",
         leftover, thumb_tmp]
    )
    assert all_files(tmp_path) == sorted([known, f"thumbs/{sha_k}.jpg", f"display/{sha_k}.jpg"])
    assert not (tmp_path / Path(orphan).parent).exists() or Path(orphan).parent == Path(known).parent
    assert sweep_orphans(tmp_path, {known}) == []


def test_sweep_of_empty_project_does_nothing(tmp_path: Path) -> None:
    assert sweep_orphans(tmp_path, set()) == []
