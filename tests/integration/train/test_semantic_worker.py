"""A semantic run through the real worker subprocess: it trains, resumes from its checkpoint with more
epochs, and a cancel file stops it as cancelled (exit status 3)."""

from __future__ import annotations

import json
import subprocess
import sys

from workbench.train.config import TrainConfig, load_config, save_config


def _worker(run, *extra: str) -> int:  # noqa: ANN001
    return subprocess.run([sys.executable, "-m", "workbench.runs.worker", str(run), "--threads", "1", *extra],
                          capture_output=True, text=True, timeout=900, check=False).returncode


def test_a_semantic_run_trains_resumes_and_cancels_in_the_worker(make_run) -> None:  # noqa: ANN001
    run = make_run(n_train=4, task="semantic", arch="unet", encoder="resnet18", image_size=32, epochs=1, eval_every=1)
    assert _worker(run) == 0
    first = json.loads((run / "status.json").read_text())
    assert first["status"] == "succeeded" and first["step"] == 2 and (run / "model.pt").exists()
    cfg = load_config(run / "config.json")
    save_config(TrainConfig.from_dict({**cfg.to_dict(), "epochs": 2}), run / "config.json")
    assert _worker(run, "--resume") == 0
    status = json.loads((run / "status.json").read_text())
    assert (status["status"], status["resumed_from_step"], status["step"]) == ("succeeded", 2, 4)
    save_config(TrainConfig.from_dict({**cfg.to_dict(), "epochs": 3}), run / "config.json")
    (run / "cancel").write_text("")
    assert _worker(run, "--resume") == 3
    assert json.loads((run / "status.json").read_text())["status"] == "cancelled"
