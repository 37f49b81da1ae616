"""`workbench export`: COCO and label maps written from a real workspace; refused exports are one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import run
from tests.support.factories import project_with_train_and_val


def test_cli_export_of_an_empty_split_fails_with_the_message(ws, project, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    from workbench.cli import main

    project_with_train_and_val(ws, project, tmp_path)
    rc = main(["--workspace", str(ws.root), "export", "labelmaps", project, str(tmp_path / "o"), "--split", "test"])
    assert rc == 1
    assert "split 'test' has no images to export (images per split: train 2" in capsys.readouterr().err


@pytest.mark.parametrize("sigma", ["inf", "nan", "-1"])
def test_labelmaps_refuse_a_sigma_that_is_not_a_positive_number(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sigma: str
) -> None:
    ws = tmp_path / "ws"
    assert run(ws, "demo", "--images", "2") == 0
    assert run(ws, "export", "labelmaps", "demo-shapes", str(tmp_path / "maps"), f"--sigma={sigma}") == 1
    err = capsys.readouterr().err
    assert "sigma" in err and err.count("\n") == 1
    assert not (tmp_path / "maps").exists()
