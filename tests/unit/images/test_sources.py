"""Image sources: how files, folders and zip archives are walked (order, symlinks, suffixes, size caps)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.support.images import make_zip, pattern_jpeg, pattern_png, write_file
from workbench.images.decode import decode_image
from workbench.images.sources import IMAGE_SUFFIXES, ZIP_IN_FOLDER_REASON, Skipped, iter_image_sources


def test_image_suffixes() -> None:
    assert IMAGE_SUFFIXES == {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


def _names(paths: list[Path]) -> tuple[list[str], list[Skipped]]:
    skipped: list[Skipped] = []
    return [s.display_name for s in iter_image_sources(paths, skipped=skipped)], skipped


def test_folder_is_walked_recursively_in_order_ignoring_non_images(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    for rel in ["b.png", "a.JPG", "sub/z.webp", "sub/deeper/c.tiff", "Sub2/d.bmp"]:
        write_file(root / rel, b"x")
    for rel in ["notes.txt", "sub/meta.json", "._a.jpg", ".hidden/e.png", "__MACOSX/f.png", "inner.zip"]:
        write_file(root / rel, b"x")
    names, skipped = _names([root])
    assert names == ["Sub2/d.bmp", "a.JPG", "b.png", "sub/deeper/c.tiff", "sub/z.webp"]
    # a zip in a folder is not opened, but said (else a folder of zips imports nothing with no reason)
    assert skipped == [Skipped("inner.zip", ZIP_IN_FOLDER_REASON)]


def test_symlinked_folder_is_reported_not_followed(tmp_path: Path) -> None:
    write_file(tmp_path / "outside" / "x.png", b"x")
    root = tmp_path / "photos"
    write_file(root / "a.png", b"x")
    (root / "linked").symlink_to(tmp_path / "outside")
    names, skipped = _names([root])
    assert names == ["a.png"]
    assert skipped == [Skipped("linked", "symbolic link, not followed")]


def test_zip_entries_with_nested_folders_are_read_in_order(tmp_path: Path) -> None:
    zpath = make_zip(
        tmp_path / "batch.zip",
        [
            ("set/b.png", pattern_png()),
            ("set/inner/a.jpg", pattern_jpeg()),
            ("set/skip.txt", b"text"),
            ("set/", b""),
            ("x/../top.png", pattern_png()),
            ("__MACOSX/set/._b.png", b"\0\5\x16\7"),
        ],
    )
    skipped: list[Skipped] = []
    sources = list(iter_image_sources([zpath], skipped=skipped))
    assert [s.name for s in sources] == ["set/b.png", "set/inner/a.jpg", "top.png"]
    assert all(s.origin == "batch.zip" and s.path is None and s.data for s in sources)
    assert skipped == []
    assert [decode_image(s).format for s in sources] == ["PNG", "JPEG", "PNG"]


def test_explicit_files_are_named_by_file_name(tmp_path: Path) -> None:
    a = write_file(tmp_path / "deep" / "dir" / "a.png", pattern_png())
    names, skipped = _names([a])
    assert names == ["a.png"] and skipped == []


def _zip_of_images(path: Path, n: int, size_wh: tuple[int, int] = (16, 12)) -> tuple[Path, int]:
    """A real zip of n distinct PNGs (plus a text file that does not count); the images' total bytes."""
    total = 0
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(n):
            buf = io.BytesIO()
            Image.fromarray(np.full((size_wh[1], size_wh[0], 3), i, np.uint8)).save(buf, format="PNG")
            zf.writestr(f"im{i}.png", buf.getvalue())
            total += len(buf.getvalue())
        zf.writestr("readme.txt", "x" * 5000)
    return path, total


def test_zip_total_over_the_cap_is_refused_naming_the_zip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench.images import sources

    path, total = _zip_of_images(tmp_path / "many.zip", 3)
    sources.check_zip_sizes([path], free_bytes=None)  # under the default cap
    monkeypatch.setattr(sources, "MAX_ZIP_TOTAL_BYTES", total - 1)
    with pytest.raises(sources.ZipTooLargeError, match=r"many\.zip: its 3 images unpack to .*over the limit"):
        sources.check_zip_sizes([path], free_bytes=None)
    sources.check_zip_sizes([path], free_bytes=None, max_total_bytes=total)  # exactly at the cap: fine


def test_zips_over_the_free_disk_space_are_refused(tmp_path: Path) -> None:
    from workbench.images.sources import ZipTooLargeError, check_zip_sizes

    a, total_a = _zip_of_images(tmp_path / "a.zip", 2)
    b, total_b = _zip_of_images(tmp_path / "b.zip", 2, size_wh=(20, 10))
    check_zip_sizes([a, b], free_bytes=total_a + total_b)
    with pytest.raises(ZipTooLargeError, match=r"b\.zip: .*with the archives before it.*free on the workspace disk"):
        check_zip_sizes([a, b], free_bytes=total_a + total_b - 1)
    with pytest.raises(ZipTooLargeError, match=r"a\.zip: .*free on the workspace disk"):
        check_zip_sizes([a], free_bytes=total_a - 1)
    # not zips, missing paths and corrupt archives are the import's business, not this check's
    (tmp_path / "bad.zip").write_bytes(b"PK no zip")
    check_zip_sizes([tmp_path / "x.png", tmp_path / "missing.zip", tmp_path / "bad.zip"], free_bytes=0)
