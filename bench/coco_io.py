"""COCO export and import through the store, beside json.dumps / json.loads of the same dict.

A project of N images x K polygons (default 10,000 x 20 = 200,000 annotations) is put in a fresh
SQLite workspace; then we time
  export: store -> COCO dict -> file (``services.export.export_coco``), against json.dumps of that dict
  import: file -> validation -> store (``services.imports.import_coco`` onto the project's images,
          matched by file name), against json.loads of the same text.
Run: python bench/coco_io.py [--images N] [--polygons K]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

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


def timed(fn, repeat: int = 1) -> float:  # noqa: ANN001
    best = math.inf
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--polygons", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=3, help="best of N runs for each timing")
    args = ap.parse_args()
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

        dumps_s, loads_s = timed(dump, args.repeat), timed(load, args.repeat)
        with paused_gc():
            dumps_nogc_s, loads_nogc_s = timed(dump, args.repeat), timed(load, args.repeat)
        # import onto a fresh project holding the same images (matched by file name), each repeat
        targets = iter(range(args.repeat))

        def import_once() -> None:
            target = projects.create_project(ws, f"target {next(targets)}").slug
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
                            sha256=f"t{im['id']:063x}",
                            path="images/x.jpg",
                        ),
                    )
            t0 = time.perf_counter()
            imports.import_coco(ws, target, path, split="train")
            times.append(time.perf_counter() - t0)
            n_ann = projects.get_project(ws, target).num_annotations
            assert n_ann == len(obj["annotations"]), (n_ann, len(obj["annotations"]))

        times: list[float] = []
        for _ in range(args.repeat):
            import_once()
        import_s = min(times)
        ws.close()
    n = len(obj["annotations"])
    print(
        f"COCO I/O: {args.images} images x {args.polygons} polygons = {n} annotations "
        f"({len(text) / 1e6:.0f} MB JSON); python {platform.python_version()}, {platform.machine()}"
    )
    print(f"(building the store took {build_s:.1f} s)")
    print(
        f"{'work':30} {'ours s':>7} {'json s':>7} {'ratio':>6} {'json, GC paused s':>18} {'ratio':>6}   (best of {args.repeat})"
    )
    print(
        f"{'export: store -> COCO file':30} {export_s:7.2f} {dumps_s:7.2f} {export_s / dumps_s:6.2f} "
        f"{dumps_nogc_s:18.2f} {export_s / dumps_nogc_s:6.2f}   json: json.dumps + write"
    )
    print(
        f"{'import: COCO file -> store':30} {import_s:7.2f} {loads_s:7.2f} {import_s / loads_s:6.2f} "
        f"{loads_nogc_s:18.2f} {import_s / loads_nogc_s:6.2f}   json: read + json.loads"
    )


if __name__ == "__main__":
    main()
