"""Tiny CPU training fixtures: torch limited to 2 threads, synthetic shapes run folders."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from workbench.train.config import TrainConfig
from workbench.train.synthetic import write_shapes_run

torch.set_num_threads(2)


def tiny_config(**overrides) -> TrainConfig:
    base = dict(
        backbone="tiny", weights="none", epochs=2, batch_size=2, num_workers=0, warmup_iters=2, log_every=1,
        augmentation="none", lr=0.01, eval_every=100, early_stopping_patience=None,
    )
    base.update(overrides)
    return TrainConfig(**base)


@pytest.fixture
def make_run(tmp_path: Path):
    def make(name: str = "run", *, n_train: int = 4, n_val: int = 0, empty_every: int = 0, **overrides) -> Path:
        return write_shapes_run(
            tmp_path / name, tiny_config(**overrides), n_train=n_train, n_val=n_val, empty_every=empty_every,
            size_wh=(96, 64),
        )

    return make
