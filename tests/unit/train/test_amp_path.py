"""The AMP recipe of the loop (fp16 autocast, GradScaler, unscale before clipping, scaler state in
checkpoints and on resume) exercised on the CPU, where autocast and GradScaler("cpu") exist too.

On CUDA the same code runs with ``amp=True`` (tests/unit/train/test_gpu.py, marked gpu); here a subclass
switches it on for the CPU, so a machine without a GPU still checks everything but the kernels.
"""

from __future__ import annotations

import math

import torch

from workbench.train.config import load_config, save_config
from workbench.train.hooks import read_metrics
from workbench.train.loop import Trainer

INIT_SCALE = 2.0**10


class CpuAmpTrainer(Trainer):
    def _setup_model(self) -> None:
        super()._setup_model()
        assert not self.use_amp  # amp is CUDA-only unless forced, as here
        self.use_amp = True
        # growth every step: the scale moves, so a resume that forgot it would start from 2**10 again
        self.scaler = torch.amp.GradScaler("cpu", init_scale=INIT_SCALE, growth_interval=1)
        self.scales: list[float] = []

    def _step(self, images, targets):  # noqa: ANN001, ANN202
        out = super()._step(images, targets)
        self.scales.append(self.scaler.get_scale())
        return out


def test_amp_step_trains_and_its_scaler_state_survives_a_resume(make_run) -> None:  # noqa: ANN001
    run = make_run(n_train=4, epochs=2, amp=True, grad_clip_norm=5.0)
    first = CpuAmpTrainer(run)
    assert first.train() == "succeeded"
    losses = [r["loss"] for r in read_metrics(run) if r["type"] == "train"]
    assert len(losses) == 4 and all(math.isfinite(x) for x in losses)
    saved = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert saved["scaler"]["scale"] == first.scales[-1] != INIT_SCALE  # the scaler's state is checkpointed
    # Two more epochs from the checkpoint: the scaler continues from its saved scale, not from init.
    cfg = load_config(run / "config.json")
    cfg.epochs = 4
    save_config(cfg, run / "config.json")
    resumed = CpuAmpTrainer(run, resume=True)
    saved_scale = saved["scaler"]["scale"]
    orig_step = resumed._step

    def first_step_sees_saved_scale(images, targets):  # noqa: ANN001, ANN202
        if not resumed.scales:
            assert resumed.scaler.get_scale() == saved_scale
        return orig_step(images, targets)

    resumed._step = first_step_sees_saved_scale  # type: ignore[method-assign]
    assert resumed.train() == "succeeded"
    assert resumed.state.resumed_from_step == 4 and resumed.state.global_step == 8
    losses = [r["loss"] for r in read_metrics(run) if r["type"] == "train"]
    assert len(losses) == 8 and all(math.isfinite(x) for x in losses)
    assert sum(losses[-2:]) < sum(losses[:2])
