"""Tiny training configs: one for the trainer on synthetic run folders, and a real run of the demo
project frozen through services.training and trained for two iterations."""

from __future__ import annotations

from workbench.services import training
from workbench.services.workspace import Workspace
from workbench.store import runs as run_repo
from workbench.train.config import TrainConfig


def tiny_config(**overrides) -> TrainConfig:  # noqa: ANN003
    """Two epochs of the tiny backbone on the CPU, no augmentation, no early stopping."""
    base = dict(
        backbone="tiny", weights="none", epochs=2, batch_size=2, num_workers=0, warmup_iters=2, log_every=1,
        augmentation="none", lr=0.01, eval_every=100, early_stopping_patience=None,
    )
    base.update(overrides)
    return TrainConfig(**base)


def service_config(**overrides):  # noqa: ANN003, ANN201 - a TrainConfig
    """One epoch, two iterations, small images: the config of :func:`trained_run`."""
    base = dict(
        backbone="tiny", weights="none", epochs=1, batch_size=2, num_workers=0, warmup_iters=1, log_every=1,
        augmentation="none", lr=0.01, eval_every=100, early_stopping_patience=None, device="cpu",
        min_size=96, max_size=160, max_iters=2,
    )
    base.update(overrides)
    return training.config_with(training.default_config(4, cuda=False), **base)


def trained_run(ws: Workspace, slug: str, name: str = "tiny", **overrides) -> int:  # noqa: ANN003
    """Queue a run without starting a worker, train it in this process, finish its row."""
    import torch

    from workbench.train.loop import Trainer

    torch.set_num_threads(2)
    info = training.start_training(ws, slug, service_config(**overrides), name=name, start=False)
    with ws.store.transaction() as s:
        run_repo.claim_next_queued_run(s, info.device)
    status = Trainer(info.run_dir).train()
    with ws.store.transaction() as s:
        run_repo.finish_run(s, info.id, status)
    assert status == "succeeded", status
    return info.id
