"""Training use cases: defaults that fit the project and the machine, start a run, watch it, cancel it.

The Train page calls these. A run is a frozen folder (``<project>/runs/<name>/``: COCO of the train and
val splits, config, versions) plus a store row; :mod:`workbench.runs` starts the worker process, which
outlives the browser and reports through ``status.json``, ``metrics.jsonl`` and the row's heartbeat.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.domain import AnnotatedImage, Dataset, RunInfo, ValidationError, check_name_length
from workbench.runs import devices, processes
from workbench.runs import folders as run_folders
from workbench.runs import queue as run_queue
from workbench.runs.devices import gpu_count, queue_device
from workbench.services.augmentation import DEFAULT_PIPELINE, get_pipeline
from workbench.services.export import project_dataset
from workbench.services.permissions import requires
from workbench.services.workspace import Workspace
from workbench.store import projects as project_repo
from workbench.store import runs as run_repo
from workbench.train.config import BACKBONES, DEVICES, WEIGHTS, TrainConfig
from workbench.train.hooks import read_metrics

AUGMENTATION_PRESETS = ("none", "light", "medium", "heavy")
log = logging.getLogger(__name__)


@requires("project.read")
def labelled_dataset(ws: Workspace, slug: str, splits: list[str] | None) -> Dataset:
    """The images a run trains or evaluates on: those with annotations or marked done (an image
    marked done without annotations is a true negative; an untouched one is not labelled yet)."""
    ds = project_dataset(ws, slug, splits=splits)
    items = [it for it in ds.items if it.instances or it.image.status == "done"]
    return Dataset(categories=ds.categories, items=items)


@requires("project.read")
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


def crowd_only_warnings(train: Dataset, val: Dataset | None) -> list[str]:
    """One line per split whose annotations are all crowd regions: the model gets no target there.

    CVAT and supervision export masks with holes as RLE marked ``iscrowd=1``; imported as they are,
    training (like COCOeval) ignores every one of them (``import coco --crowd-as-instances``)."""
    out = []
    for split, ds in (("train", train), ("val", val)):
        insts = [inst for it in (ds.items if ds is not None else []) for inst in it.instances]
        if insts and all(inst.iscrowd for inst in insts):
            out.append(
                f"the {split} split has {len(insts)} annotations and all are crowd regions (iscrowd=1), which "
                "training ignores as targets; if they are objects, re-import with --crowd-as-instances"
            )
    return out


def default_config(
    num_train_images: int,
    *,
    cuda: bool | None = None,
    ws: Workspace | None = None,
    slug: str | None = None,
    **overrides: Any,
) -> TrainConfig:
    """A TrainConfig that fits the data and the machine: a ResNet-50 FPN v2 with COCO weights on a
    GPU, the small CPU backbone otherwise; more epochs for small datasets. Given the project
    (``ws``, ``slug``), its saved augmentation pipeline (Augment page) is used unless
    ``augmentation`` is overridden."""
    cuda = devices.cuda_available() if cuda is None else cuda
    n = max(int(num_train_images), 1)
    if cuda:
        backbone, batch, device = "resnet50_fpn_v2", 4, "cuda"
    else:
        backbone, batch, device = ("tiny" if n < 200 else "mobilenet_v3_large_fpn"), 2, "cpu"
    if backbone == "tiny":
        weights = "none"  # the tiny backbone has no pretrained weights
    else:
        from workbench.train.model import cached_weights

        weights = cached_weights(backbone) or ("none" if os.environ.get("WORKBENCH_OFFLINE") == "1" else "coco")
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
    if overrides.get("task") == "semantic":
        from workbench.services.semantic import semantic_defaults

        base.update(semantic_defaults(cuda, overrides.get("arch")))
    if overrides.get("task") in ("keypoints", "keypoints-heatmap"):
        from workbench.services.pose import heatmap_defaults

        base.update(heatmap_defaults(cuda, overrides.get("arch")))
    base.update(overrides)
    return TrainConfig(**base)


def _frozen(ds: Dataset) -> Dataset:
    return Dataset(
        categories=ds.categories,
        items=[AnnotatedImage(image=it.image, instances=it.instances) for it in ds.items],
    )


@requires("train")
def start_training(
    ws: Workspace, slug: str, config: TrainConfig | None = None, *, name: str | None = None, start: bool = True
) -> RunInfo:
    """Freeze the project's train/val splits into a new run folder and queue the run (started now
    when its device is free; otherwise the running job starts it when it ends). Without a config,
    the defaults for the project, its saved augmentation pipeline included."""
    if config is not None and config.weights not in WEIGHTS:
        from workbench.train.model import check_weights_file

        check_weights_file(Path(config.weights))  # refused now, in one line, not when the run starts
    if name is not None:
        check_name_length("run name", name)
    train, val = training_splits(ws, slug)
    for warning in crowd_only_warnings(train, val):
        log.warning("%s: %s", slug, warning)
    if config is None:
        config = default_config(len(train.items), ws=ws, slug=slug)
    devices.check_train_device(config)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = name or f"{config.backbone if config.task == 'instance' else config.arch or config.task}-{stamp}"
    runs_dir = ws.project_dir(slug) / "runs"
    run_dir = runs_dir / project_repo.slugify(name)
    n = 1
    while run_dir.exists():
        n += 1
        run_dir = runs_dir / f"{project_repo.slugify(name)}-{n}"
    run_folders.write_run_folder(run_dir, _frozen(train), _frozen(val) if val else None, config,
                          project_dir=ws.project_dir(slug))
    with ws.store.transaction() as s:
        pid = project_repo.project_id(s, slug)
    return run_queue.submit_run(ws.store, pid, name, run_dir, config, device=queue_device(config), start=start)


@requires("project.read")
def list_runs(ws: Workspace, slug: str, *, refresh: bool = True) -> list[RunInfo]:
    """The project's runs, newest first; runs whose worker died are marked failed first."""
    if refresh:
        run_queue.refresh_runs(ws.store)
    with ws.store.transaction() as s:
        return run_repo.list_runs(s, project_repo.project_id(s, slug))


@requires("project.read")
def get_run(ws: Workspace, slug: str, run_id: int) -> RunInfo:
    with ws.store.transaction() as s:
        pid = project_repo.project_id(s, slug)
        info = run_repo.get_run(s, run_id)
    if info.project_id != pid:
        raise ValidationError(f"run {run_id} belongs to another project")
    return info


@requires("train", run="run_id")
def cancel(ws: Workspace, run_id: int) -> RunInfo:
    return processes.cancel_run(ws.store, run_id)


@requires("project.read", run="run_id")
def find_run(ws: Workspace, run_id: int, *, refresh: bool = False) -> RunInfo:
    """A run by id alone, as the command line names it; ``refresh`` first marks runs whose worker died."""
    if refresh:
        run_queue.refresh_runs(ws.store)
    with ws.store.transaction() as s:
        return run_repo.get_run(s, run_id)


@requires("train", run="run_id")
def resume(ws: Workspace, run_id: int) -> RunInfo:
    """Queue a failed or cancelled run again (from its last checkpoint when it has one)."""
    return run_queue.resume_run(ws.store, run_id)


def has_checkpoint(info: RunInfo) -> bool:
    """Whether the run saved a checkpoint to resume from."""
    return run_folders.has_checkpoint(Path(info.run_dir or ""))


def config_settings() -> frozenset[str]:
    """The names a training config file may set (the fields of TrainConfig)."""
    return frozenset(TrainConfig.__dataclass_fields__)


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

    def val_series(self, keys: Sequence[str] = ("segm_ap", "bbox_ap", "segm_ap50")) -> dict[str, list[float]]:
        """Validation AP by name against the epoch (column ``epoch``, for st.line_chart's x), counted
        from 1 as the progress text counts it: charted by row index, the axis ran from 0. A resumed
        run's later row of an epoch wins."""
        by_epoch = {int(r.get("epoch", i + 1)): r for i, r in enumerate(self.val_rows)}
        rows = [by_epoch[k] for k in sorted(by_epoch)]
        names = [k for k in keys if rows and k in rows[0]]
        series = {k: [float(r.get(k, float("nan"))) for r in rows] for k in names}
        return {"epoch": [float(k) for k in sorted(by_epoch)], **series} if names else {}


def run_progress(info: RunInfo, *, log_lines: int = 40) -> RunProgress:
    run_dir = Path(info.run_dir) if info.run_dir else None
    status: dict[str, Any] = dict(info.progress or {})
    rows: list[dict[str, Any]] = []
    tail = ""
    if run_dir is not None and run_dir.is_dir():
        status.update(run_folders.read_status(run_dir))
        if (run_dir / "metrics.jsonl").exists():
            rows = read_metrics(run_dir)
        tail = run_folders.tail_log(run_dir, log_lines)
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


def config_with(config: TrainConfig, **changes: Any) -> TrainConfig:
    """A validated copy of a TrainConfig with some settings changed (ConfigError names the bad one)."""
    return TrainConfig.from_dict({**config.to_dict(), **changes}, where="training settings")


__all__ = [
    "AUGMENTATION_PRESETS",
    "BACKBONES",
    "DEVICES",
    "WEIGHTS",
    "RunProgress",
    "cancel",
    "config_settings",
    "config_with",
    "default_config",
    "epoch_text",
    "find_run",
    "format_eta",
    "get_run",
    "gpu_count",
    "has_checkpoint",
    "labelled_dataset",
    "list_runs",
    "queue_device",
    "resume",
    "run_progress",
    "start_training",
    "training_splits",
]
