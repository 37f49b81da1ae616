"""The trainer: loss goes down, outputs land in the run folder, kill -9 then resume continues."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from workbench.train.config import ConfigError, TrainConfig, load_config
from workbench.train.hooks import read_metrics
from workbench.train.loop import Trainer, lr_factor
from workbench.train.model import load_trained_model

REPO = Path(__file__).resolve().parents[3]


def test_a_few_iterations_give_finite_decreasing_loss(make_run):
    run = make_run(n_train=2, epochs=12, batch_size=2, augmentation="none", lr=0.01, warmup_iters=1)
    assert Trainer(run).train() == "succeeded"
    losses = [r["loss"] for r in read_metrics(run) if r["type"] == "train"]
    assert len(losses) == 12 and all(torch.isfinite(torch.tensor(losses)))
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert last < 0.8 * first, losses


def test_outputs_status_metrics_checkpoints_and_model_file(make_run):
    run = make_run(n_train=4, n_val=2, empty_every=3, epochs=2, augmentation="light", eval_every=1)
    assert Trainer(run).train() == "succeeded"
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "succeeded" and status["epoch"] == 2 and status["step"] == status["total_steps"] == 4
    vals = [r for r in read_metrics(run) if r["type"] == "val"]
    assert [v["epoch"] for v in vals] == [1, 2] and all("segm_ap" in v and v["on"] == "val" for v in vals)
    train_rows = [r for r in read_metrics(run) if r["type"] == "train"]
    assert {"loss_mask", "loss_keypoint", "lr", "images_per_s"} <= set(train_rows[0])
    # 2 steps per epoch (4 images, batch 2): both counters read the epoch from 1
    assert [(r["epoch"], r["step"]) for r in train_rows] == [(1, 1), (1, 2), (2, 3), (2, 4)]
    assert (run / "checkpoints" / "last.pt").exists() and (run / "checkpoints" / "best.pt").exists()
    payload = torch.load(run / "model.pt", weights_only=True)
    assert payload["class_names"] == ["circle", "square", "triangle"]
    assert payload["schema"]["keypoints"]["triangle"]["flip_pairs"] == [[0, 1]]
    model, info = load_trained_model(run / "model.pt")
    out = model([torch.rand(3, 64, 96)])
    assert "keypoints" in out[0] and info["model_args"]["num_keypoints"] == 3


def test_cancel_file_stops_at_the_next_step(make_run):
    run = make_run(n_train=2, epochs=3)
    (run / "cancel").write_text("x")
    assert Trainer(run).train() == "cancelled"
    assert json.loads((run / "status.json").read_text())["status"] == "cancelled"


def test_early_stopping_stops_when_mask_ap_does_not_improve(make_run):
    run = make_run(n_train=2, epochs=6, eval_every=1, early_stopping_patience=1, lr=1e-6, warmup_iters=0)
    assert Trainer(run).train() == "succeeded"
    status = json.loads((run / "status.json").read_text())
    assert status["epoch"] < 6


class _FixedAP(Trainer):
    """Validation that returns the given mask AP per epoch (the counting rule, without training to it)."""

    def __init__(self, run, aps):  # noqa: ANN001
        super().__init__(run)
        self.aps = list(aps)

    def _validate(self):  # noqa: ANN202
        return {"segm_ap": self.aps.pop(0), "bbox_ap": 0.0}


@pytest.mark.parametrize(
    ("aps", "stopped_at"),
    [
        ([0.0] * 10, 6),  # nothing learned: patience 2 counts from epoch 5 (half-way), stops after 6
        ([0.0, 0.0, 0.0, 0.1, 0.1, 0.1] + [0.0] * 4, 6),  # learns at 4, no better for 2 epochs
        ([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9], 10),  # always improving: runs to the end
    ],
)
def test_patience_counts_once_the_model_learned_something_or_from_half_way(make_run, aps, stopped_at):
    run = make_run(n_train=2, epochs=10, eval_every=1, early_stopping_patience=2, warmup_iters=0)
    trainer = _FixedAP(run, aps)
    assert trainer.train() == "succeeded"
    assert trainer.state.epoch == stopped_at


def _wait(pred, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return False


def _status(run):
    try:
        return json.loads((run / "status.json").read_text())
    except (OSError, ValueError):
        return {}


def test_kill_9_mid_epoch_then_resume_continues_from_the_checkpoint(make_run):
    # One epoch of 6 steps with a checkpoint every 2 steps: a kill after step 3 leaves step 2 on disk.
    run = make_run(n_train=6, batch_size=1, epochs=1, checkpoint_every_iters=2, num_workers=0)
    cmd = [sys.executable, "-m", "workbench.runs.worker", str(run), "--threads", "1"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert _wait(lambda: _status(run).get("step", 0) >= 3), "worker never reached step 3"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    ckpt = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    saved = ckpt["state"]
    assert saved["epoch"] == 0 and 2 <= saved["iter_in_epoch"] < 6
    assert _status(run)["status"] == "running"  # killed: nobody wrote a final status
    # Resume in-process (same code path the worker takes with --resume).
    assert Trainer(run, resume=True).train() == "succeeded"
    status = _status(run)
    assert status["resumed_from_step"] == saved["global_step"]
    assert status["step"] == status["total_steps"] == 6
    steps = [r["step"] for r in read_metrics(run) if r["type"] == "train"]
    # The killed worker logged steps 1..>=3; the resumed run logs exactly the steps after the checkpoint.
    assert steps[-(6 - saved["global_step"]):] == list(range(saved["global_step"] + 1, 7))
    assert len(steps) > 6 - saved["global_step"]


@pytest.mark.parametrize("scheduler", ["cosine", "step"])
def test_lr_warms_up_then_decays(scheduler):
    cfg = TrainConfig(scheduler=scheduler, warmup_iters=10, warmup_factor=0.01, step_milestones=(0.5,))
    f = [lr_factor(s, 100, cfg) for s in range(100)]
    assert f[0] == pytest.approx(0.01) and f[10] == pytest.approx(1.0 if scheduler == "step" else f[10])
    assert max(f) <= 1.0 and f[99] < 0.2 and f[5] < f[10]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"backbone": "vgg"}, "backbone 'vgg' is not one of"),
        ({"epochs": 0}, "epochs must be at least 1"),
        ({"optimizer": "rmsprop"}, "optimizer 'rmsprop'"),
        ({"lr": -1}, "lr must be positive"),
        ({"colour": 1}, "unknown setting(s) ['colour']"),
        ({"step_milestones": [3]}, "step_milestones are fractions"),
    ],
)
def test_bad_config_is_refused_with_the_file_name(tmp_path, data, message):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert message in str(err.value) and str(path) in str(err.value)


def test_config_round_trips_through_json():
    cfg = TrainConfig(backbone="tiny", augmentation=[{"name": "HorizontalFlip", "params": {"p": 0.5}}])
    assert TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
