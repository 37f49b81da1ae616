"""Subprocess entry of a training run: ``python -m workbench.runs.worker RUN_DIR [--resume]``.

Runs detached from the UI (:func:`workbench.runs.processes.start_worker` starts it in its own
session). SIGTERM asks the loop to stop at the next step (status ``cancelled``); so does a ``cancel``
file in the run folder. When ``WORKBENCH_DATABASE_URL`` and ``WORKBENCH_RUN_ID`` are set, progress
also goes to the store row through :func:`workbench.runs.queue.store_progress_callback` (imported
only then, so the trainer itself never needs the store). Several GPUs:
``torchrun --nproc-per-node N -m workbench.runs.worker RUN_DIR``.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.runs.folders import read_status
from workbench.train.config import write_json_atomic

if TYPE_CHECKING:
    from workbench.train.loop import Trainer


def _store_callback() -> tuple[Callable[[dict[str, Any]], None] | None, Callable[[], None] | None]:
    url, run_id = os.environ.get("WORKBENCH_DATABASE_URL"), os.environ.get("WORKBENCH_RUN_ID")
    if not (url and run_id) or int(os.environ.get("RANK", "0")) != 0:
        return None, None
    from workbench.runs.queue import schedule_next, store_progress_callback

    return store_progress_callback(url, int(run_id)), lambda: schedule_next(url)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workbench.runs.worker", description=__doc__)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--resume", action="store_true", help="continue from checkpoints/last.pt if present")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args(argv)
    run_dir: Path = args.run_dir
    # A cancel can come while torch imports and the data loads: note it now, act on it at the
    # first step (SIGTERM's default would kill the worker before it could say "cancelled").
    early_cancel: list[int] = []
    signal.signal(signal.SIGTERM, lambda *_: early_cancel.append(1))

    import torch

    from workbench.train.loop import Trainer

    if args.threads:
        torch.set_num_threads(args.threads)
    rank = int(os.environ.get("RANK", "0"))  # under torchrun only rank 0 reports
    callback, on_exit = _store_callback()
    status = "failed"
    try:
        trainer = Trainer(run_dir, resume=args.resume, progress_callback=callback)
        signal.signal(signal.SIGTERM, lambda *_: trainer.cancel_request.request())
        if early_cancel:
            trainer.cancel_request.request()
        if under_torchrun():
            stop_with_launcher()
        status = trainer.train()
    except Exception as exc:  # the loop already wrote status.json; cover errors before it started
        if rank == 0 and (not (run_dir / "status.json").exists() or status == "failed"):
            before = read_status(run_dir)
            # the loop's own error wins where it wrote one (under DDP it names the rank that failed first)
            error = (before.get("status") == "failed" and before.get("error")) or f"{type(exc).__name__}: {exc}"
            data = {"status": "failed", "pid": os.getpid(), "error": error, "traceback": traceback.format_exc()}
            try:
                write_json_atomic(run_dir / "status.json", {**before, **data})
                if callback is not None:
                    callback(data)
            except Exception:
                pass
        traceback.print_exc()
    finally:
        if status == "succeeded" and callback is not None:
            _evaluate_after_training(run_dir, trainer)
        if on_exit is not None:
            try:
                on_exit()
            except Exception:
                traceback.print_exc()
    # torchrun reports any non-zero exit of a rank as a crash, with a traceback in worker.log
    cancelled = 0 if under_torchrun() else 3
    return {"succeeded": 0, "cancelled": cancelled}.get(status, 1)


def under_torchrun() -> bool:
    return "TORCHELASTIC_RUN_ID" in os.environ  # set by torch.distributed.run for every rank


def stop_with_launcher() -> None:
    """Under torchrun: SIGTERM (a cancel) when the launcher dies, even by SIGKILL.

    torchrun starts each rank in its own session, so a killed launcher would otherwise leave its
    ranks training on, unseen, into the run folder. Linux only (prctl); elsewhere nothing changes.
    """
    import ctypes

    pr_set_pdeathsig = 1
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the launcher died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _evaluate_after_training(run_dir: Path, trainer: Trainer) -> None:
    """Write the evaluation report of a finished run (val split, or train without one).

    Runs ``workbench evaluate`` as a command (the services layer sits above train/, so it is not
    imported here), before the next queued run may take the device. A failed evaluation is logged
    in worker.log and leaves the run succeeded: ``workbench evaluate RUN`` can redo it.
    """
    import subprocess

    if not trainer.config.extra.get("evaluate_after", True):
        return
    url, run_id = os.environ["WORKBENCH_DATABASE_URL"], os.environ["WORKBENCH_RUN_ID"]
    workspace = run_dir.resolve().parents[2]  # <workspace>/<project>/runs/<run>
    split = "val" if (run_dir / "dataset" / "coco_val.json").exists() else "train"
    cmd = [sys.executable, "-m", "workbench.cli", "--workspace", str(workspace), "--database-url", url,
           "evaluate", run_id, "--split", split, "--device", str(trainer.device)]
    print(f"evaluating: {' '.join(cmd)}", flush=True)
    try:
        subprocess.run(cmd, stdout=sys.stdout, stderr=sys.stderr, stdin=subprocess.DEVNULL, timeout=6 * 3600, check=False)
    except (OSError, subprocess.SubprocessError):
        traceback.print_exc()


if __name__ == "__main__":
    code = main()
    if under_torchrun():
        # Under torchrun the run is over and its files are written: leave without the interpreter's
        # teardown, where gloo's background threads can abort a rank ('terminate called without an
        # active exception'), which torchrun then reports as a crash of a finished run.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
