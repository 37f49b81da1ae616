"""A keypoint-heatmap run of a project, frozen through services.training and trained in this process."""

from __future__ import annotations

from workbench.services import training
from workbench.services.workspace import Workspace
from workbench.store import runs as run_repo

TINY_HEATMAP = {"input_size": [32, 32], "depth": 1, "stacks": 1, "channels": 8, "sigma": 4.0, "flip_test": True}


def heatmap_run(ws: Workspace, slug: str, name: str = "pose", *, threads: int = 2, **overrides) -> int:  # noqa: ANN003
    """Queue a keypoints run (the CPU defaults of the task, then ``overrides``) without a worker,
    train it here, finish its row; returns the run id."""
    import torch

    from workbench.train.loop import Trainer

    torch.set_num_threads(threads)
    base = dict(
        task="keypoints", arch="hourglass", heatmap=TINY_HEATMAP, epochs=1, max_iters=2, num_workers=0, warmup_iters=1,
        log_every=1, early_stopping_patience=None, device="cpu",
    )
    base.update(overrides)
    cfg = training.default_config(4, cuda=False, **base)
    info = training.start_training(ws, slug, cfg, name=name, start=False)
    with ws.store.transaction() as s:
        run_repo.claim_next_queued_run(s, info.device)
    status = Trainer(info.run_dir).train()
    with ws.store.transaction() as s:
        run_repo.finish_run(s, info.id, status)
    assert status == "succeeded", status
    return info.id
