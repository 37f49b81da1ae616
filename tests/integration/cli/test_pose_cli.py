"""The keypoint-heatmap task through the real CLI, store and worker subprocess: train, the worker's
own evaluation (PCK, OKS AP), `workbench evaluate`, and `workbench predict` into Review's store."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.support.cli import run


@pytest.fixture
def demo_ws(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    assert run(ws, "demo", "--images", "10") == 0
    return ws


def test_keypoints_train_evaluate_and_predict(demo_ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(demo_ws, "train", "demo-shapes", "--task", "keypoints", "--arch", "hourglass", "--epochs", "1",
               "--max-iters", "2", "--device", "cpu", "--wait") == 0
    out = capsys.readouterr().out
    assert "run 1 succeeded" in out and "keypoints hourglass" in out
    assert run(demo_ws, "runs", "list", "demo-shapes") == 0
    assert " PCK " in capsys.readouterr().out  # the run's best figure is its PCK, not a mask AP
    assert run(demo_ws, "runs", "show", "1") == 0
    shown = json.loads(capsys.readouterr().out)
    run_dir = Path(shown["run_dir"])
    assert shown["config"]["task"] == "keypoints" and shown["config"]["heatmap"]["input_size"] == [64, 64]
    assert (run_dir / "model.pt").exists()
    pck = run_dir / "eval" / "val" / "pck.json"
    deadline = time.time() + 120
    while not pck.exists() and time.time() < deadline:
        time.sleep(0.5)
    assert pck.exists(), (run_dir / "worker.log").read_text()[-2000:]
    assert "keypoints" in json.loads((run_dir / "eval" / "val" / "metrics.json").read_text())["types"]

    assert run(demo_ws, "evaluate", "1", "--split", "val") == 0
    assert "PCK@0.2" in capsys.readouterr().out
    assert run(demo_ws, "runs", "show", "1") == 0
    assert "pck" in json.loads(capsys.readouterr().out)["metrics"]["eval"]["val"]

    assert run(demo_ws, "predict", "1", "--split", "train") == 0
    printed = capsys.readouterr().out
    from workbench.services.workspace import open_workspace
    from workbench.store import annotations as annotation_repo
    from workbench.store import images as image_repo
    from workbench.store import predictions as pstore
    from workbench.store import projects as project_repo

    ws = open_workspace(demo_ws)
    with ws.store.transaction() as s:
        pid = project_repo.project_id(s, "demo-shapes")
        recs = image_repo.list_images(s, pid, split="train")
        triangles = sum(i.category == "triangle" for r in recs for i in annotation_repo.load_instances(s, int(r.id)))
        preds = [p for p in pstore.list_predictions(s, pid, run_id=1, status="pending") if p.image_id in {r.id for r in recs}]
    ws.close()
    assert len(preds) == triangles > 0, printed
    assert all(p.instance.category == "triangle" and len(p.instance.keypoints) == 9 for p in preds)
