"""Slow check: the keypoints task's CPU defaults (a small Hourglass on 64 x 64 crops) learn the demo
project's triangles: validation PCK@0.2 >= 0.5 (0.86 at epoch 20 here). Time: 20 epochs of about 4 steps
of batch 8 on one thread; 30 epochs took 36 s on a moderately loaded 2-core machine, 20 took 13 min
when six engineers' tests shared its two cores."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support.pose import heatmap_run
from workbench.services import training
from workbench.services.demo import create_demo_project
from workbench.train.hooks import read_metrics


@pytest.mark.slow
def test_cpu_defaults_reach_pck_on_the_demo(ws):
    slug = create_demo_project(ws).slug
    t0 = time.perf_counter()
    # heatmap=None: the task's CPU default (services.pose.TINY_CPU_HEATMAP), 20 epochs of batch 8
    run_id = heatmap_run(ws, slug, heatmap=None, epochs=20, max_iters=None, eval_every=5, threads=1)
    elapsed = time.perf_counter() - t0
    run_dir = Path(training.get_run(ws, slug, run_id).run_dir)
    vals = [r for r in read_metrics(run_dir) if r["type"] == "val"]
    print(f"\n20 epochs on the demo's triangles in {elapsed:.0f} s; val: {[(v['epoch'], v['pck'], v['oks_ap']) for v in vals]}")
    assert vals[-1]["on"] == "val" and vals[-1]["num_crops"] >= 5
    assert max(v["pck"] for v in vals) >= 0.5, vals
