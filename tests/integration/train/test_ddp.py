"""DistributedDataParallel under torchrun, on CPU processes (gloo): the multi-GPU code path minus NCCL.

Each test starts real processes through ``torch.distributed.run``; the runs are tiny (96x64 images,
the small backbone, one thread per rank).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from workbench.runs import processes
from workbench.runs import queue as run_queue
from workbench.train.hooks import read_metrics
from workbench.train.sampler import GroupedBatchSampler

REPO = Path(__file__).resolve().parents[3]
PROBE = Path(__file__).with_name("ddp_probe.py")
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone"]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}


def _probe(run: Path, out: Path, ranks: int = 2, *extra: str) -> list[dict]:
    out.mkdir(exist_ok=True)
    cmd = [*TORCHRUN, f"--nproc-per-node={ranks}", str(PROBE), str(run), str(out), *extra]
    proc = subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return [json.loads((out / f"rank{r}.json").read_text()) for r in range(ranks)]


def _status(run: Path) -> dict:
    try:
        return json.loads((run / "status.json").read_text())
    except (OSError, ValueError):
        return {}


def _wait(pred, timeout: float = 120.0) -> bool:  # noqa: ANN001
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.2)
    return False


def test_two_ranks_split_the_data_and_end_with_the_same_weights(make_run, tmp_path: Path) -> None:
    run = make_run(n_train=8, n_val=2, empty_every=4, epochs=2, batch_size=1, eval_every=1, device="cpu", gpus=2)
    r0, r1 = _probe(run, tmp_path / "probe")
    assert r0["status"] == r1["status"] == "succeeded"
    # 8 images, batch 1, two ranks: 4 steps each per epoch, disjoint, together every image once
    for epoch in range(2):
        a, b = r0["steps"][epoch * 4 : epoch * 4 + 4], r1["steps"][epoch * 4 : epoch * 4 + 4]
        ids_a, ids_b = {i for s in a for i in s}, {i for s in b for i in s}
        assert not ids_a & ids_b and len(ids_a | ids_b) == 8
    assert len(r0["steps"]) == len(r1["steps"]) == 8
    # gradients are all-reduced: both ranks hold the same weights after training
    assert r0["checksum"] == pytest.approx(r1["checksum"], rel=1e-6)
    # only rank 0 writes: one metrics line per step, the model file, the checkpoints
    status = _status(run)
    assert status["status"] == "succeeded" and status["step"] == status["total_steps"] == 8
    assert [r["step"] for r in read_metrics(run) if r["type"] == "train"] == list(range(1, 9))
    assert (run / "model.pt").exists() and (run / "checkpoints" / "last.pt").exists()


def test_early_stopping_on_rank_0_stops_every_rank(make_run, tmp_path: Path) -> None:
    # lr ~ 0: validation AP never improves, so patience 1 stops the run well before its ten epochs
    # (patience counts once the AP is above 0, or from half-way; the exact epoch depends on the AP)
    run = make_run(n_train=4, n_val=2, epochs=10, eval_every=1, lr=1e-12, early_stopping_patience=1, device="cpu")
    r0, r1 = _probe(run, tmp_path / "probe")
    assert r0["status"] == r1["status"] == "succeeded"
    status = _status(run)
    assert status["status"] == "succeeded" and 2 <= status["epoch"] < 10
    # one step per epoch and rank (4 images, batch 2, 2 ranks): both ranks stopped at the same epoch
    assert len(r0["steps"]) == len(r1["steps"]) == status["epoch"]


def test_sigterm_to_rank_0_cancels_every_rank(make_run) -> None:
    """What ``workbench runs cancel`` does: SIGTERM to the pid in status.json (rank 0)."""
    run = make_run(n_train=8, epochs=50, batch_size=1, device="cpu", gpus=2)
    proc = processes.start_worker(run, gpus=2, threads=1, env=_env())
    try:
        assert _wait(lambda: _status(run).get("step", 0) >= 2), (run / "worker.log").read_text()[-3000:]
        os.kill(int(_status(run)["pid"]), signal.SIGTERM)
        proc.wait(120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    status, log = _status(run), (run / "worker.log").read_text()
    assert status["status"] == "cancelled", log[-3000:]
    assert status["step"] < status["total_steps"]
    # both ranks left at the same step boundary: no rank died waiting for the other's gradients
    assert "Traceback" not in log, log[-3000:]


def _children(pid: int) -> list[int]:
    return [int(d.name) for d in Path("/proc").iterdir() if d.name.isdigit() and processes.parent_pid(int(d.name)) == pid]


def test_kill_9_then_resume_under_torchrun_continues_from_the_checkpoint(make_run, tmp_path: Path) -> None:
    run = make_run(n_train=8, epochs=2, batch_size=1, checkpoint_every_iters=1, device="cpu", gpus=2)
    proc = processes.start_worker(run, gpus=2, threads=1, env=_env())
    try:
        assert _wait(lambda: _status(run).get("step", 0) >= 2), (run / "worker.log").read_text()[-3000:]
        ranks = _children(proc.pid)  # torchrun starts each rank in a session of its own
        assert len(ranks) == 2
        for pid in [*ranks, proc.pid]:  # a crash: every process gone at once
            os.kill(pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    saved = torch.load(run / "checkpoints" / "last.pt", weights_only=True)["state"]
    assert 1 <= saved["global_step"] < 8
    r0, r1 = _probe(run, tmp_path / "probe", 2, "--resume")
    assert r0["status"] == r1["status"] == "succeeded"
    assert len(r0["steps"]) == len(r1["steps"]) == 8 - saved["global_step"]
    status = _status(run)
    assert status["resumed_from_step"] == saved["global_step"] and status["step"] == 8


@pytest.mark.parametrize(("n_images", "batch", "world"), [(7, 2, 2), (2, 2, 4), (9, 1, 4), (1, 4, 3)])
def test_sampler_gives_every_rank_the_same_number_of_batches_covering_the_data(n_images, batch, world) -> None:
    ratios = [1.5 if i % 2 else 0.7 for i in range(n_images)]
    per_rank = []
    for rank in range(world):
        s = GroupedBatchSampler(ratios, batch, seed=5, rank=rank, world_size=world)
        s.set_epoch(3)
        per_rank.append([[i for i, _ in b] for b in s])
    assert len({len(b) for b in per_rank}) == 1 and len(per_rank[0]) >= 1
    assert {i for batches in per_rank for b in batches for i in b} == set(range(n_images))


def test_ranks_stop_as_cancelled_when_the_launcher_is_killed(make_run) -> None:
    run = make_run(n_train=8, epochs=50, batch_size=1, device="cpu", gpus=2)
    proc = processes.start_worker(run, gpus=2, threads=1, env=_env())
    ranks: list[int] = []
    try:
        assert _wait(lambda: _status(run).get("step", 0) >= 2), (run / "worker.log").read_text()[-3000:]
        ranks = _children(proc.pid)
        assert len(ranks) == 2
        os.kill(proc.pid, signal.SIGKILL)  # torchrun alone
        proc.wait(30)
        assert _wait(lambda: not any(processes.pid_alive(p) for p in ranks), 120), "ranks outlived their launcher"
    finally:
        for pid in ranks:
            if processes.pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
    assert _status(run)["status"] == "cancelled"


def test_cli_train_gpus_2_on_the_cpu_reports_rank_0_progress_to_the_store(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    from workbench.cli import main

    ws = str(tmp_path / "ws")
    assert main(["--workspace", ws, "demo", "--images", "6"]) == 0
    args = ["--workspace", ws, "train", "demo-shapes", "--epochs", "1", "--max-iters", "2", "--gpus", "2",
            "--device", "cpu", "--wait"]
    assert main(args) == 0
    assert "run 1 succeeded" in capsys.readouterr().out
    assert main(["--workspace", ws, "runs", "show", "1"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["status"] == "succeeded" and shown["progress"]["step"] == 2
    assert shown["config"]["gpus"] == 2
    log = (Path(shown["run_dir"]) / "worker.log").read_text()
    assert "torch.distributed" in log or "Traceback" not in log


@pytest.mark.parametrize("what", ["gpus", "index"])
def test_more_gpus_than_the_machine_has_is_refused_before_a_run_is_made(tmp_path: Path, capsys, what) -> None:  # noqa: ANN001
    from workbench.cli import main

    ws = str(tmp_path / "ws")
    assert main(["--workspace", ws, "demo", "--images", "4"]) == 0
    capsys.readouterr()
    have = torch.cuda.device_count() if torch.cuda.is_available() else 0
    asked = ["--gpus", str(max(have + 1, 2)), "--device", "cuda"] if what == "gpus" else ["--device", f"cuda:{have}"]
    assert main(["--workspace", ws, "train", "demo-shapes", *asked]) != 0
    assert f"this machine has {have} CUDA device(s)" in capsys.readouterr().err
    runs = Path(ws) / "demo-shapes" / "runs"
    assert not runs.exists() or not any(runs.iterdir())
    assert main(["--workspace", ws, "runs", "list", "demo-shapes"]) == 0
    assert "queued" not in capsys.readouterr().out


def test_a_rank_that_fails_first_is_named_in_the_run_error(make_run, tmp_path: Path) -> None:
    run = make_run(n_train=8, epochs=2, batch_size=1, device="cpu", gpus=2)
    out = tmp_path / "probe"
    out.mkdir()
    cmd = [*TORCHRUN, "--nproc-per-node=2", str(PROBE), str(run), str(out)]
    env = {**_env(), "PROBE_FAIL": "1:2"}  # rank 1 raises MemoryError at its second step
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    status = _status(run)
    assert status["status"] == "failed"
    # the cause (rank 1), not only rank 0's broken connection
    assert status["error"].startswith("rank 1: MemoryError: rank 1 ran out of memory"), status["error"]


@pytest.fixture
def store_and_project(tmp_path: Path):  # noqa: ANN201
    from workbench.store import projects as project_repo
    from workbench.store.engine import open_store, sqlite_url

    store = open_store(sqlite_url(tmp_path / "workbench.db"))
    with store.transaction() as s:
        pid = project_repo.create_project(s, "Shapes").id
    yield store, pid
    store.dispose()


@pytest.mark.parametrize("how", ["runs-cancel", "sigterm-to-torchrun"])
def test_cancelling_a_ddp_run_with_loader_workers_ends_cancelled(make_run, store_and_project, how) -> None:  # noqa: ANN001
    """Loader workers live in each rank's process group, which torchrun signals as a whole."""
    from workbench.store import runs as run_repo

    store, project_id = store_and_project
    run = make_run(n_train=8, epochs=50, batch_size=1, device="cpu", gpus=2, num_workers=1)
    cfg = json.loads((run / "config.json").read_text())
    info = run_queue.submit_run(store, project_id, "ddp", run, cfg, device="cpu", threads=1)
    procs: list[int] = []
    try:
        assert _wait(lambda: _status(run).get("step", 0) >= 2), (run / "worker.log").read_text()[-3000:]
        ranks = _children(info.pid)
        procs = [info.pid, *ranks, *(c for r in ranks for c in _children(r))]  # launcher, ranks, loader workers
        assert len(procs) == 5, procs
        if how == "runs-cancel":
            processes.cancel_run(store, info.id)
        else:
            os.kill(info.pid, signal.SIGTERM)
        done = run_queue.wait_for(store, info.id, run_repo.FINAL_STATUSES, timeout_s=120)
        # and every process of the run ends (loader workers that ignore SIGTERM must not keep ranks alive)
        assert _wait(lambda: not any(processes.pid_alive(p) for p in procs), 90), [p for p in procs if processes.pid_alive(p)]
    finally:
        for pid in procs:
            if processes.pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
    log = (run / "worker.log").read_text()
    assert done.status == "cancelled", log[-3000:]
    if how == "runs-cancel":  # rank 0 told, not the launcher: every process ends quietly
        assert "Traceback" not in log, log[-3000:]
