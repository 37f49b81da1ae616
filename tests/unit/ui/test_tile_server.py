"""The annotator's tile server: over real HTTP on 127.0.0.1 it hands out the original's crops, cut
on the first request when not on disk, and nothing without the process's token or outside the store."""

from __future__ import annotations

import io
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest
from PIL import Image

from workbench.images import tile_prefetch, tiles
from workbench.images.decode import ImageSource
from workbench.services import annotate, imports, projects
from workbench.services.workspace import Workspace, open_workspace
from workbench.ui.components.annotator.tile_server import TileServer, tile_server

SIZE = (2600, 1100)  # larger than the 2048-px display copy: 3 x 2 tiles of 1024 px


@dataclass
class Served:
    ws: Workspace
    slug: str
    image_id: int
    rel_path: str
    original: np.ndarray
    srv: TileServer

    def url(
        self, index: int, *, token: str | None = None, slug: str | None = None, image_id: int | None = None
    ) -> str:
        base = self.srv.base(slug or self.slug, image_id or self.image_id, tiles.TILE_SIDE)
        if token is not None:
            base = base.replace(self.srv.token, token)
        return f"http://{self.srv.host}:{self.srv.port}{base}{index}.bmp"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    ws = open_workspace(tmp_path_factory.mktemp("tile-server") / "ws")
    slug = projects.create_project(ws, "Tiles").slug
    original = np.random.default_rng(3).integers(0, 256, size=(SIZE[1], SIZE[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(original).save(buf, format="PNG", compress_level=1)
    imports.import_images(ws, slug, [ImageSource(name="big.png", data=buf.getvalue())])
    (rec,) = annotate.list_images(ws, slug)
    srv = tile_server(ws, "127.0.0.1")
    assert srv is not None and srv.host == "127.0.0.1"
    assert tile_server(ws, "127.0.0.1") == srv  # one server per process and address
    yield Served(ws, slug, rec.id, rec.path, original, srv)
    tiles.wait_for_tiles()
    ws.close()


def _get(url: str) -> tuple[int, bytes, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.read(), r.headers["Content-Type"]
    except urllib.error.HTTPError as exc:
        return exc.code, b"", ""


def test_a_tile_not_on_disk_is_cut_on_request_and_equals_the_originals_crop(served: Served) -> None:
    folder = tiles.tiles_folder(served.ws.project_dir(served.slug), served.rel_path)
    tiles.wait_for_tiles()
    tiles.delete_tiles(served.ws.project_dir(served.slug), served.rel_path)
    assert not folder.exists()
    status, body, mimetype = _get(served.url(5))
    assert (status, mimetype) == (200, "image/bmp")
    got = np.asarray(Image.open(io.BytesIO(body)).convert("RGB"))
    np.testing.assert_array_equal(got, served.original[1024:1100, 2048:2600])
    tiles.wait_for_tiles()
    assert (folder / "1024.json").is_file()  # the rest of the grid followed in the background
    for index in range(6):
        status, body, _ = _get(served.url(index))
        row, col = divmod(index, 3)
        expected = served.original[row * 1024 : (row + 1) * 1024, col * 1024 : (col + 1) * 1024]
        np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(body)).convert("RGB")), expected)


def test_nothing_is_served_without_the_token_or_outside_the_store(served: Served) -> None:
    assert _get(served.url(0))[0] == 200
    assert _get(served.url(0, token="A" * 32))[0] == 404
    assert _get(served.url(6))[0] == 404  # outside the grid
    assert _get(served.url(0, slug="nope"))[0] == 404
    assert _get(served.url(0, image_id=served.image_id + 99))[0] == 404
    base = f"http://{served.srv.host}:{served.srv.port}/{served.srv.token}"
    assert _get(f"{base}/{served.slug}/{served.image_id}/512/0.bmp")[0] == 404  # only the annotator's grid
    assert _get(f"{base}/../../etc/passwd")[0] == 404


def test_prefetch_cuts_the_grid_ahead_and_a_delete_cancels_it(served: Served) -> None:
    project_dir = served.ws.project_dir(served.slug)
    folder = tiles.tiles_folder(project_dir, served.rel_path)
    tiles.wait_for_tiles()
    tiles.delete_tiles(project_dir, served.rel_path)
    tile_prefetch.prefetch_tiles(project_dir, served.rel_path, SIZE, first=True)
    tiles.wait_for_tiles()
    assert sorted(p.name for p in folder.iterdir()) == ["1024.json"] + sorted(
        f"1024_{c}_{r}.bmp" for c in range(3) for r in range(2)
    )
    tile_prefetch.prefetch_tiles(project_dir, served.rel_path, SIZE)  # already cut: nothing is queued
    tiles.wait_for_tiles(timeout_s=0.5)
    tiles.delete_tiles(project_dir, served.rel_path)
    for _ in range(3):  # deleted before the job starts: nothing is left behind
        tile_prefetch.prefetch_tiles(project_dir, served.rel_path, SIZE, first=True)
        tiles.delete_tiles(project_dir, served.rel_path)
        tiles.wait_for_tiles()
        assert not folder.exists()
    tile_prefetch.prefetch_tiles(project_dir, served.rel_path, SIZE, first=True)
    deadline = time.monotonic() + 60
    while not (folder.is_dir() and any(p.suffix == ".bmp" for p in folder.iterdir())):
        assert time.monotonic() < deadline
        time.sleep(0.002)
    tiles.delete_tiles(project_dir, served.rel_path)  # deleted while its tiles are being written
    tiles.wait_for_tiles()
    assert not folder.exists()
