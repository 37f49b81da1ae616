"""Benchmark (issue 17): our one-click training against Ultralytics YOLO11n-seg, same data, same wall clock.

Both from scratch on this machine's CPU, on (a) the demo project (``create_demo_project``: 32 train /
8 val, plus 24 held-out test images of the same generator) and (b) a harder set
(bench/hard_shapes.py: many small, overlapping shapes on textured backgrounds; 80/10/10 split). Ours is
the Trainer a training job runs, on a run folder written as ``start_training`` writes it; a bench hook
fits its lr schedule to the budget (as Ultralytics' ``time=`` does) and stops it there. Both sides
predict the test split at a 0.001 score, 100 per image, and are scored by the same pycocotools COCOeval
call (bbox and segm). "before" is the default config of issue 17's report (pinned below), "after" the
default plus ``--config``.

One-line setup of the YOLO side (its own venv, outside the repo; Ultralytics is AGPL, never a
dependency of workbench; without that venv the YOLO rows are skipped with a message):

    python3 -m venv /work/bench-venv && /work/bench-venv/bin/pip install torch==2.14.1 torchvision==0.29.1 && /work/bench-venv/bin/pip install ultralytics pycocotools

    .venv/bin/python bench/quality.py --minutes 6                      # both sets, before / yolo / after
    .venv/bin/python bench/quality.py --minutes 3 --sets demo --sides after --config '{"optimizer": "adamw"}'
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/quality.py` from the repo

from workbench.domain import AnnotatedImage, Dataset  # noqa: E402

BENCH = Path(__file__).resolve().parent
VENV = Path(os.environ.get("QUALITY_BENCH_VENV", "/work/bench-venv"))
SIDES = ("before", "yolo", "after")
DEMO_TEST_IMAGES = 24  # more than the demo's own 8, for a steadier AP; same generator, never trained on
# Issue 17's "before": the one-click defaults it measured (SGD + cosine, batch 2, 'light' augmentation,
# torchvision's score threshold). Pinned so that new defaults do not move it; keys that TrainConfig
# does not have (yet) are left out.
BEFORE_PINS: dict[str, Any] = {
    "optimizer": "sgd",
    "lr": None,
    "batch_size": 2,
    "momentum": 0.9,
    "weight_decay": 1e-4,
    "scheduler": "cosine",
    "warmup_factor": 0.001,
    "augmentation": "light",
    "min_size": None,
    "max_size": None,
    "early_stopping_patience": 5,
    "ema": False,
    "mosaic": 0.0,
    "copy_paste": 0.0,
    "close_mosaic": 0,
    "eval_score_thresh": 0.05,
}


# ------------------------------------------------------------------------------------------ data
def _split_test(ws: Any, slug: str) -> None:
    from workbench.services.dataset import split_project

    split_project(ws, slug, ratios=(0.0, 0.0, 1.0), only_unassigned=True)


def prepare_set(name: str, root: Path, *, hard_images: int, seed: int) -> tuple[Any, str]:
    """A workspace with the set's project (train/val/test splits); reused when it is there."""
    from workbench.services.imports import import_dataset
    from workbench.services.projects import create_project, list_projects
    from workbench.services.workspace import open_workspace

    ws = open_workspace(root / "workspace")
    existing = {p.name: p.slug for p in list_projects(ws)}
    if name == "demo":
        from workbench.services.demo import DEMO_NAME, create_demo_project, make_demo_dataset

        if DEMO_NAME in existing:
            return ws, existing[DEMO_NAME]
        import inspect

        if "test_images" in inspect.signature(create_demo_project).parameters:  # the demo's own test split
            info = create_demo_project(ws, seed=seed, test_images=DEMO_TEST_IMAGES)
            return ws, info.slug
        info = create_demo_project(ws, seed=seed)  # the `workbench demo` project: 32 train / 8 val
        held = make_demo_dataset(DEMO_TEST_IMAGES, seed=seed + 1000)
        items = [
            replace(it, image=replace(it.image, file_name="test_" + it.image.file_name)) for it in held.items
        ]
        import_dataset(ws, info.slug, Dataset(categories=held.categories, items=items))
        _split_test(ws, info.slug)
        return ws, info.slug
    from hard_shapes import make_hard_dataset  # type: ignore[import-not-found]

    if "Hard shapes" in existing:
        return ws, existing["Hard shapes"]
    from workbench.services.dataset import split_project

    info = create_project(ws, "Hard shapes", description="bench/hard_shapes.py")
    import_dataset(ws, info.slug, make_hard_dataset(hard_images, seed=seed))
    split_project(ws, info.slug, ratios=(0.8, 0.1, 0.1), seed=seed)
    return ws, info.slug


def _absolute(ds: Dataset, project_dir: Path) -> Dataset:
    items = [
        AnnotatedImage(
            image=replace(it.image, file_name=str((project_dir / (it.image.path or "")).resolve())),
            instances=it.instances,
        )
        for it in ds.items
    ]
    return Dataset(categories=ds.categories, items=items)


def _instance_polygon(inst: Any, w: int, h: int) -> list[float] | None:
    """The instance's outline (largest part) in pixels, as YOLO's label format wants one polygon."""
    import cv2
    from pycocotools import mask as mask_utils

    if inst.polygons:
        return list(max(inst.polygons, key=len))
    if inst.rle is None:
        return None
    m = mask_utils.decode({"size": list(inst.rle.size_hw), "counts": inst.rle.counts.encode()})
    contours, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    c = max(contours, key=cv2.contourArea).reshape(-1, 2).astype(float)
    return [float(v) for v in c.reshape(-1)] if len(c) >= 3 else None


def write_yolo(folder: Path, splits: dict[str, Dataset], class_names: list[str]) -> Path:
    """images/<split>/<id>.png and labels/<split>/<id>.txt (class x y x y ... normalized), data.yaml."""
    import shutil

    for split, ds in splits.items():
        (folder / "images" / split).mkdir(parents=True, exist_ok=True)
        (folder / "labels" / split).mkdir(parents=True, exist_ok=True)
        for it in ds.items:
            src = Path(it.image.file_name)
            dst = folder / "images" / split / f"{it.image.id}{src.suffix}"
            if not dst.exists():
                shutil.copy2(src, dst)
            w, h = it.image.width, it.image.height
            lines = []
            for inst in it.instances:
                poly = _instance_polygon(inst, w, h)
                if poly is None or inst.category not in class_names:
                    continue
                xy = [min(max(v / (w if k % 2 == 0 else h), 0.0), 1.0) for k, v in enumerate(poly)]
                lines.append(" ".join([str(class_names.index(inst.category))] + [f"{v:.6f}" for v in xy]))
            (folder / "labels" / split / f"{it.image.id}.txt").write_text(
                "\n".join(lines) + ("\n" if lines else "")
            )
    names = "\n".join(f"  {i}: {n}" for i, n in enumerate(class_names))
    data = folder / "data.yaml"
    data.write_text(f"path: {folder}\ntrain: images/train\nval: images/val\nnames:\n{names}\n")
    return data


# --------------------------------------------------------------------------------------- scoring
def score(gt: dict[str, Any], detections: list[dict[str, Any]]) -> dict[str, float]:
    """THE pycocotools call both sides are scored by: COCOeval bbox and segm, AP and AP50."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    out: dict[str, float] = {}
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = json.loads(json.dumps(gt))
        coco_gt.createIndex()
        for iou_type in ("bbox", "segm"):
            dets = [d for d in detections if iou_type == "bbox" or "segmentation" in d]
            if not dets:
                out[f"{iou_type}_ap"] = out[f"{iou_type}_ap50"] = 0.0
                continue
            ev = COCOeval(coco_gt, coco_gt.loadRes(json.loads(json.dumps(dets))), iou_type)
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
            out[f"{iou_type}_ap"], out[f"{iou_type}_ap50"] = float(ev.stats[0]), float(ev.stats[1])
    return out


# ------------------------------------------------------------------------------------- our side
def clock(kind: str) -> Any:
    """wall: seconds; cpu: this process's CPU seconds / cores (about wall on an idle machine, and
    steady when other work shares the CPU; data-loader worker processes are not counted, on both sides)."""
    if kind == "wall":
        return time.perf_counter
    cores = os.cpu_count() or 1
    return lambda: time.process_time() / cores


def budget_hook(seconds: float, now: Any) -> Any:
    """Fits the run's schedule to ``seconds`` of training from the measured speed, then stops."""
    from workbench.train.hooks import Hook

    class WallClockBudget(Hook):
        def before_train(self, trainer: Any) -> None:
            self.t0 = now()

        def after_step(self, trainer: Any, losses: dict[str, float]) -> None:
            st = trainer.state
            elapsed = now() - self.t0
            if elapsed >= seconds:
                trainer.stopping = True
                st.total_steps = st.global_step
                return
            if st.global_step >= 5:  # seconds per step, validation included once an epoch has ended
                st.total_steps = max(
                    st.global_step + int((seconds - elapsed) * st.global_step / elapsed), st.global_step + 1
                )
                trainer.config.epochs = max(
                    math.ceil(st.total_steps / max(st.iters_per_epoch, 1)), st.epoch + 1
                )

    return WallClockBudget()


def our_config(train_n: int, ws: Any, slug: str, side: str, extra: dict[str, Any]) -> Any:
    from workbench.services.training import default_config
    from workbench.train.config import TrainConfig

    known = {f.name for f in fields(TrainConfig)}
    base = default_config(train_n, ws=ws, slug=slug).to_dict()
    if side == "before":
        base.update({k: v for k, v in BEFORE_PINS.items() if k in known})
    else:
        unknown = sorted(set(extra) - known)
        if unknown:
            raise SystemExit(f"--config: unknown setting(s) {unknown}")
        base.update(extra)
    base["epochs"] = max(int(base["epochs"]), 1)
    return TrainConfig.from_dict(base, where="--config")


def run_ours_child(run_dir: Path, seconds: float, test_json: Path, out: Path, clock_kind: str) -> None:
    """In a subprocess: train (the job's Trainer) for ``seconds``, predict the test images."""
    import torch
    from PIL import Image
    from pycocotools import mask as mask_utils

    from workbench.train.loop import Trainer
    from workbench.train.model import load_trained_model

    torch.set_num_threads(os.cpu_count() or 1)
    now = clock(clock_kind)
    trainer = Trainer(run_dir, hooks=[budget_hook(seconds, now)])
    t0, c0 = time.perf_counter(), now()
    status = trainer.train()
    train_s, train_clock = time.perf_counter() - t0, now() - c0
    if status != "succeeded":
        raise SystemExit(f"our run ended {status}: {(run_dir / 'status.json').read_text()}")
    from workbench.train.dataset import TrainingSchema

    model, info = load_trained_model(run_dir / "model.pt", "cpu")
    names = TrainingSchema.from_dict(info["schema"]).class_names
    model.roi_heads.score_thresh = 0.001  # COCO practice, as YOLO's conf=0.001
    model.roi_heads.detections_per_img = 100
    model.eval()
    gt = json.loads(test_json.read_text())
    cat_id = {c["name"]: c["id"] for c in gt["categories"]}
    dets: list[dict[str, Any]] = []
    t1 = time.perf_counter()
    with torch.no_grad():
        for img in gt["images"]:
            arr = np.asarray(Image.open(img["file_name"]).convert("RGB"), dtype=np.uint8).copy()
            o = model([torch.from_numpy(arr).permute(2, 0, 1).float().div(255)])[0]
            masks = (o["masks"][:, 0] > 0.5).numpy() if "masks" in o else None
            for i in range(len(o["scores"])):
                x0, y0, x1, y1 = (float(v) for v in o["boxes"][i])
                det = {
                    "image_id": img["id"],
                    "category_id": cat_id[names[int(o["labels"][i]) - 1]],
                    "score": float(o["scores"][i]),
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                }
                if masks is not None:
                    rle = mask_utils.encode(np.asfortranarray(masks[i].astype(np.uint8)))
                    det["segmentation"] = {
                        "size": [int(s) for s in rle["size"]],
                        "counts": rle["counts"].decode(),
                    }
                dets.append(det)
    st = trainer.state
    out.write_text(
        json.dumps(
            {
                "detections": dets,
                "train_s": train_s,
                "train_clock_s": train_clock,
                "predict_s": time.perf_counter() - t1,
                "steps": st.global_step,
                "epochs": st.epoch,
                "best_epoch": st.best_epoch,
            }
        )
    )


# ------------------------------------------------------------------------------------------ main
def _load() -> str:
    return "/".join(f"{v:.1f}" for v in os.getloadavg())


def run_set(name: str, args: argparse.Namespace, extra: dict[str, Any]) -> list[dict[str, Any]]:
    from workbench.formats.coco.write import dataset_to_coco
    from workbench.runs.folders import write_run_folder
    from workbench.services.training import labelled_dataset, training_splits

    root = args.out / name
    ws, slug = prepare_set(name, root, hard_images=args.hard_images, seed=args.seed)
    pdir = ws.project_dir(slug)
    train, val = training_splits(ws, slug)
    test = labelled_dataset(ws, slug, ["test"])
    if not test.items:
        raise SystemExit(f"{name}: the project has no test split")
    class_names = [c.name for c in train.categories if not c.is_ignore]
    test_abs = _absolute(test, pdir)
    gt = dataset_to_coco(test_abs)
    test_json = root / "coco_test.json"
    test_json.write_text(json.dumps(gt))
    print(
        f"[{name}] {len(train.items)} train / {len(val.items) if val else 0} val / {len(test.items)} test images, "
        f"{sum(len(it.instances) for it in test.items)} test instances",
        flush=True,
    )
    rows: list[dict[str, Any]] = []
    seconds = args.minutes * 60
    stamp = time.strftime("%H%M%S")
    for side in args.sides:
        load_before = _load()
        t0 = time.perf_counter()
        res_path = root / f"{side}-{stamp}.json"
        if side == "yolo":
            py = VENV / "bin" / "python"
            if not py.exists():
                print(
                    f"[{name}] yolo: skipped, no bench venv at {VENV} (see the setup line at the top of "
                    "bench/quality.py)",
                    flush=True,
                )
                continue
            ydir = root / "yolo"
            data_yaml = write_yolo(
                ydir / "data",
                {"train": _absolute(train, pdir), "val": _absolute(val or train, pdir)},
                class_names,
            )
            cat_id = {c["name"]: c["id"] for c in gt["categories"]}
            test_list = {
                "images": [{"file": im["file_name"], "image_id": im["id"]} for im in gt["images"]],
                "category_ids": [cat_id[n] for n in class_names],
            }
            (ydir / "test.json").write_text(json.dumps(test_list))
            env = {**os.environ, "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(ydir / "config")}
            cmd = [
                str(py),
                str(BENCH / "quality_yolo.py"),
                "--data",
                str(data_yaml),
                "--test",
                str(ydir / "test.json"),
                "--minutes",
                str(args.minutes),
                "--imgsz",
                str(args.yolo_imgsz),
                "--batch",
                str(args.yolo_batch),
                "--project",
                str(ydir / f"runs-{stamp}"),
                "--out",
                str(res_path),
                "--clock",
                args.clock,
            ]
            log = root / f"yolo-{stamp}.log"
        else:
            cfg = our_config(len(train.items), ws, slug, side, extra)
            run_dir = root / "runs" / f"{side}-{stamp}"
            write_run_folder(run_dir, train, val, cfg, project_dir=pdir)
            cmd = [
                sys.executable,
                str(Path(__file__).resolve()),
                "_ours",
                str(run_dir),
                str(seconds),
                str(test_json),
                str(res_path),
                args.clock,
            ]
            env = dict(os.environ)
            log = root / f"{side}-{stamp}.log"
        print(
            f"[{name}] {side}: training {args.minutes:g} min (load {load_before}) ... log {log}", flush=True
        )
        with open(log, "w") as fh:
            proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=str(root))
        if proc.returncode != 0 or not res_path.exists():
            print(f"[{name}] {side}: FAILED (exit {proc.returncode}), see {log}", flush=True)
            continue
        res = json.loads(res_path.read_text())
        row = {
            "set": name,
            "side": side,
            "wall_s": time.perf_counter() - t0,
            "train_s": res["train_s"],
            "clock_s": res.get("train_clock_s", res["train_s"]),
            "load_before": load_before,
            "load_after": _load(),
            **score(gt, res["detections"]),
            **{k: res[k] for k in ("steps", "epochs", "best_epoch") if k in res},
        }
        if side != "yolo":
            row["config"] = {k: v for k, v in cfg.to_dict().items() if k != "augmentation"}
        rows.append(row)
        print(
            f"[{name}] {side}: segm AP {row['segm_ap']:.3f} AP50 {row['segm_ap50']:.3f}, bbox AP "
            f"{row['bbox_ap']:.3f} AP50 {row['bbox_ap50']:.3f} (trained {row['train_s']:.0f} s)",
            flush=True,
        )
    return rows


def table(rows: list[dict[str, Any]], minutes: float) -> str:
    lines = [
        "| set | side | budget clock s | wall s | load 1/5/15-min (before -> after) | bbox AP | bbox AP50 | segm AP | segm AP50 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['set']} | {r['side']} | {r['clock_s']:.0f} | {r['train_s']:.0f} | {r['load_before']} -> {r['load_after']} | "
            f"{r['bbox_ap']:.3f} | {r['bbox_ap50']:.3f} | {r['segm_ap']:.3f} | {r['segm_ap50']:.3f} |"
        )
    lines.append("")
    by = {(r["set"], r["side"]): r for r in rows}
    for s in dict.fromkeys(r["set"] for r in rows):
        y = by.get((s, "yolo"))
        for side in ("before", "after"):
            o = by.get((s, side))
            if o and y:
                ratios = ", ".join(
                    f"{k} {o[k] / y[k]:.2f}" if y[k] > 0 else f"{k} n/a"
                    for k in ("segm_ap", "segm_ap50", "bbox_ap", "bbox_ap50")
                )
                lines.append(f"- {s}: ours ({side}) / yolo11n-seg at {minutes:g} min: {ratios}")
        b, a = by.get((s, "before")), by.get((s, "after"))
        if b and a:
            lines.append(
                f"- {s}: our recipe before -> after: segm AP {b['segm_ap']:.3f} -> {a['segm_ap']:.3f}, "
                f"bbox AP {b['bbox_ap']:.3f} -> {a['bbox_ap']:.3f}"
            )
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_ours":
        run_ours_child(
            Path(sys.argv[2]), float(sys.argv[3]), Path(sys.argv[4]), Path(sys.argv[5]), sys.argv[6]
        )
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=6.0, help="training wall clock per run")
    ap.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="budget in wall seconds (the issue's) or in CPU seconds / cores (steady on a shared machine)",
    )
    ap.add_argument("--sets", default="demo,hard", help="demo,hard")
    ap.add_argument("--sides", default=",".join(SIDES), help="before,yolo,after in the order run")
    ap.add_argument("--config", default="{}", help="the 'after' overrides: a JSON object or a .json file")
    ap.add_argument("--hard-images", type=int, default=250)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--yolo-imgsz", type=int, default=320)
    ap.add_argument("--yolo-batch", type=int, default=8)
    ap.add_argument("--out", type=Path, default=Path("/tmp/quality-bench"))
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = ap.parse_args()
    args.sides = [s for s in args.sides.split(",") if s]
    if bad := [s for s in args.sides if s not in SIDES]:
        raise SystemExit(f"--sides: unknown {bad}; known {list(SIDES)}")
    text = args.config.strip()
    extra = json.loads(Path(text).read_text() if text.endswith(".json") else text)
    if not isinstance(extra, dict):
        raise SystemExit("--config: a JSON object of TrainConfig settings")
    sys.path.insert(0, str(BENCH))
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    for name in [s for s in args.sets.split(",") if s]:
        if name not in ("demo", "hard"):
            raise SystemExit(f"--sets: unknown {name!r}; known demo, hard")
        rows += run_set(name, args, extra)
    print(
        f"\nquality at {args.minutes:g} min ({args.clock} clock) per run, CPU ({os.cpu_count()} cores), 'after' config {extra}"
    )
    print(table(rows, args.minutes))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, default=str))


if __name__ == "__main__":
    main()
