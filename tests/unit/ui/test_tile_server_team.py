"""The tile server in team mode: each signed-in user has a token of their own, each tile is checked
as theirs by the service (membership), and signing out revokes the token at once."""

from __future__ import annotations

import io
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image

from tests.support.team import team_of
from workbench.images import tiles
from workbench.images.decode import ImageSource
from workbench.services import accounts, annotate, imports, projects
from workbench.services.workspace import open_workspace
from workbench.ui.components.annotator.tile_server import revoke_user, tile_server


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_tiles_per_user_membership_checked_and_revoked(tmp_path: Path) -> None:
    ws = open_workspace(tmp_path / "ws")
    slug = projects.create_project(ws, "Tiles").slug
    other = projects.create_project(ws, "Other").slug
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (600, 1100, 3), dtype=np.uint8)).save(buf, "PNG")
    imports.import_images(ws, slug, [ImageSource(name="big.png", data=buf.getvalue())])
    (rec,) = annotate.list_images(ws, slug)
    users = team_of(ws, slug)  # vic (viewer) belongs to Tiles
    boss = users["admin"]
    accounts.add_user(boss, "out", "a long password", "viewer")
    accounts.add_member(boss, other, "out")  # a member of Other only
    outsider = ws.as_user(accounts.current_account(ws, "out"))
    viewer = users["viewer"]

    mine, theirs = tile_server(viewer, "127.0.0.1"), tile_server(outsider, "127.0.0.1")
    assert mine is not None and theirs is not None and mine.token != theirs.token and mine.port == theirs.port
    assert tile_server(viewer, "127.0.0.1") == mine  # one token per user

    def url(srv) -> str:  # noqa: ANN001
        return f"http://127.0.0.1:{srv.port}{srv.base(slug, rec.id, tiles.TILE_SIDE)}0.bmp"

    assert _status(url(mine)) == 200
    assert _status(url(theirs)) == 404  # not a member of the project: the service refuses
    revoke_user(viewer.actor.id)
    assert _status(url(mine)) == 404  # signed out: the token is gone
    tiles.wait_for_tiles()
    ws.close()
