"""Slow check (opt-in, ``-m slow``): the tiny semantic configuration (U-Net, ResNet-18 encoder from
scratch, 128 px) learns the demo project on a CPU: validation mean IoU >= 0.6 (background not counted).

On the 2-core development machine under the load of six engineers (load average 15): 8 epochs in
574 s, validation mean IoU 0.455 after epoch 4 and 0.762 after epoch 8 (a 25-epoch run had 0.77 after
epoch 5); on an idle machine it takes a fraction of that."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support.cli import run


@pytest.mark.slow
def test_a_tiny_unet_learns_the_demo_project(tmp_path: Path) -> None:
    import torch

    from workbench.services import training
    from workbench.services.workspace import open_workspace
    from workbench.store import runs as run_repo
    from workbench.train.hooks import read_metrics
    from workbench.train.loop import Trainer

    torch.set_num_threads(2)
    assert run(tmp_path / "ws", "demo", "--images", "40") == 0
    ws = open_workspace(tmp_path / "ws")
    config = training.default_config(
        32, cuda=False, task="semantic", arch="unet", encoder="resnet18", weights="none", image_size=128,
        epochs=8, batch_size=4, optimizer="adamw", lr=2e-3, warmup_iters=10, device="cpu", num_workers=0,
        early_stopping_patience=None, eval_every=4, seg_loss="ce", dice_weight=0.5,
    )
    info = training.start_training(ws, "demo-shapes", config, start=False)
    with ws.store.transaction() as s:
        run_repo.claim_next_queued_run(s, info.device)
    t0 = time.perf_counter()
    assert Trainer(info.run_dir).train() == "succeeded"
    elapsed = time.perf_counter() - t0
    vals = [r for r in read_metrics(Path(info.run_dir)) if r["type"] == "val"]
    print(f"\n8 epochs x 8 steps, 32 demo images at 128 px in {elapsed:.0f} s; val mean IoU "
          f"{[round(v['mean_iou'], 3) for v in vals]}")
    assert vals[-1]["on"] == "val"
    assert max(v["mean_iou"] for v in vals) >= 0.6, vals
