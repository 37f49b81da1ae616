"""The semantic task under torchrun on CPU processes (gloo): the same DDP path as Mask R-CNN's, since
one trainer serves every task; ranks split the images and end with the same weights."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.train.test_ddp import _probe
from workbench.train.hooks import read_metrics


def test_two_ranks_train_a_semantic_unet_on_disjoint_images_to_the_same_weights(make_run, tmp_path: Path) -> None:
    run = make_run(n_train=8, task="semantic", arch="unet", encoder="resnet18", image_size=64, epochs=1,
                   batch_size=1, eval_every=1, device="cpu", gpus=2)
    r0, r1 = _probe(run, tmp_path / "probe")
    assert r0["status"] == r1["status"] == "succeeded"
    # 8 images, batch 1, two ranks: 4 steps each, disjoint, together every image once
    ids0, ids1 = {i for s in r0["steps"] for i in s}, {i for s in r1["steps"] for i in s}
    assert len(r0["steps"]) == len(r1["steps"]) == 4
    assert not ids0 & ids1 and len(ids0 | ids1) == 8
    # gradients are all-reduced: the same parameters on both ranks
    assert r0["param_checksum"] == pytest.approx(r1["param_checksum"], rel=1e-6)
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "succeeded" and status["step"] == status["total_steps"] == 4
    assert [r["step"] for r in read_metrics(run) if r["type"] == "train"] == [1, 2, 3, 4]
    assert any("mean_iou" in r for r in read_metrics(run) if r["type"] != "train")
    assert (run / "model.pt").exists()
