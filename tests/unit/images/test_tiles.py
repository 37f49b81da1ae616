"""Tiles of the original: the grid covers the image exactly, each tile is the original's crop
(lossless, upright), the cache is reused, and only images larger than their display copy get tiles."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workbench.domain import ValidationError
from workbench.images import tiles
from workbench.images.decode import ImageSource, decode_image
from workbench.images.storage import load_image_rgb, store_image


def _store(project: Path, arr: np.ndarray, *, fmt: str = "PNG", exif_orientation: int | None = None) -> str:
    buf = io.BytesIO()
    img = Image.fromarray(arr)
    if exif_orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        img.save(buf, format=fmt, exif=exif, quality=95)
    else:
        img.save(buf, format=fmt)
    return store_image(project, decode_image(ImageSource(name=f"x.{fmt.lower()}", data=buf.getvalue())))


def _random(w: int, h: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def test_grid_covers_the_image_exactly() -> None:
    grid = tiles.tile_grid((2500, 1100), side=1024)
    assert (grid.cols, grid.rows, grid.count) == (3, 2, 6)
    covered = np.zeros((1100, 2500), dtype=np.int32)
    for i in range(grid.count):
        x0, y0, x1, y1 = grid.box(i)
        assert 0 < x1 - x0 <= 1024 and 0 < y1 - y0 <= 1024
        covered[y0:y1, x0:x1] += 1
    assert (covered == 1).all()
    assert grid.box(5) == (2048, 1024, 2500, 1100)
    with pytest.raises(ValidationError, match="outside"):
        grid.box(6)


def test_only_images_larger_than_the_display_copy_need_tiles() -> None:
    assert not tiles.needs_tiles((2048, 1536))
    assert not tiles.needs_tiles((800, 600))
    assert tiles.needs_tiles((2049, 100))
    assert tiles.needs_tiles((6000, 4000))


def test_tiles_are_the_originals_crops_and_the_cache_is_reused(tmp_path: Path) -> None:
    arr = _random(2300, 1500)
    rel = _store(tmp_path, arr)
    grid = tiles.ensure_tiles(tmp_path, rel, side=1024)
    assert (grid.width, grid.height, grid.count) == (2300, 1500, 6)
    for i in range(grid.count):
        x0, y0, x1, y1 = grid.box(i)
        (path,) = tiles.tile_paths(tmp_path, rel, (2300, 1500), [i], side=1024)
        assert path.parent == tiles.tiles_folder(tmp_path, rel)
        got = np.asarray(Image.open(path).convert("RGB"))
        np.testing.assert_array_equal(got, arr[y0:y1, x0:x1])
    stamps = {p.name: p.stat().st_mtime_ns for p in tiles.tiles_folder(tmp_path, rel).iterdir()}
    assert tiles.ensure_tiles(tmp_path, rel, side=1024) == grid
    assert {p.name: p.stat().st_mtime_ns for p in tiles.tiles_folder(tmp_path, rel).iterdir()} == stamps
    assert not [p for p in tiles.tiles_folder(tmp_path, rel).iterdir() if p.name.endswith(".tmp")]


def test_tiles_are_upright_like_the_display_copy(tmp_path: Path) -> None:
    arr = _random(300, 200, seed=3)
    arr[:100, :150] = (255, 0, 0)  # a marker quadrant, so a missed rotation shows
    rel = _store(tmp_path, arr, fmt="JPEG", exif_orientation=6)
    upright = load_image_rgb(tmp_path, rel)
    assert upright.shape[:2] == (300, 200)
    grid = tiles.ensure_tiles(tmp_path, rel, side=128)
    assert (grid.width, grid.height) == (200, 300)
    mosaic = np.zeros_like(upright)
    for i in range(grid.count):
        x0, y0, x1, y1 = grid.box(i)
        mosaic[y0:y1, x0:x1] = np.asarray(
            Image.open(tiles.tile_paths(tmp_path, rel, (200, 300), [i], side=128)[0]).convert("RGB")
        )
    np.testing.assert_array_equal(mosaic, upright)


def test_asked_tiles_come_first_and_the_rest_follows_in_the_background(tmp_path: Path) -> None:
    arr = _random(700, 300, seed=5)
    rel = _store(tmp_path, arr)
    folder = tiles.tiles_folder(tmp_path, rel)
    (path,) = tiles.tile_paths(tmp_path, rel, (700, 300), [1], side=256)
    np.testing.assert_array_equal(np.asarray(Image.open(path).convert("RGB")), arr[0:256, 256:512])
    tiles.wait_for_tiles()
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["256.json"] + sorted(f"256_{c}_{r}.bmp" for c in range(3) for r in range(2))
    assert tiles.ensure_tiles(tmp_path, rel, side=256) == tiles.tile_grid((700, 300), side=256)
    with pytest.raises(ValidationError, match="outside"):
        tiles.tile_paths(tmp_path, rel, (700, 300), [6], side=256)


def test_a_lost_tile_is_written_again_and_sweep_and_delete(tmp_path: Path) -> None:
    arr = _random(700, 300, seed=5)
    rel = _store(tmp_path, arr)
    tiles.ensure_tiles(tmp_path, rel, side=256)
    folder = tiles.tiles_folder(tmp_path, rel)
    (folder / "256_1_0.bmp").unlink()
    (again,) = tiles.tile_paths(tmp_path, rel, (700, 300), [1], side=256, background=False)
    np.testing.assert_array_equal(np.asarray(Image.open(again).convert("RGB")), arr[0:256, 256:512])
    (folder / ".x.png.abcd1234.tmp").write_bytes(b"half")
    removed = tiles.sweep_tiles(tmp_path, {folder.name})
    assert [p.name for p in removed] == [".x.png.abcd1234.tmp"] and folder.is_dir()
    assert tiles.sweep_tiles(tmp_path, set()) == [folder] and not folder.exists()
    tiles.ensure_tiles(tmp_path, rel, side=256)
    tiles.delete_tiles(tmp_path, rel)
    assert not folder.exists()
    tiles.delete_tiles(tmp_path, rel)  # nothing there is fine


def test_a_short_or_empty_tile_left_by_a_power_cut_is_cut_again(tmp_path: Path) -> None:
    # tiles are written without an fsync: after a power cut a tile may be on disk short or empty
    arr = _random(700, 300, seed=6)
    rel = _store(tmp_path, arr)
    tiles.ensure_tiles(tmp_path, rel, side=256)
    folder = tiles.tiles_folder(tmp_path, rel)
    whole = (folder / "256_2_1.bmp").read_bytes()  # the edge tile, 188 x 44
    (folder / "256_2_1.bmp").write_bytes(whole[: len(whole) // 2])
    (folder / "256_0_0.bmp").write_bytes(b"")
    for index, (x0, y0, x1, y1) in ((5, (512, 256, 700, 300)), (0, (0, 0, 256, 256))):
        (path,) = tiles.tile_paths(tmp_path, rel, (700, 300), [index], side=256, background=False)
        np.testing.assert_array_equal(np.asarray(Image.open(path).convert("RGB")), arr[y0:y1, x0:x1])
    assert (folder / "256_2_1.bmp").read_bytes() == whole


def test_a_size_that_is_not_the_stored_one_is_refused(tmp_path: Path) -> None:
    rel = _store(tmp_path, _random(300, 200))
    with pytest.raises(ValidationError, match="stored image is 300x200, its record says 200x300"):
        tiles.tile_paths(tmp_path, rel, (200, 300), [0], side=128)


def test_a_missing_original_is_one_clear_error(tmp_path: Path) -> None:
    rel = "images/ab/" + "ab" * 32 + ".png"
    with pytest.raises(ValidationError, match="stored image file is missing"):
        tiles.ensure_tiles(tmp_path, rel)


def test_deleting_or_sweeping_an_image_takes_its_tiles_with_it(tmp_path: Path) -> None:
    from workbench.images.storage import delete_image_files, sweep_orphans

    gone, kept = _store(tmp_path, _random(700, 300, seed=6)), _store(tmp_path, _random(600, 300, seed=7))
    orphan = _store(tmp_path, _random(650, 300, seed=8))
    for rel in (gone, kept, orphan):
        tiles.ensure_tiles(tmp_path, rel, side=256)
    delete_image_files(tmp_path, gone)
    assert not tiles.tiles_folder(tmp_path, gone).exists()
    removed = sweep_orphans(tmp_path, {kept})  # the orphan's row was rolled back
    assert tiles.tiles_folder(tmp_path, orphan) in removed and not tiles.tiles_folder(tmp_path, orphan).exists()
    assert tiles.tiles_folder(tmp_path, kept).is_dir()


def test_the_cache_keeps_the_most_recently_used_grids_within_its_budget(tmp_path: Path) -> None:
    import os

    from workbench.images.tile_prefetch import prune_tiles

    rels = [_store(tmp_path, _random(700, 300, seed=s)) for s in (10, 11, 12, 13)]
    folders = [tiles.tiles_folder(tmp_path, rel) for rel in rels]
    for k, rel in enumerate(rels):
        tiles.ensure_tiles(tmp_path, rel, side=256)
        os.utime(folders[k], ns=(k * 10**9, k * 10**9))  # used in this order: 0 the longest ago
    one = sum(p.stat().st_size for p in folders[0].iterdir())
    assert prune_tiles(tmp_path, keep_bytes=10 * one) == []
    removed = prune_tiles(tmp_path, keep_bytes=2 * one, keep={folders[1]})
    assert removed == [folders[0], folders[2]]  # the oldest, skipping the one kept
    assert [f.is_dir() for f in folders] == [False, True, False, True]
    (again,) = tiles.tile_paths(tmp_path, rels[0], (700, 300), [0], side=256)  # cut again when asked
    assert again.is_file()


def test_the_next_image_is_decoded_while_the_grid_before_it_is_written(tmp_path: Path) -> None:
    # The image on screen is queued again (opened after being prefetched as the next one) while its
    # grid is still being written: the prefetcher goes on to the next image instead of waiting for
    # those writes (it did, and the next image's first zoom then decoded it itself).
    import time

    from workbench.images import tile_prefetch

    size = (2100, 1000)  # larger than the display copy: it gets tiles
    shown, following = _store(tmp_path, _random(*size, seed=20)), _store(tmp_path, _random(*size, seed=21))
    folder, nxt = tiles.tiles_folder(tmp_path, shown), tiles.tiles_folder(tmp_path, following)
    tile_prefetch.prefetch_tiles(tmp_path, shown, size, side=64)
    deadline = time.monotonic() + 60
    while (job := tiles._JOBS.get(folder)) is None or not job.decoded.is_set():
        assert time.monotonic() < deadline, "the first image was never decoded"
        time.sleep(0.001)
    with job.lock:  # its grid (528 tiles) cannot be written on while this is held
        assert not (folder / "64.json").exists()
        tile_prefetch.prefetch_tiles(tmp_path, shown, size, side=64, first=True)
        tile_prefetch.prefetch_tiles(tmp_path, following, size, side=64)
        while not (nxt / "64.json").exists():
            assert time.monotonic() < deadline, "the next image waited for the grid before it"
            time.sleep(0.01)
        assert not (folder / "64.json").exists()
    tiles.wait_for_tiles()
    assert (folder / "64.json").exists()
    np.testing.assert_array_equal(
        np.asarray(Image.open(nxt / "64_32_15.bmp").convert("RGB")),
        np.asarray(Image.open(tmp_path / following).convert("RGB"))[960:1000, 2048:2100],
    )
