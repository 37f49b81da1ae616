"""`workbench train` and `workbench runs list|show|cancel|resume`: training from the command line."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.cli.common import workspace
from workbench.domain import WorkbenchError

if TYPE_CHECKING:
    from workbench.services.workspace import Workspace


def _config(args: argparse.Namespace, ws: Workspace, num_train: int) -> Any:
    from workbench.services.training import config_settings, default_config

    overrides: dict[str, Any] = {}
    if args.config:
        path = Path(args.config)
        if path.exists() and not path.is_file():  # a named pipe would block the read forever
            raise WorkbenchError(f"{path}: not a regular file, not read")
        try:
            overrides.update(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError) as exc:
            raise WorkbenchError(f"{path}: cannot read the training config ({exc})") from None
        except RecursionError:
            raise WorkbenchError(f"{path}: cannot read the training config (nested too deeply)") from None
        unknown = set(overrides) - config_settings()
        if unknown:
            raise WorkbenchError(f"{path}: unknown settings {sorted(unknown)}")
    for key in (
        "epochs",
        "backbone",
        "weights",
        "device",
        "gpus",
        "batch_size",
        "lr",
        "max_iters",
        "augmentation",
        "task",
        "arch",
        "encoder",
        "image_size",
    ):
        value = getattr(args, key, None)
        if value is not None:
            overrides[key] = value
    return default_config(num_train, ws=ws, slug=args.project, **overrides)


def _follow(ws: Workspace, run_id: int) -> int:
    """Show a progress bar until the run ends; exit status 0 only when it succeeded."""
    from tqdm import tqdm

    from workbench.services import training

    bar = tqdm(desc=f"run {run_id}", unit="it", file=sys.stderr, disable=None)
    while True:
        info = training.find_run(ws, run_id, refresh=True)
        prog = info.progress or {}
        total = prog.get("total_steps")
        done = prog.get("step") or 0
        if total:
            bar.total = total
        bar.n = done
        loss = prog.get("loss")
        bar.set_postfix_str(
            (training.epoch_text(prog) if prog else "starting")
            + (f" loss {loss:.3f}" if isinstance(loss, float) else "")
        )
        bar.refresh()
        if not info.is_active:
            bar.close()
            print(f"run {run_id} {info.status}" + (f": {info.error}" if info.error else ""))
            return 0 if info.status == "succeeded" else 1
        time.sleep(1.0)


def cmd_train(args: argparse.Namespace) -> int:
    from workbench.services import training

    ws = workspace(args)
    train, _val = training.training_splits(ws, args.project)
    config = _config(args, ws, len(train.items))
    info = training.start_training(ws, args.project, config, name=args.name)
    model = config.backbone if config.task == "instance" else f"{config.task} {config.arch} {config.encoder or ''}".strip()
    print(f"run {info.id} {info.status} ({model}, {config.epochs} epochs, device {config.device}); folder {info.run_dir}")
    return _follow(ws, info.id) if args.wait else 0


def cmd_runs(args: argparse.Namespace) -> int:
    from workbench.services import training

    ws = workspace(args)
    if args.action == "list":
        rows = training.list_runs(ws, args.project)
        if not rows:
            print(f"no runs in {args.project}; start one with `workbench train {args.project}`")
        for r in rows:
            ap = (r.progress or {}).get("best_ap")
            task = (r.config or {}).get("task")  # the run's primary metric
            what = "mean IoU" if task == "semantic" else "PCK" if task in ("keypoints", "keypoints-heatmap") else "mask AP"
            ap_text = f" {what} {ap:.3f}" if isinstance(ap, float) else ""
            print(f"{r.id:5} {r.status:10} {r.name:36} {r.created_at:%Y-%m-%d %H:%M}{ap_text}")
        return 0
    info = training.find_run(ws, args.run)
    if args.action == "show":
        print(
            json.dumps(
                {
                    "id": info.id,
                    "name": info.name,
                    "status": info.status,
                    "device": info.device,
                    "run_dir": info.run_dir,
                    "progress": info.progress,
                    "metrics": info.metrics,
                    "error": info.error,
                    "config": info.config,
                },
                indent=2,
                default=str,
            )
        )
    elif args.action == "cancel":
        if not info.is_active:
            print(f"run {info.id} already {info.status}: nothing to cancel")
            return 0
        info = training.cancel(ws, args.run)
        print(f"run {info.id} {info.status}")
    elif args.action == "resume":
        info = training.resume(ws, args.run)
        if info.status == "queued":
            print(f"run {info.id} queued: it resumes when its device ({info.device}) is free")
        elif training.has_checkpoint(info):
            print(f"run {info.id} resumed from its last checkpoint")
        else:
            print(f"run {info.id} restarted from the beginning (it stopped before its first checkpoint)")
        return _follow(ws, info.id) if args.wait else 0
    return 0


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    tr = sub.add_parser(
        "train", help="fine-tune a Mask R-CNN on a project (a background run)", parents=[common]
    )
    tr.add_argument("project")
    tr.add_argument("--config", help="JSON file of TrainConfig settings")
    tr.add_argument("--epochs", type=int)
    tr.add_argument(
        "--backbone", choices=["resnet50_fpn_v2", "resnet50_fpn", "mobilenet_v3_large_fpn", "tiny"]
    )
    tr.add_argument("--weights", help="coco | imagenet | none | path to a checkpoint")
    tr.add_argument("--device", help="auto | cpu | cuda | cuda:N | mps")
    tr.add_argument("--gpus", type=int, help="several GPUs: the worker runs under torchrun with DDP")
    tr.add_argument("--batch-size", dest="batch_size", type=int)
    tr.add_argument("--lr", type=float)
    tr.add_argument(
        "--max-iters", dest="max_iters", type=int, help="stop after this many iterations (smoke runs)"
    )
    tr.add_argument("--augmentation", help="none | light | medium | heavy")
    tr.add_argument("--task", help="instance (Mask R-CNN, the default) | semantic (per-pixel label maps) | keypoints (heatmap pose on the boxes)")
    tr.add_argument("--arch", help="semantic: unet | fcn | deeplabv3 | lraspp | pspnet (default unet); keypoints: hourglass | unet")
    tr.add_argument("--encoder", help="semantic backbone: resnet18/34/50/101, mobilenet_v3_large, tu-<timm name>")
    tr.add_argument("--image-size", dest="image_size", type=int, help="semantic: train and predict at this square size")
    tr.add_argument("--name")
    tr.add_argument("--wait", action="store_true", help="follow the run with a progress bar until it ends")
    tr.set_defaults(func=cmd_train)

    rn = sub.add_parser("runs", help="list, show, cancel or resume training runs", parents=[common])
    rn_sub = rn.add_subparsers(dest="action", required=True)
    li = rn_sub.add_parser("list", parents=[common])
    li.add_argument("project")
    for action in ("show", "cancel", "resume"):
        p = rn_sub.add_parser(action, parents=[common])
        p.add_argument("run", type=int)
        if action == "resume":
            p.add_argument("--wait", action="store_true")
    rn.set_defaults(func=cmd_runs)
