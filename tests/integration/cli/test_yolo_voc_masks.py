"""`workbench export yolo|voc` and `workbench import yolo|voc|masks`: real files, notes printed, refused
options and bad files in one line with exit status 1."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.support.cli import run
from tests.support.images import write_image


@pytest.fixture(scope="module")
def demo_ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One demo workspace for the module (each test imports into a project of its own)."""
    ws = tmp_path_factory.mktemp("cli-formats") / "ws"
    assert run(ws, "demo") == 0
    return ws


def _stats(ws: Path, slug: str, capsys: pytest.CaptureFixture[str]) -> dict:
    capsys.readouterr()
    assert run(ws, "stats", slug, "--json") == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(("kind", "extra", "note"), [
    ("yolo", ["--task", "pose"], "left out of the pose export"),
    ("yolo", ["--task", "segment"], "keypoints not written (--task pose writes them)"),
    ("voc", [], "keypoints left out (VOC has none)"),
])
def test_export_prints_where_and_what_was_left_out_then_imports_back(
    demo_ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, extra: list[str], note: str
) -> None:
    out = tmp_path / "out"
    assert run(demo_ws, "export", kind, "demo-shapes", str(out), *extra) == 0
    printed = capsys.readouterr().out
    assert printed.splitlines()[0] == str(out / "data.yaml" if kind == "yolo" else out)
    assert note in printed
    name = f"back-{kind}-{'-'.join(extra).strip('-')}".rstrip("-")
    assert run(demo_ws, "project", "create", name) == 0
    assert run(demo_ws, "import", kind, name, str(out)) == 0
    back, src = _stats(demo_ws, name, capsys), _stats(demo_ws, "demo-shapes", capsys)
    assert back["images"] == src["images"] and back["splits"] == src["splits"]


def test_import_masks_from_a_label_map_export(demo_ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    images = tmp_path / "images"
    for n in range(2):
        write_image(images / f"m{n}.png", 20, 10, seed=n)
    masks = tmp_path / "masks"
    masks.mkdir()
    m = np.zeros((10, 20), dtype=np.uint8)
    m[1:4, 1:4], m[6:9, 10:18] = 1, 2
    for n in range(2):
        Image.fromarray(m).save(masks / f"m{n}.png")
    (masks / "classes.txt").write_text("leaf\nbug\n")
    assert run(demo_ws, "project", "create", "M") == 0
    assert run(demo_ws, "import", "masks", "m", str(masks), "--images-dir", str(images), "--split", "val") == 0
    assert "2 images imported, 4 annotations" in capsys.readouterr().out
    assert _stats(demo_ws, "m", capsys)["splits"] == {"val": 2}


@pytest.mark.parametrize(("args", "message"), [
    (["masks", "p", "{tmp}"], "import masks needs --images-dir"),
    (["yolo", "p", "{tmp}", "--split", "val"], "a YOLO data.yaml names its splits"),
    (["voc", "p", "{tmp}", "--classes", "c.txt"], "--classes and --one-per-class are for import masks"),
    (["yolo", "p", "{tmp}"], "no data.yaml in this folder"),
    (["voc", "p", "{tmp}"], "not a VOC folder"),
])
def test_refused_imports_say_why_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    ws = tmp_path / "ws"
    assert run(ws, "project", "create", "P") == 0
    capsys.readouterr()
    assert run(ws, "import", *[a.format(tmp=tmp_path) for a in args]) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
