"""Image import through the service: real files, folders, zips; a bad-input corpus stores nothing."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from tests.support.factories import media_files
from tests.support.images import image_bytes, write_image
from workbench.domain import NotFoundError, ValidationError
from workbench.images.decode import ImageSource
from workbench.services import annotate, imports, projects


def _stored_files(ws, slug: str) -> list[Path]:  # noqa: ANN001
    return [p for p in (ws.project_dir(slug) / "images").rglob("*") if p.is_file()]


def _zip(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return path


def _symlink_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        info = zipfile.ZipInfo("link.png")
        info.external_attr = 0o120777 << 16
        zf.writestr(info, "/etc/passwd")
    return path


def _bomb_png() -> bytes:
    # a real PNG whose header claims 50000 x 50000 pixels: refused from the header, before decoding
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", 50000, 50000, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def _gif() -> bytes:
    buf = io.BytesIO()
    Image.new("P", (8, 8)).save(buf, format="GIF")
    return buf.getvalue()


def _write(name: str, data: bytes) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        p = folder / name
        p.write_bytes(data)
        return p

    return make


def _symlink(folder: Path) -> Path:
    target = write_image(folder / "real" / "t.png")
    link = folder / "link.png"
    os.symlink(target, link)
    return link


def _fifo(folder: Path) -> Path:
    p = folder / "pipe.png"
    os.mkfifo(p)
    return p


# (case id, how to make the input, expected substring of the reason)
BAD_INPUTS: list[tuple[str, Callable[[Path], Path], str]] = [
    ("zero-byte jpeg", _write("empty.jpg", b""), "empty file"),
    ("truncated jpeg", _write("trunc.jpg", image_bytes(64, 64, fmt="JPEG")[:300]), "truncated"),
    ("truncated png", _write("trunc.png", image_bytes(64, 64)[:120]), "truncated"),
    ("random bytes named png", _write("noise.png", os.urandom(2048)), "not an image"),
    ("text named jpg", _write("notes.jpg", b"hello, this is text\n" * 10), "not an image"),
    ("html named webp", _write("page.webp", b"<!doctype html><html><body>hi</body></html>"), "not an image"),
    ("decompression bomb", _write("bomb.png", _bomb_png()), "pixels"),
    ("gif renamed jpg", _write("anim.jpg", _gif()), "not supported"),
    ("zip slip entry", lambda f: _zip(f / "slip.zip", {"../evil.png": image_bytes()}), "escapes"),
    ("absolute zip entry", lambda f: _zip(f / "abs.zip", {"/tmp/evil.png": image_bytes()}), "escapes"),
    ("zip symlink entry", lambda f: _symlink_zip(f / "link.zip"), "symbolic link"),
    ("corrupt zip", _write("broken.zip", b"PK\x03\x04 definitely not a zip"), "corrupt zip"),
    (
        "zip with a bad image",
        lambda f: _zip(f / "bad.zip", {"in/bad.png": b"\x89PNG\r\n\x1a\nxx"}),
        "bad.png",
    ),
    ("symlink on disk", _symlink, "symbolic link"),
    ("fifo named png", _fifo, "not a regular file"),
    ("non-image file name", _write("readme.txt", b"hello"), "not an image or zip"),
]


@pytest.mark.parametrize(("make", "expected"), [c[1:] for c in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_is_skipped_with_reason_and_nothing_stored(ws, project, tmp_path, make, expected) -> None:  # noqa: ANN001
    folder = tmp_path / "in"
    folder.mkdir()
    path = make(folder)
    report = imports.import_images(ws, project, [path])
    assert report.imported == []
    assert report.skipped, "a bad input must be reported"
    text = " | ".join(f"{s.name}: {s.reason}" for s in report.skipped)
    assert expected in text
    assert projects.get_project(ws, project).num_images == 0
    assert _stored_files(ws, project) == []


def test_good_images_import_beside_bad_ones_and_duplicates_are_reported(ws, project, tmp_path) -> None:  # noqa: ANN001
    folder = tmp_path / "mixed"
    write_image(folder / "a.png", seed=1)
    write_image(folder / "sub" / "b.jpg", seed=2)
    write_image(folder / "sub" / "c.webp", seed=3)
    (folder / "sub" / "copy_of_a.png").write_bytes((folder / "a.png").read_bytes())
    (folder / "broken.png").write_bytes(b"nope")
    report = imports.import_images(ws, project, [folder])
    assert sorted(report.imported) == ["a.png", "sub/b.jpg", "sub/c.webp"]
    assert report.duplicates == ["sub/copy_of_a.png"]
    assert [s.name for s in report.skipped] == ["broken.png"]
    again = imports.import_images(ws, project, [folder / "a.png"])
    assert again.imported == [] and len(again.duplicates) == 1
    imgs = annotate.list_images(ws, project)
    assert len(imgs) == 3 and len(_stored_files(ws, project)) == 3
    for im in imgs:
        assert annotate.image_file(ws, project, im.id, "thumb").exists()
        assert annotate.image_file(ws, project, im.id, "display").exists()


def test_zip_and_upload_import(ws, project, tmp_path) -> None:  # noqa: ANN001
    z = _zip(
        tmp_path / "pack.zip", {"d/one.png": image_bytes(seed=5), "two.jpg": image_bytes(seed=6, fmt="JPEG")}
    )
    upload = ImageSource(name="upload.png", data=image_bytes(40, 30, seed=7))
    report = imports.import_images(ws, project, [z, upload], split="train")
    assert (
        sorted(report.imported) == sorted(["d/one.png", "two.jpg", "upload.png"]) or len(report.imported) == 3
    )
    imgs = {im.file_name.split("/")[-1]: im for im in annotate.list_images(ws, project)}
    assert imgs["upload.png"].size_wh == (40, 30)
    assert {im.split for im in imgs.values()} == {"train"}


def test_exif_orientation_gives_upright_size(ws, project, tmp_path) -> None:  # noqa: ANN001
    img = Image.new("RGB", (60, 20), (200, 10, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    p = tmp_path / "rot.jpg"
    img.save(p, format="JPEG", exif=exif.tobytes())
    imports.import_images(ws, project, [p])
    (im,) = annotate.list_images(ws, project)
    assert im.size_wh == (20, 60)
    with Image.open(ws.project_dir(project) / im.path) as stored:
        from PIL import ImageOps

        assert ImageOps.exif_transpose(stored).size == (20, 60)


def test_kill_mid_import_leaves_no_half_rows_or_stray_files(ws, project, tmp_path) -> None:  # noqa: ANN001
    """A worker killed with SIGKILL mid-import: every row has its file, and the next import sweeps strays."""
    folder = tmp_path / "many"
    for i in range(150):
        write_image(folder / f"im_{i:03d}.png", 64, 48, seed=100 + i)
    marker = tmp_path / "started"
    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from workbench.services import imports
        from workbench.services.workspace import open_workspace
        ws = open_workspace(Path({str(ws.root)!r}))
        def progress(done, total):
            if done == 80:
                Path({str(marker)!r}).write_text("x")
                import os, time
                time.sleep(30)
        imports.import_images(ws, {project!r}, [Path({str(folder)!r})], progress=progress)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script])
    import time

    deadline = time.time() + 120
    while not marker.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert marker.exists(), "the import did not reach the kill point"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    imgs = annotate.list_images(ws, project)
    assert 0 < len(imgs) < 150  # batches committed so far, nothing more
    for im in imgs:
        assert (ws.project_dir(project) / im.path).is_file()
    stray = len(_stored_files(ws, project)) - len(imgs)
    assert stray > 0, "files of the uncommitted batch are on disk before the sweep"
    report = imports.import_images(ws, project, [folder])
    assert len(report.imported) + len(report.duplicates) == 150
    assert len(_stored_files(ws, project)) == len(annotate.list_images(ws, project)) == 150


def test_progress_counts_ahead_while_reading_lazily(ws, project, tmp_path) -> None:  # noqa: ANN001
    folder = tmp_path / "f"
    write_image(folder / "a.png", seed=11)
    write_image(folder / "sub" / "b.png", seed=12)
    z = _zip(tmp_path / "z.zip", {"c.png": image_bytes(seed=13), "notes.txt": b"x", "__MACOSX/._c.png": b"x"})
    calls: list[tuple[int, int]] = []
    report = imports.import_images(ws, project, [folder, z], progress=lambda d, t: calls.append((d, t)))
    assert len(report.imported) == 3
    assert calls == [(1, 3), (2, 3), (3, 3)]


class _Cancelled(Exception):
    pass


def _cancel_at(k: int):  # noqa: ANN202
    def progress(n: int, total: int) -> None:
        if n == k:
            raise _Cancelled(f"cancelled at {n} of {total}")

    return progress


def _folder_of_images(folder: Path, n: int, first_seed: int = 10) -> Path:
    for i in range(n):
        write_image(folder / f"im{i}.png", 12, 8, seed=first_seed + i)
    return folder


def test_a_failed_image_import_removes_its_files_at_once(ws, project, tmp_path: Path) -> None:  # noqa: ANN001
    """Files of the batch that never committed go at once, not at the next import's sweep."""
    imports.import_images(ws, project, [write_image(tmp_path / "first.png", 12, 8, seed=1)])
    before = media_files(ws, project)
    assert len(before) == 3
    with pytest.raises(_Cancelled):
        imports.import_images(ws, project, [_folder_of_images(tmp_path / "d", 3)], progress=_cancel_at(3))
    assert media_files(ws, project) == before
    assert projects.get_project(ws, project).num_images == 1


def test_a_failed_commit_removes_the_batch_files(ws, project, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """The store refuses the batch (disk full, locked database, ...): no files stay behind."""
    from workbench.store import images as image_repo

    before = media_files(ws, project)

    def refuse(*_a: object, **_k: object) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(image_repo, "add_image", refuse)
    with pytest.raises(OSError, match="No space"):
        imports.import_images(ws, project, [_folder_of_images(tmp_path / "d", 3)])
    assert media_files(ws, project) == before == []


def test_committed_batches_stay_when_a_later_one_fails(ws, project, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(imports, "BATCH", 2)
    with pytest.raises(_Cancelled):
        imports.import_images(ws, project, [_folder_of_images(tmp_path / "d", 5)], progress=_cancel_at(3))
    kept = annotate.list_images(ws, project)
    assert [im.file_name for im in kept] == ["im0.png", "im1.png"]  # the first batch committed
    files = media_files(ws, project)
    assert len(files) == 6 and {p.stem for p in files} == {Path(im.path).stem for im in kept}


def test_a_failing_thumbnail_leaves_no_stored_image(ws, project, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    from workbench.images import storage

    def broken(*_a: object, **_k: object) -> Path:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(storage, "make_display_copy", broken)
    with pytest.raises(OSError, match="Input/output"):
        imports.import_images(ws, project, [write_image(tmp_path / "a.png", 12, 8, seed=3)])
    assert media_files(ws, project) == []


def _zip_of_images(path: Path, n: int) -> Path:
    import zipfile

    from tests.support.images import image_bytes

    with zipfile.ZipFile(path, "w") as zf:
        for i in range(n):
            zf.writestr(f"z{i}.png", image_bytes(12, 8, seed=100 + i))
    return path


@pytest.mark.parametrize("limit", ["cap", "free-space"])
def test_a_zip_too_large_for_the_disk_or_the_cap_is_refused_before_anything_is_stored(
    ws, project, tmp_path: Path, monkeypatch, limit: str  # noqa: ANN001
) -> None:
    import shutil
    from collections import namedtuple

    from workbench.images import sources

    imports.import_images(ws, project, [write_image(tmp_path / "first.png", 12, 8, seed=1)])
    before = media_files(ws, project)
    folder = _folder_of_images(tmp_path / "d", 2)
    zpath = _zip_of_images(tmp_path / "big.zip", 3)
    if limit == "cap":
        monkeypatch.setattr(sources, "MAX_ZIP_TOTAL_BYTES", 100)
        message = "over the limit of 100 bytes"
    else:
        usage = namedtuple("usage", "total used free")
        monkeypatch.setattr(shutil, "disk_usage", lambda _p: usage(10**6, 10**6 - 100, 100))
        message = "only 100 bytes are free on the workspace disk"
    with pytest.raises(sources.ZipTooLargeError, match=message) as err:
        imports.import_images(ws, project, [folder, zpath])
    assert str(err.value).startswith(f"{zpath}: its 3 images unpack to")
    assert media_files(ws, project) == before  # not even the folder's images, listed before the zip
    assert projects.get_project(ws, project).num_images == 1
    monkeypatch.undo()
    assert len(imports.import_images(ws, project, [folder, zpath]).imported) == 5


@pytest.mark.parametrize("slug", ["nosuch", "../escaped"])
def test_import_into_an_unknown_project_makes_no_folder(ws, tmp_path: Path, slug: str) -> None:  # noqa: ANN001
    img = write_image(tmp_path / "in" / "a.png")
    with pytest.raises(NotFoundError, match="no project"):
        imports.import_images(ws, slug, [img])
    assert not (ws.root / slug).exists()


@pytest.mark.parametrize("limit", [0, -1])
def test_a_pixel_limit_below_one_is_refused_not_every_image_skipped(ws, project: str, tmp_path: Path, limit: int) -> None:  # noqa: ANN001
    img = write_image(tmp_path / "in" / "a.png")
    with pytest.raises(ValidationError, match=f"pixel limit must be at least 1, got {limit}"):
        imports.import_images(ws, project, [img], max_pixels=limit)
