"""`workbench import images|coco|labelme`: real files into a real workspace; refused options import nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import run
from tests.support.images import write_image


def _project_with_image(tmp_path: Path) -> tuple[Path, Path]:
    ws = tmp_path / "ws"
    assert run(ws, "project", "create", "P") == 0
    return ws, write_image(tmp_path / "in" / "a.png")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["images", "p", "{img}", "{tmp}/typo.png"], "no such file or folder: {tmp}/typo.png; nothing was imported"),
        (["coco", "p", "{tmp}/a.json", "{tmp}/b.json"], "import coco takes one file or folder, got 2"),
        (["labelme", "p", "{tmp}/in", "{tmp}/in2"], "import labelme takes one file or folder, got 2"),
        (["labelme", "p", "{tmp}/in", "--images-dir", "{tmp}"], "--images-dir is for import coco"),
        (["images", "p", "{img}", "--images-dir", "{tmp}"], "--images-dir is for import coco"),
        (["coco", "p", "{tmp}/in", "--split", "val"], "a COCO folder's files name their splits"),
    ],
)
def test_import_refuses_ignored_paths_and_options_and_imports_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    ws, img = _project_with_image(tmp_path)
    fill = {"img": str(img), "tmp": str(tmp_path)}
    assert run(ws, "import", *[a.format(**fill) for a in args]) == 1
    err = capsys.readouterr().err
    assert message.format(**fill) in err and err.count("\n") == 1
    assert run(ws, "stats", "p", "--json") == 0
    assert json.loads(capsys.readouterr().out)["images"] == 0


def test_labelme_import_puts_its_images_in_the_split_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], shared_fixtures: Path
) -> None:
    ws, _ = _project_with_image(tmp_path)
    assert run(ws, "import", "labelme", "p", str(shared_fixtures / "labelme"), "--split", "val") == 0
    capsys.readouterr()
    assert run(ws, "stats", "p", "--json") == 0
    assert json.loads(capsys.readouterr().out)["splits"] == {"val": 3}


def test_importing_a_folder_without_images_says_none_were_found(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws, _ = _project_with_image(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    assert run(ws, "import", "images", "p", str(tmp_path / "empty")) == 0
    out = capsys.readouterr().out
    assert f"0 images imported\n  note: no image files (JPEG, PNG, BMP, TIFF, WebP) found in {tmp_path / 'empty'}" in out
