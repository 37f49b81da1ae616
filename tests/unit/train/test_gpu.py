"""CUDA checks: AMP training, pinned-memory loading and prediction on a GPU. Skipped without CUDA.

Run them where a GPU is lent: `pytest -m gpu tests/unit/train/test_gpu.py`; figures go in bench/RESULTS.md.
"""

from __future__ import annotations

import json

import pytest
import torch

from workbench.train.hooks import read_metrics
from workbench.train.loop import Trainer
from workbench.train.model import load_trained_model

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (run on a lent GPU machine)"),
]


def test_amp_training_on_cuda_gives_finite_decreasing_loss(make_run) -> None:  # noqa: ANN001
    run = make_run(n_train=4, n_val=2, epochs=10, device="cuda", amp=True, num_workers=2, eval_every=5)
    assert Trainer(run).train() == "succeeded"
    status = json.loads((run / "status.json").read_text())
    assert status["device"].startswith("cuda")
    losses = [r["loss"] for r in read_metrics(run) if r["type"] == "train"]
    assert all(torch.isfinite(torch.tensor(losses)))
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3


def test_trained_model_predicts_on_cuda(make_run) -> None:  # noqa: ANN001
    run = make_run(n_train=2, epochs=1, device="cuda", amp=True, num_workers=0)
    assert Trainer(run).train() == "succeeded"
    model, info = load_trained_model(run / "model.pt", device="cuda")
    with torch.no_grad():
        out = model([torch.rand(3, 64, 96, device="cuda")])
    assert out[0]["boxes"].device.type == "cuda" and "masks" in out[0]
