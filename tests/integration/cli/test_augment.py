"""`workbench augment show|set|preview`: real commands on a real workspace."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.support.cli import run
from workbench.services import augmentation
from workbench.services.demo import create_demo_project
from workbench.services.workspace import open_workspace


@pytest.fixture
def demo(tmp_path: Path) -> tuple[Path, str]:
    root = tmp_path / "ws"
    ws = open_workspace(root)
    slug = create_demo_project(ws, num_images=4).slug
    ws.close()
    return root, slug


def test_show_set_preview(demo: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, slug = demo
    assert run(root, "augment", "show", slug) == 0
    out = capsys.readouterr().out
    assert "preset 'light'" in out and '"HorizontalFlip"' in out

    assert run(root, "augment", "set", slug, "--preset", "heavy") == 0
    assert "saved preset 'heavy'" in capsys.readouterr().out
    pipeline = [{"name": "VerticalFlip", "params": {"p": 1.0}}]
    path = tmp_path / "pipe.json"
    path.write_text(json.dumps(pipeline))
    assert run(root, "augment", "set", slug, "--pipeline", str(path)) == 0
    assert "custom: VerticalFlip" in capsys.readouterr().out
    ws = open_workspace(root)
    assert augmentation.get_pipeline(ws, slug) == pipeline

    out_dir = tmp_path / "previews"
    assert run(root, "augment", "preview", slug, "--out", str(out_dir), "--count", "3", "--seed", "7") == 0
    assert "wrote 3 previews (custom: VerticalFlip, seed 7)" in capsys.readouterr().out
    files = sorted(out_dir.glob("*.png"))
    assert len(files) == 3 and all("seed7" in f.name for f in files)
    arrays = [np.asarray(Image.open(f).convert("RGB")) for f in files]
    expected = augmentation.preview(ws, slug, count=3, seed=7)
    assert all(np.array_equal(a, e) for a, (_, e) in zip(arrays, expected, strict=True))
    # a second preview into the same folder replaces the first (4 files of seed 7 would mix in)
    (out_dir / "notes.txt").write_text("mine")
    assert run(root, "augment", "preview", slug, "--out", str(out_dir), "--count", "2", "--seed", "8") == 0
    names = sorted(f.name for f in out_dir.iterdir())
    assert len(names) == 3 and "notes.txt" in names and all("seed8" in n for n in names if n.endswith(".png"))
    ws.close()


def test_bad_pipeline_file_lists_every_problem_and_saves_nothing(
    demo: tuple[Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, slug = demo
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([{"name": "Warp9"}, {"name": "HorizontalFlip", "params": {"p": 5}}]))
    assert run(root, "augment", "set", slug, "--pipeline", str(path)) == 1
    err = capsys.readouterr().err
    assert f"{path}: pipeline[0] (Warp9): unknown transform" in err
    assert f"{path}: pipeline[1] (HorizontalFlip): bad parameter: p" in err
    assert "2 problems; nothing was saved" in err
    (tmp_path / "junk.json").write_text("[{")
    assert run(root, "augment", "set", slug, "--pipeline", str(tmp_path / "junk.json")) == 1
    assert "not valid JSON" in capsys.readouterr().err
    assert run(root, "augment", "set", slug) == 1
    assert "give --preset NAME or --pipeline FILE.json" in capsys.readouterr().err
    ws = open_workspace(root)
    assert augmentation.get_pipeline(ws, slug) == "light"
    ws.close()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--count", "0"], "--count must be at least 1, got 0"),
        (["--count", "-2"], "--count must be at least 1, got -2"),
        (["--max-side", "-4"], "--max-side must be at least 1 pixel, got -4"),
    ],
)
def test_augment_preview_refuses_counts_below_one_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    ws = tmp_path / "ws"
    assert run(ws, "demo", "--images", "2") == 0
    capsys.readouterr()
    assert run(ws, "augment", "preview", "demo-shapes", "--out", str(tmp_path / "prev"), *flags) == 1
    err = capsys.readouterr().err
    assert message in err and "no annotated images" not in err
    assert not (tmp_path / "prev").exists()


def test_augment_preview_and_set_count_in_the_singular(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = tmp_path / "ws"
    assert run(ws, "demo", "--images", "2") == 0
    capsys.readouterr()
    assert run(ws, "augment", "preview", "demo-shapes", "--out", str(tmp_path / "prev"), "--count", "1") == 0
    assert "wrote 1 preview (" in capsys.readouterr().out
    (tmp_path / "bad.json").write_text('[{"name": "Bogus"}]')
    assert run(ws, "augment", "set", "demo-shapes", "--pipeline", str(tmp_path / "bad.json")) == 1
    assert "the pipeline has 1 problem; nothing was saved" in capsys.readouterr().err
