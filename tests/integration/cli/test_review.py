"""`workbench predict` with a tiny real model.pt on the demo project."""

from __future__ import annotations

import re

from tests.support.predictions import run_with_model
from workbench.services import review
from workbench.store import images as image_repo
from workbench.store import projects as project_repo


def test_cli_predict_command(ws, demo, tmp_path, capsys) -> None:  # noqa: ANN001
    from workbench import cli

    run = run_with_model(ws, demo, tmp_path)
    code = cli.main(
        ["predict", str(run), "--split", "val", "--score-threshold", "0.5", "--workspace", str(ws.root)]
    )
    assert code == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert re.search(r"run \d+: (1 prediction|\d+ predictions) on (1 image|\d+ images) of", out), out
    with ws.store.transaction() as s:
        val_ids = {r.id for r in image_repo.list_images(s, project_repo.project_id(s, demo), split="val")}
    assert {p.image_id for p in review.list_predictions(ws, demo, run_id=run)} == val_ids
    assert cli.main(["predict", "999", "--workspace", str(ws.root)]) == 1
    assert "no run with id 999" in capsys.readouterr().err
