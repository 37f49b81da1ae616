"""COCO export and import through the store, beside the floors and the peers doing the same work.

A project of N images x K polygons (default 10,000 x 20 = 200,000 annotations) is put in a fresh
SQLite workspace; then we time
  export: store -> COCO dict -> file (``services.export.export_coco``), against json.dumps and
          orjson.dumps of that dict (+ write);
  import: file -> validation -> store (``services.imports.import_coco`` onto the project's images,
          matched by file name), against json.loads and orjson.loads of the same file, the floor
          orjson.loads + row insertion (the same annotation rows put in the store by the bulk insert,
          no validation), pycocotools' ``COCO(file)`` (json.load + index, no validation, no store)
          and datumaro's ``Dataset.import_from(folder, "coco_instances")`` (every item and annotation
          read), where a Python with datumaro is given (``--datumaro-python``: run in its own venv,
          never a product dependency).
Run: python bench/coco_io.py [--images N] [--polygons K] [--datumaro-python /tmp/peer-venv-coco/bin/python] [--cpu]

``--cpu`` times this process's CPU time instead of the wall clock, for a machine shared with other
work (their load then moves neither side); datumaro's child still reports its own wall time.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workbench.domain import ImageRecord  # noqa: E402
from workbench.services import export, imports, projects  # noqa: E402
from workbench.services.workspace import open_workspace  # noqa: E402
from workbench.store import annotations as annotation_repo  # noqa: E402
from workbench.store import categories as category_repo  # noqa: E402
from workbench.store import images as image_repo  # noqa: E402
from workbench.store import projects as project_repo  # noqa: E402
from workbench.utils.gc import paused_gc  # noqa: E402


def build_project(ws, n_images: int, n_polys: int, seed: int = 0) -> str:  # noqa: ANN001
    """Rows straight into the store (no image files are needed to export annotations)."""
    from workbench.domain import Category

    rng = np.random.default_rng(seed)
    slug = projects.create_project(ws, "bench").slug
    with ws.store.transaction() as s:
        pid = project_repo.project_id(s, slug)
        cat_ids = [category_repo.add_category(s, pid, Category(name=f"class{k}")).id for k in range(8)]
        rows = []
        for i in range(n_images):
            image_id = image_repo.add_image(
                s,
                pid,
                ImageRecord(
                    file_name=f"img_{i:06d}.jpg",
                    width=640,
                    height=480,
                    sha256=f"{i:064x}",
                    path=f"images/{i}.jpg",
                    split="train",
                    status="done",
                ),
            )
            cx = rng.uniform(40, 600, n_polys)
            cy = rng.uniform(40, 440, n_polys)
            r = rng.uniform(5, 35, n_polys)
            for k in range(n_polys):
                ang = np.linspace(0, 2 * math.pi, 8, endpoint=False)
                poly = (
                    np.stack([cx[k] + r[k] * np.cos(ang), cy[k] + r[k] * np.sin(ang)], 1)
                    .round(2)
                    .ravel()
                    .tolist()
                )
                xs, ys = poly[0::2], poly[1::2]
                rows.append(
                    {
                        "image_id": image_id,
                        "category_id": cat_ids[k % 8],
                        "segmentation": [poly],
                        "keypoints": None,
                        "bbox": [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)],
                        "area": float(2 * r[k] ** 2 * math.sin(2 * math.pi / 8) * 4),
                        "iscrowd": False,
                        "source": "manual",
                        "score": None,
                        "attributes": None,
                    }
                )
        annotation_repo.insert_instances(s, rows)
    return slug


clock = time.perf_counter
"""What every figure of this process is timed with (``--cpu``: ``time.process_time``)."""


def timed(fn, repeat: int = 1) -> float:  # noqa: ANN001
    best = math.inf
    for _ in range(repeat):
        t = clock()
        fn()
        best = min(best, clock() - t)
    return best


_DATUMARO = """
import sys, time
from datumaro.components.dataset import Dataset
t = time.perf_counter()
ds = Dataset.import_from(sys.argv[1], "coco_instances")
n = sum(len(item.annotations) for item in ds)
print(time.perf_counter() - t, n)
"""


def datumaro_import(python: str, folder: Path, repeat: int) -> float | None:
    """Best of ``repeat`` datumaro imports of the export folder, timed inside the child (its own
    import of datumaro not counted); None where that Python has no datumaro."""
    (folder / "images" / "train").mkdir(parents=True, exist_ok=True)  # datumaro wants the folder
    best = math.inf
    for _ in range(repeat):
        proc = subprocess.run([python, "-c", _DATUMARO, str(folder)], capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"(datumaro not run: {proc.stderr.strip().splitlines()[-1:]})")
            return None
        best = min(best, float(proc.stdout.split()[-2]))
    return best


def pycocotools_load(path: Path) -> None:
    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):
        COCO(str(path))


def add_target_images(ws, obj: dict, name: str) -> str:  # noqa: ANN001
    """A fresh project holding the file's images (rows only), for an import to match by file name."""
    target = projects.create_project(ws, name).slug
    with ws.store.transaction() as s:
        pid = project_repo.project_id(s, target)
        for im in obj["images"]:
            image_repo.add_image(
                s,
                pid,
                ImageRecord(
                    file_name=im["file_name"],
                    width=im["width"],
                    height=im["height"],
                    sha256=f"{name[:8]}{im['id']:056x}",
                    path="images/x.jpg",
                ),
            )
    return target


def insertion_floor(ws, obj: dict, path: Path, name: str) -> float:  # noqa: ANN001
    """orjson.loads of the file + the bulk insert of its annotations as rows (no validation at all)."""
    from workbench.domain import Category

    target = add_target_images(ws, obj, name)
    with ws.store.transaction() as s:
        pid = project_repo.project_id(s, target)
        ids = {im.file_name: im.id for im in image_repo.list_images(s, pid)}
        cats = {c["id"]: category_repo.add_category(s, pid, Category(name=c["name"])).id for c in obj["categories"]}
    t = clock()
    with paused_gc():
        data = orjson.loads(path.read_bytes())
        image_ids = {im["id"]: ids[im["file_name"]] for im in data["images"]}
        rows = [
            {
                "image_id": image_ids[a["image_id"]], "category_id": cats[a["category_id"]],
                "segmentation": a["segmentation"], "keypoints": a.get("keypoints"), "bbox": a["bbox"],
                "area": a["area"], "iscrowd": bool(a["iscrowd"]), "source": "imported", "score": None,
                "attributes": a.get("attributes"),
            }
            for a in data["annotations"]
        ]
        with ws.store.transaction() as s:
            annotation_repo.insert_instances(s, rows)
    return clock() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--polygons", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=3, help="best of N runs for each timing")
    ap.add_argument(
        "--datumaro-python",
        default=os.environ.get("DATUMARO_PYTHON", "/tmp/peer-venv-coco/bin/python"),
        help="a Python with datumaro installed (its own venv); skipped where absent",
    )
    ap.add_argument("--cpu", action="store_true", help="time process CPU time, not the wall clock")
    args = ap.parse_args()
    global clock
    if args.cpu:
        clock = time.process_time
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        ws = open_workspace(tmp_path / "ws")
        t = time.perf_counter()
        slug = build_project(ws, args.images, args.polygons)
        build_s = time.perf_counter() - t
        out = tmp_path / "export"
        export_s = timed(lambda: export.export_coco(ws, slug, out), args.repeat)
        path = out / "annotations" / "instances_train.json"
        text = path.read_text()
        obj = json.loads(text)

        # floors: json as anyone calls it (cyclic GC on), and with the GC paused as our code runs
        def dump() -> None:
            path.with_name("floor.json").write_text(json.dumps(obj, separators=(",", ":")))

        def load() -> None:
            json.loads(path.read_text())

        def odump() -> None:
            path.with_name("floor.json").write_bytes(orjson.dumps(obj))

        def oload() -> None:
            orjson.loads(path.read_bytes())

        dumps_s, loads_s = timed(dump, args.repeat), timed(load, args.repeat)
        odumps_s, oloads_s = timed(odump, args.repeat), timed(oload, args.repeat)
        path.with_name("floor.json").unlink()
        with paused_gc():
            dumps_nogc_s, loads_nogc_s = timed(dump, args.repeat), timed(load, args.repeat)
        floor_s = min(insertion_floor(ws, obj, path, f"floor {k}") for k in range(args.repeat))
        pycoco_s = timed(lambda: pycocotools_load(path), args.repeat)
        datumaro_s = None
        if Path(args.datumaro_python).exists():
            datumaro_s = datumaro_import(args.datumaro_python, out, args.repeat)

        # import onto a fresh project holding the same images (matched by file name), each repeat
        times: list[float] = []
        for k in range(args.repeat):
            target = add_target_images(ws, obj, f"target {k}")
            t0 = clock()
            imports.import_coco(ws, target, path, split="train")
            times.append(clock() - t0)
            n_ann = projects.get_project(ws, target).num_annotations
            assert n_ann == len(obj["annotations"]), (n_ann, len(obj["annotations"]))
        import_s = min(times)
        ws.close()
    n = len(obj["annotations"])
    print(
        f"COCO I/O: {args.images} images x {args.polygons} polygons = {n} annotations "
        f"({len(text) / 1e6:.0f} MB JSON); python {platform.python_version()}, {platform.machine()}, "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    what = "process CPU time" if args.cpu else "wall clock"
    print(f"(building the store took {build_s:.1f} s; best of {args.repeat} for every figure; {what})")
    print(f"{'work':44} {'s':>7} {'ours / it':>10}")
    rows = [
        ("export: store -> COCO file (ours)", export_s, "export"),
        ("  json.dumps + write", dumps_s, "export"),
        ("  json.dumps + write, GC paused", dumps_nogc_s, "export"),
        ("  orjson.dumps + write", odumps_s, "export"),
        ("import: COCO file -> store (ours)", import_s, "import"),
        ("  json.loads (read + parse)", loads_s, "import"),
        ("  json.loads, GC paused", loads_nogc_s, "import"),
        ("  orjson.loads (read + parse)", oloads_s, "import"),
        ("  floor: orjson.loads + row insertion", floor_s, "import"),
        ("  pycocotools COCO(file) (no validation)", pycoco_s, "import"),
    ]
    if datumaro_s is not None:
        rows.append(("  datumaro import_from + read all", datumaro_s, "import"))
    for label, secs, kind in rows:
        ours = export_s if kind == "export" else import_s
        ratio = "" if label.endswith("(ours)") else f"{ours / secs:10.2f}"
        print(f"{label:44} {secs:7.2f} {ratio:>10}")


if __name__ == "__main__":
    main()
