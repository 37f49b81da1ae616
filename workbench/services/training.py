"""Training use cases: defaults that fit the project and the machine, start a run, watch it, cancel it.

The Train page calls these. A run is a frozen folder (``<project>/runs/<name>/``: COCO of the train and
val splits, config, versions) plus a store row; :mod:`workbench.jobs` starts the worker process, which
outlives the browser and reports through ``status.json``, ``metrics.jsonl`` and the row's heartbeat.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.domain import AnnotatedImage, Dataset, ValidationError
from workbench.services.augmentation import DEFAULT_PIPELINE, get_pipeline
from workbench.services.export import project_dataset
from workbench.services.workspace import Workspace
from workbench.store import projects as project_repo
from workbench.store import runs as run_repo
from workbench.store.runs import RunInfo

AUGMENTATION_PRESETS = ("none", "light", "medium", "heavy")


def labelled_dataset(ws: Workspace, slug: str, splits: list[str] | None) -> Dataset:
    """The images a run trains or evaluates on: those with annotations or marked done (an image
    marked done without annotations is a true negative; an untouched one is not labelled yet)."""
    ds = project_dataset(ws, slug, splits=splits)
    items = [it for it in ds.items if it.instances or it.image.status == "done"]
    return Dataset(categories=ds.categories, items=items)


def training_splits(ws: Workspace, slug: str) -> tuple[Dataset, Dataset | None]:
    """(train, val): the train/val splits, or every labelled image for training when nothing is split."""
    train = labelled_dataset(ws, slug, ["train"])
    val = labelled_dataset(ws, slug, ["val"])
    if not train.items:
        train = labelled_dataset(ws, slug, None)
        val = Dataset(categories=train.categories, items=[])
    if not any(it.instances for it in train.items):
        raise ValidationError(
            f"project {slug!r} has no annotated images to train on; annotate some first "
            "(and assign train/val splits: `workbench split`, or the Dataset page)"
        )
    return train, (val if val.items else None)


def _cuda_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:
        return False


def gpu_count() -> int:
    """How many CUDA devices this machine has (0 without CUDA or torch): the Train page offers a
    GPUs setting only above 1."""
    try:
        import torch

        return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0
    except Exception:
        return 0


def _weights_cached(backbone: str) -> str | None:
    """'coco' or 'imagenet' when that weights file is already in TORCH_HOME (no network needed)."""
    from workbench.train import model as tm

    for name, table in (("coco", tm._COCO_WEIGHTS), ("imagenet", tm._IMAGENET_WEIGHTS)):
        w = table.get(backbone)
        if w is not None and tm.weights_file(w.url).exists():
            return name
    return None


def default_config(
    num_train_images: int,
    *,
    cuda: bool | None = None,
    ws: Workspace | None = None,
    slug: str | None = None,
    **overrides: Any,
) -> Any:
    """A TrainConfig that fits the data and the machine: a ResNet-50 FPN v2 with COCO weights on a
    GPU, the small CPU backbone otherwise; more epochs for small datasets. Given the project
    (``ws``, ``slug``), its saved augmentation pipeline (Augment page) is used unless
    ``augmentation`` is overridden."""
    from workbench.train.config import TrainConfig

    cuda = _cuda_available() if cuda is None else cuda
    n = max(int(num_train_images), 1)
    if cuda:
        backbone, batch, device = "resnet50_fpn_v2", 4, "cuda"
    else:
        backbone, batch, device = ("tiny" if n < 200 else "mobilenet_v3_large_fpn"), 2, "cpu"
    if backbone == "tiny":
        weights = "none"  # the tiny backbone has no pretrained weights
    else:
        weights = _weights_cached(backbone) or ("none" if os.environ.get("WORKBENCH_OFFLINE") == "1" else "coco")
    epochs = 30 if n <= 50 else 20 if n <= 500 else 12 if n <= 5000 else 8
    iters_per_epoch = max(n // batch, 1)
    base = dict(
        backbone=backbone,
        weights=weights,
        epochs=epochs,
        batch_size=batch,
        device=device,
        augmentation=DEFAULT_PIPELINE,
        warmup_iters=min(200, max(iters_per_epoch * epochs // 10, 1)),
        num_workers=min(2, max((os.cpu_count() or 1) - 1, 0)),
        log_every=max(1, min(10, iters_per_epoch)),
    )
    if ws is not None and slug is not None and "augmentation" not in overrides:
        base["augmentation"] = get_pipeline(ws, slug)
    base.update(overrides)
    return TrainConfig(**base)


def queue_device(config: Any) -> str:
    """The device key a run queues for (one running job per device): cpu, cuda:N, or for a run over
    several GPUs (``gpus`` > 1, under torchrun, rank r on cuda:r) the list cuda:0,...,cuda:G-1."""
    dev = str(config.device)
    gpus = int(getattr(config, "gpus", 1) or 1)
    if dev == "cpu":
        return "cpu"
    if gpus > 1 and (dev.startswith("cuda") or (dev == "auto" and _cuda_available())):
        return ",".join(f"cuda:{i}" for i in range(gpus))
    if dev.startswith("cuda:"):
        return dev
    if dev in ("cuda", "auto") and _cuda_available():
        return "cuda:0"
    return "mps" if dev == "mps" else "cpu"


def _check_device(config: Any) -> None:
    """A run on a device the machine lacks (or over more GPUs than it has) is refused here, not
    left to fail in its worker."""
    dev, gpus = str(config.device), int(getattr(config, "gpus", 1) or 1)
    if not dev.startswith("cuda"):
        if gpus > 1 and dev != "cpu":  # on the CPU, --gpus N runs N gloo processes (DDP without NCCL)
            raise ValidationError(f"{gpus} GPUs need device cuda (or cpu for the multi-process path), not {dev}")
        return
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    need = max(gpus, int(dev.split(":")[1]) + 1 if ":" in dev else 1)
    if need > count:
        asked = f"{gpus} GPUs were asked for" if gpus > 1 else f"device {dev} asks for a GPU"
        raise ValidationError(
            f"{asked}, but this machine has {count} CUDA device(s); train on device cpu"
            + (" (several processes there try the multi-GPU path)" if gpus > 1 else "")
        )


def _frozen(ds: Dataset) -> Dataset:
    return Dataset(
        categories=ds.categories,
        items=[AnnotatedImage(image=it.image, instances=it.instances) for it in ds.items],
    )


def start_training(
    ws: Workspace, slug: str, config: Any | None = None, *, name: str | None = None, start: bool = True
) -> RunInfo:
    """Freeze the project's train/val splits into a new run folder and queue the run (started now
    when its device is free; otherwise the running job starts it when it ends). Without a config,
    the defaults for the project, its saved augmentation pipeline included."""
    from workbench import jobs

    train, val = training_splits(ws, slug)
    if config is None:
        config = default_config(len(train.items), ws=ws, slug=slug)
    _check_device(config)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = name or f"{config.backbone}-{stamp}"
    runs_dir = ws.project_dir(slug) / "runs"
    run_dir = runs_dir / project_repo.slugify(name)
    n = 1
    while run_dir.exists():
        n += 1
        run_dir = runs_dir / f"{project_repo.slugify(name)}-{n}"
    jobs.write_run_folder(run_dir, _frozen(train), _frozen(val) if val else None, config,
                          project_dir=ws.project_dir(slug))
    with ws.store.transaction() as s:
        pid = project_repo.project_id(s, slug)
    return jobs.submit_run(ws.store, pid, name, run_dir, config, device=queue_device(config), start=start)


def list_runs(ws: Workspace, slug: str, *, refresh: bool = True) -> list[RunInfo]:
    """The project's runs, newest first; runs whose worker died are marked failed first."""
    if refresh:
        from workbench import jobs

        jobs.refresh_runs(ws.store)
    with ws.store.transaction() as s:
        return run_repo.list_runs(s, project_repo.project_id(s, slug))


def get_run(ws: Workspace, slug: str, run_id: int) -> RunInfo:
    with ws.store.transaction() as s:
        pid = project_repo.project_id(s, slug)
        info = run_repo.get_run(s, run_id)
    if info.project_id != pid:
        raise ValidationError(f"run {run_id} belongs to another project")
    return info


def cancel(ws: Workspace, run_id: int) -> RunInfo:
    from workbench import jobs

    return jobs.cancel_run(ws.store, run_id)


@dataclass(frozen=True)
class RunProgress:
    """What the Train page shows for one run, read from its folder (falling back to the row)."""

    status: dict[str, Any]
    train_rows: list[dict[str, Any]] = field(default_factory=list)
    val_rows: list[dict[str, Any]] = field(default_factory=list)
    log_tail: str = ""

    @property
    def fraction(self) -> float:
        total = self.status.get("total_steps") or 0
        return min(max(float(self.status.get("step") or 0) / total, 0.0), 1.0) if total else 0.0

    def loss_series(self) -> dict[str, list[float]]:
        """Loss curves by name against the training step (column ``step``, for st.line_chart's x).

        A resumed run logs again the steps after its checkpoint that the stopped attempt had
        logged; the later row of a step wins, so the curve does not run back on itself.
        """
        by_step = {int(r.get("step", i)): r for i, r in enumerate(self.train_rows)}
        rows = [by_step[k] for k in sorted(by_step)]
        keys = [k for k in rows[0] if k == "loss" or k.startswith("loss_")] if rows else []
        series = {k: [float(r.get(k, float("nan"))) for r in rows] for k in keys}
        return {"step": [float(k) for k in sorted(by_step)], **series} if keys else {}


def _read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    from workbench.train.loop import read_metrics

    return read_metrics(run_dir)


def run_progress(info: RunInfo, *, log_lines: int = 40) -> RunProgress:
    from workbench import jobs

    run_dir = Path(info.run_dir) if info.run_dir else None
    status: dict[str, Any] = dict(info.progress or {})
    rows: list[dict[str, Any]] = []
    tail = ""
    if run_dir is not None and run_dir.is_dir():
        status.update(jobs.read_status(run_dir))
        if (run_dir / "metrics.jsonl").exists():
            rows = _read_metrics(run_dir)
        tail = jobs.tail_log(run_dir, log_lines)
    status["status"] = info.status  # the row is the authority (cancelled before start, stale...)
    if info.error and not status.get("error"):
        status["error"] = info.error
    return RunProgress(
        status=status,
        train_rows=[r for r in rows if r.get("type") == "train"],
        val_rows=[r for r in rows if r.get("type") == "val"],
        log_tail=tail,
    )


def epoch_text(status: dict[str, Any]) -> str:
    """'epoch 2/3 · iteration 2/4' counted from 1, as a user reads it. The worker's ``epoch`` counts
    finished epochs and ``iter`` the batches done in the current one, so mid-epoch it is one behind
    (step 6 of 12 read 'epoch 1/3'), and a finished run read 'iteration 0/4'."""
    epoch, ipe = int(status.get("epoch") or 0), status.get("iters_per_epoch")
    it, epochs = int(status.get("iter") or 0), status.get("epochs")
    if it == 0 and epoch > 0 and ipe:  # between epochs, or done: the last finished epoch, complete
        shown_epoch, it = epoch, int(ipe)
    else:
        shown_epoch = epoch + 1
    if epochs:
        shown_epoch = min(shown_epoch, int(epochs))
    return f"epoch {shown_epoch}/{epochs or '?'} · iteration {it}/{ipe or '?'}"


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}h {m:02d}m" if h else f"{m}m {sec:02d}s" if m else f"{sec}s"


def config_with(config: Any, **changes: Any) -> Any:
    """A validated copy of a TrainConfig with some settings changed (ConfigError names the bad one)."""
    from workbench.train.config import TrainConfig

    return TrainConfig.from_dict({**config.to_dict(), **changes}, where="training settings")


__all__ = [
    "AUGMENTATION_PRESETS",
    "RunProgress",
    "cancel",
    "config_with",
    "default_config",
    "epoch_text",
    "format_eta",
    "get_run",
    "gpu_count",
    "labelled_dataset",
    "list_runs",
    "queue_device",
    "run_progress",
    "start_training",
    "training_splits",
]
