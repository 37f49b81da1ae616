"""Team mode at scale (issue 15): a project of N images and M annotations (synthetic rows), on a real
PostgreSQL server (a throwaway one, started here as tests/integration/postgres does) and on SQLite.

(a) What each page asks the store for when it opens (the services a page calls first: the project
    with its counts, the image list, classes with annotation counts, jobs, the review queue, activity,
    the audit log, the runs), timed at N images beside the same calls on a 1,000-image project in the
    same run (the ratio). Target: each < 2 s.
(b) A annotators (threads through the services, as the UI's sessions are) each saving every
    ``--every`` s for ``--duration`` s, each on their own jobs, plus every tenth save on one image all
    of them share: p95 save latency (target < 300 ms), then every image checked row by row against
    what its last accepted save wrote: zero lost edits; a save that met a newer version must have
    been refused (ConflictError), never written over it.

Run from the repository root: .venv/bin/python bench/team_load.py [--images 100000] [--annotations 1000000]
[--annotators 10] [--duration 120] [--db sqlite,postgres]
"""

from __future__ import annotations

import argparse
import glob
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert, select, text  # noqa: E402

from workbench.domain import Category, ConflictError, Instance  # noqa: E402
from workbench.services import accounts, annotate, classes, projects, team, training  # noqa: E402
from workbench.services.workspace import Workspace, open_workspace  # noqa: E402
from workbench.store.models import AnnotationRow, ImageRow  # noqa: E402

PASSWORD = "bench password 1"


@contextmanager
def postgres() -> Iterator[str]:
    """A throwaway server on 127.0.0.1 (Debian's binaries, run as postgres when we are root)."""
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not bins:
        raise SystemExit("PostgreSQL server binaries not found (apt-get install postgresql)")
    bindir = Path(bins[-1]).parent
    tmp = Path(tempfile.mkdtemp(prefix="wb-bench-pg-"))
    as_pg = (lambda c: ["runuser", "-u", "postgres", "--", *c]) if os.geteuid() == 0 else (lambda c: c)
    if os.geteuid() == 0:
        shutil.chown(tmp, "postgres", "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run(as_pg([str(bindir / "initdb"), "-D", str(tmp / "data"), "-U", "postgres", "-A", "trust"]),
                   check=True, capture_output=True)  # fmt: skip
    subprocess.run(as_pg([str(bindir / "pg_ctl"), "-D", str(tmp / "data"), "-w", "-l", str(tmp / "log"), "-o",
                          f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1 -c max_connections=100", "start"]),
                   check=True, capture_output=True)  # fmt: skip
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(as_pg([str(bindir / "pg_ctl"), "-D", str(tmp / "data"), "-m", "fast", "stop"]),
                       capture_output=True)  # fmt: skip
        shutil.rmtree(tmp, ignore_errors=True)


def new_pg_database(server: str, name: str) -> str:
    import psycopg

    with psycopg.connect(server.replace("+psycopg", "") + "/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{server}/{name}"


def fill(ws: Workspace, slug: str, n_images: int, n_annotations: int, *, chunk: int = 20_000) -> None:
    """Synthetic rows straight into the tables (an import of real files would time the decoder)."""
    with ws.store.transaction() as s:
        pid = s.execute(text("SELECT id FROM projects WHERE slug = :s"), {"s": slug}).scalar()
        cat = s.execute(text("SELECT id FROM categories WHERE project_id = :p"), {"p": pid}).scalar()
    statuses = ("unlabeled", "in_progress", "done")
    for start in range(0, n_images, chunk):
        rows = [
            {"project_id": pid, "sha256": f"{i:064x}", "path": f"images/{i}.jpg", "original_name": f"im{i:06d}.jpg",
             "width": 640, "height": 480, "split": ("train", "val", "test")[i % 3], "status": statuses[(i // 3) % 3],
             "version": 1}
            for i in range(start, min(n_images, start + chunk))
        ]  # fmt: skip
        with ws.store.transaction() as s:
            s.execute(insert(ImageRow), rows)
    with ws.store.transaction() as s:
        ids = list(s.scalars(select(ImageRow.id).where(ImageRow.project_id == pid).order_by(ImageRow.id)))
    per = max(1, n_annotations // max(1, len(ids)))
    done = 0
    while done < n_annotations:
        rows = []
        for k in range(done, min(n_annotations, done + chunk)):
            x, y = 10 + (k % 50) * 5, 10 + (k % 40) * 5
            rows.append({"image_id": ids[(k // per) % len(ids)], "category_id": cat,
                         "segmentation": [[x, y, x + 40, y, x + 40, y + 30, x, y + 30]], "bbox": [x, y, 40, 30],
                         "area": 1200.0, "iscrowd": False, "source": "imported", "version": 1, "z_order": 0})  # fmt: skip
        with ws.store.transaction() as s:
            s.execute(insert(AnnotationRow), rows)
        done += len(rows)
    if ws.store.engine.dialect.name == "postgresql":  # fresh planner statistics, as autovacuum would
        with ws.store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def page_calls(ws: Workspace, slug: str) -> dict[str, Callable[[], object]]:
    """What each page asks for when it opens (the first, heaviest calls)."""
    return {
        "projects: list with counts": lambda: projects.list_projects(ws),
        "annotate: image list": lambda: annotate.list_images(ws, slug),
        "annotate: one image": lambda: annotate.load_image(ws, slug, first_image(ws, slug)),
        "dataset: unlabelled, one split": lambda: annotate.list_images(ws, slug, split="val", status="unlabeled"),
        "classes: annotation counts": lambda: classes.category_annotation_counts(ws, slug),
        "team: jobs per user": lambda: team.work_summary(ws, slug),
        "team: review queue": lambda: team.review_queue(ws, slug),
        "team: activity 24 h": lambda: team.activity(ws, slug),
        "team: audit log": lambda: team.audit_log(ws, slug),
        "train: runs": lambda: training.list_runs(ws, slug),
    }


_FIRST: dict[str, int] = {}


def first_image(ws: Workspace, slug: str) -> int:
    if slug not in _FIRST:
        _FIRST[slug] = annotate.list_images(ws, slug, split="train")[0].id
    return _FIRST[slug]


def setup(ws: Workspace, name: str, n_images: int, n_annotations: int, annotators: int) -> tuple[str, Workspace]:
    if not accounts.has_accounts(ws):
        accounts.add_user(ws, "boss", PASSWORD, "admin")
    boss = ws.as_user(accounts.current_account(ws, "boss"))
    slug = projects.create_project(boss, name).slug
    classes.add_category(boss, slug, Category(name="thing"))
    t0 = time.perf_counter()
    fill(ws, slug, n_images, n_annotations)
    print(f"  filled {name}: {n_images:,} images, {n_annotations:,} annotations in {time.perf_counter() - t0:.1f} s",
          flush=True)  # fmt: skip
    for a in range(annotators):
        if accounts.current_account(ws, f"ann{a}") is None:
            accounts.add_user(boss, f"ann{a}", PASSWORD, "annotator")
        team.assign_images(boss, slug, f"ann{a}", split="train", count=20)
    return slug, boss


def square(n: int, k: int) -> Instance:
    x = 5 + (n * 7 + k * 13) % 500
    return Instance("thing", polygons=((x, 10.0, x + 30.0, 10.0, x + 30.0, 40.0, x, 40.0),))


def load_test(ws: Workspace, slug: str, annotators: int, duration: float, every: float) -> dict[str, object]:
    """Annotators saving through the services; every image's final rows checked against the saves."""
    boss = ws.as_user(accounts.current_account(ws, "boss"))
    shared = first_image(boss, slug)
    team.assign_images(boss, slug, None, image_ids=[shared])  # nobody's job: saved by the admins below
    latencies: list[float] = []
    conflicts = [0]
    last_written: dict[int, tuple[int, int]] = {}  # image -> (version, number of shapes) its last save wrote
    lock = threading.Lock()
    stop = time.monotonic() + duration
    errors: list[str] = []

    def worker(a: int) -> None:
        # every tenth save goes to the shared image as an admin (annotators edit their own jobs only)
        me = ws.as_user(accounts.current_account(ws, f"ann{a}"))
        shared_as = boss
        mine = team.my_image_ids(me, slug)
        n = 0
        while time.monotonic() < stop:
            t_next = time.monotonic() + every
            on_shared = n % 10 == 9
            acting, image = (shared_as, shared) if on_shared else (me, mine[n % len(mine)])
            try:
                cur = annotate.load_image(acting, slug, image)
                shapes = [*cur.instances, square(n, a)]
                t0 = time.perf_counter()
                saved = annotate.save_changes(acting, slug, image, [shapes[-1]], expected_version=cur.version)
                dt = time.perf_counter() - t0
                with lock:
                    latencies.append(dt)
                    if last_written.get(image, (0, 0))[0] < saved.version:
                        last_written[image] = (saved.version, len(shapes))
            except ConflictError:
                with lock:
                    conflicts[0] += 1
            except Exception as exc:  # noqa: BLE001 - counted and reported, the run goes on
                errors.append(f"{type(exc).__name__}: {exc}")
            n += 1
            time.sleep(max(0.0, t_next - time.monotonic()))

    threads = [threading.Thread(target=worker, args=(a,)) for a in range(annotators)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    lost = 0
    for image, (version, count) in last_written.items():
        now = annotate.load_image(boss, slug, image)
        if now.version != version or len(now.instances) != count:
            lost += 1
    lat = sorted(latencies)
    return {
        "saves": len(lat), "conflicts refused": conflicts[0], "errors": len(errors), "first error": errors[:1],
        "p50 ms": 1000 * statistics.median(lat) if lat else None,
        "p95 ms": 1000 * lat[int(0.95 * (len(lat) - 1))] if lat else None,
        "images checked": len(last_written), "lost or overwritten": lost,
    }  # fmt: skip


def run_db(label: str, ws: Workspace, args: argparse.Namespace) -> list[str]:
    out = [f"### {label}"]
    big, _ = setup(ws, "Big", args.images, args.annotations, args.annotators)
    small, _ = setup(ws, "Small", 1_000, 10_000, args.annotators)
    boss = ws.as_user(accounts.current_account(ws, "boss"))
    out.append(f"| page call | {args.images:,} images | 1,000 images | ratio |")
    out.append("|---|---|---|---|")
    for (name, fb), (_, fs) in zip(page_calls(boss, big).items(), page_calls(boss, small).items(), strict=True):
        tb = min(timed(fb) for _ in range(3))
        ts = min(timed(fs) for _ in range(3))
        flag = "" if tb < 2.0 else " (over 2 s)"
        out.append(f"| {name} | {tb * 1000:.0f} ms{flag} | {ts * 1000:.1f} ms | {tb / max(ts, 1e-6):.0f}x |")
        print("  ", out[-1], flush=True)
    for name, slug in ((f"{args.images:,} images", big), ("1,000 images", small)):
        res = load_test(ws, slug, args.annotators, args.duration, args.every)
        p50, p95 = res["p50 ms"], res["p95 ms"]
        out.append(
            f"- saves on {name}: {res['saves']} saves, p50 {p50 or 0:.0f} ms, p95 {p95 or 0:.0f} ms"
            f"{'' if (p95 or 0) < 300 else ' (over 300 ms)'}; {res['conflicts refused']} stale saves refused, "
            f"{res['errors']} errors {res['first error'] or ''}; {res['images checked']} images checked row by row: "
            f"{res['lost or overwritten']} lost or overwritten"
        )
        print("  ", out[-1], flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=100_000)
    p.add_argument("--annotations", type=int, default=1_000_000)
    p.add_argument("--annotators", type=int, default=10)
    p.add_argument("--duration", type=float, default=120.0)
    p.add_argument("--every", type=float, default=2.0)
    p.add_argument("--db", default="postgres,sqlite")
    args = p.parse_args()
    random.seed(0)
    lines = [f"team_load: {args.images:,} images, {args.annotations:,} annotations, {args.annotators} annotators "
             f"saving every {args.every:g} s for {args.duration:g} s"]  # fmt: skip
    tmp = Path(tempfile.mkdtemp(prefix="wb-team-load-"))
    try:
        for db in args.db.split(","):
            print(f"{db}:", flush=True)
            if db == "postgres":
                with postgres() as server:
                    ws = open_workspace(tmp / "pg", database_url=new_pg_database(server, "team_load"))
                    try:
                        lines += run_db("PostgreSQL", ws, args)
                    finally:
                        ws.close()
            else:
                ws = open_workspace(tmp / "sqlite")
                try:
                    lines += run_db("SQLite", ws, args)
                finally:
                    ws.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
