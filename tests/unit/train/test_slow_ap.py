"""Slow check: a short CPU run on synthetic shapes learns its training images (mask AP50 >= 0.5)."""

from __future__ import annotations

import time

import pytest

from tests.support.training import tiny_config
from workbench.train.hooks import read_metrics
from workbench.train.loop import Trainer
from workbench.train.synthetic import write_shapes_run


@pytest.mark.slow
def test_short_cpu_run_reaches_mask_ap50_on_training_images(tmp_path):
    cfg = tiny_config(
        epochs=40, batch_size=2, optimizer="adamw", lr=2e-3, warmup_iters=10, augmentation="none",
        eval_every=10, log_every=6,
    )
    run = write_shapes_run(tmp_path / "run", cfg, n_train=12, size_wh=(128, 96))
    t0 = time.perf_counter()
    assert Trainer(run).train() == "succeeded"
    elapsed = time.perf_counter() - t0
    vals = [r for r in read_metrics(run) if r["type"] == "val"]
    print(f"\n40 epochs x 6 steps on 12 images 128x96 in {elapsed:.0f} s; val rows: {vals}")
    assert vals[-1]["on"] == "train"
    assert max(v["segm_ap50"] for v in vals) >= 0.5, vals
