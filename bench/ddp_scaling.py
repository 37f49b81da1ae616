"""DDP scaling: our trainer over N ranks (torchrun) against the same trainer in one process.

Same model, per-rank batch, image size and data; each rank does the work the single process does,
so perfect scaling is N x the single process's images/s. The figure is images/s (all ranks) over
the steps after warm-up, median of the logged windows, best of two runs taken in turn.

    python bench/ddp_scaling.py                                 # CPU: N gloo processes, 1 thread each
    python bench/ddp_scaling.py --device cuda --gpus 4 --backbone resnet50_fpn_v2 --size 800x600 --batch 4 --amp
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def run_once(args: argparse.Namespace, ranks: int, root: Path) -> float:
    from workbench.train.config import TrainConfig
    from workbench.train.hooks import read_metrics
    from workbench.train.synthetic import write_shapes_run

    w, h = (int(v) for v in args.size.split("x"))
    run = root / f"r{ranks}-{len(list(root.iterdir()))}"
    steps = args.warmup + args.iters
    cfg = TrainConfig(
        backbone=args.backbone, weights="none", epochs=1000, batch_size=args.batch, num_workers=args.workers,
        warmup_iters=1, log_every=args.log_every, augmentation="none", eval_every=10**6,
        early_stopping_patience=None, max_iters=steps, device=args.device, amp=args.amp, gpus=ranks,
    )
    # every rank gets as many images per epoch as the single process has
    write_shapes_run(run, cfg, n_train=args.images * ranks, size_wh=(w, h))
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "PYTHONPATH": str(ROOT)}
    worker = ["-m", "workbench.runs.worker", str(run), "--threads", str(args.threads)]
    cmd = [sys.executable, *worker] if ranks == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={ranks}", *worker]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    rows = [r for r in read_metrics(run) if r["type"] == "train" and r["step"] > args.warmup]
    return statistics.median(r["images_per_s"] for r in rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gpus", type=int, default=2, help="ranks of the DDP run")
    p.add_argument("--device", default="cpu")
    p.add_argument("--backbone", default="tiny")
    p.add_argument("--size", default="256x192", help="image size WxH of the synthetic data")
    p.add_argument("--images", type=int, default=16, help="training images per rank")
    p.add_argument("--batch", type=int, default=2, help="batch per rank")
    p.add_argument("--iters", type=int, default=30, help="measured steps after warm-up")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--log-every", type=int, default=5)
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads per process")
    p.add_argument("--amp", action="store_true")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="wb-ddp-bench-") as tmp:
        root = Path(tmp)
        single, multi = [], []
        for _ in range(2):  # in turn, best of two (the machine may be shared)
            single.append(run_once(args, 1, root))
            multi.append(run_once(args, args.gpus, root))
    one, many = max(single), max(multi)
    result = {
        "device": args.device, "ranks": args.gpus, "backbone": args.backbone, "size": args.size,
        "batch_per_rank": args.batch, "threads_per_process": args.threads, "amp": args.amp,
        "one_process_img_s": round(one, 2), "ddp_img_s": round(many, 2),
        "speedup": round(many / one, 2), "scaling_efficiency": round(many / one / args.gpus, 2),
    }
    print(f"ours, {args.gpus} ranks (DDP): {many:.2f} img/s | ours, 1 process: {one:.2f} img/s | "
          f"speed-up {many / one:.2f}x (efficiency {many / one / args.gpus:.0%})")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
