"""`workbench export`: COCO and label maps written from a real workspace; refused exports are one line."""

from __future__ import annotations

from pathlib import Path

from tests.support.factories import project_with_train_and_val


def test_cli_export_of_an_empty_split_fails_with_the_message(ws, project, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    from workbench.cli import main

    project_with_train_and_val(ws, project, tmp_path)
    rc = main(["--workspace", str(ws.root), "export", "labelmaps", project, str(tmp_path / "o"), "--split", "test"])
    assert rc == 1
    assert "split 'test' has no images to export (images per split: train 2" in capsys.readouterr().err
