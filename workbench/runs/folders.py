"""A run folder: what freezes a run (dataset, config, versions) and what its worker leaves there.

``<run>/dataset/coco_{train,val}.json`` (+ ``images/`` when copied), ``config.json``,
``versions.json``; the worker adds ``status.json``, ``metrics.jsonl``, ``worker.log``,
``checkpoints/`` and ``model.pt``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from workbench.domain import AnnotatedImage, Dataset, ImageRecord, NotFoundError
from workbench.train.config import TrainConfig, write_json_atomic

LOG_NAME = "worker.log"


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": sys.version.split()[0]}
    for name in ("torch", "torchvision", "albumentations", "pycocotools", "numpy", "pillow", "workbench"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def config_dict(config: TrainConfig | Mapping[str, Any]) -> dict[str, Any]:
    """The JSON form of a config, given as a TrainConfig or already as its dict (a config.json)."""
    return config.to_dict() if isinstance(config, TrainConfig) else dict(config)


def _frozen_items(ds: Dataset, project_dir: Path | None, images_out: Path | None) -> list[AnnotatedImage]:
    """Items whose file_name points at the image: copied into the run (name = sha or id) or absolute."""
    items = []
    for n, item in enumerate(ds.items):
        rec = item.image
        src = Path(rec.path) if rec.path else Path(rec.file_name)
        if not src.is_absolute() and project_dir is not None:
            src = project_dir / src
        if not src.exists():
            raise NotFoundError(f"image {rec.file_name}: file {src} is missing, cannot freeze the run")
        if images_out is not None:
            name = f"{rec.sha256 or rec.id or n}{src.suffix.lower()}"
            dest = images_out / name
            if not dest.exists():
                shutil.copy2(src, dest)
            file_name = name
        else:
            file_name = str(src.resolve())
        new = ImageRecord(file_name=file_name, width=rec.width, height=rec.height, id=rec.id, sha256=rec.sha256)
        items.append(AnnotatedImage(image=new, instances=item.instances))
    return items


def write_run_folder(
    run_dir: Path,
    train: Dataset,
    val: Dataset | None,
    config: TrainConfig | Mapping[str, Any],
    *,
    project_dir: Path | None = None,
    copy_images: bool = False,
) -> Path:
    """Freeze a run: dataset/coco_{train,val}.json (+ images/ when copied), config.json, versions.json."""
    from workbench.formats.coco.write import dataset_to_coco

    run_dir = Path(run_dir)
    data_dir = run_dir / "dataset"
    images_out = data_dir / "images" if copy_images else None
    (images_out or data_dir).mkdir(parents=True, exist_ok=True)
    for split, ds in (("train", train), ("val", val)):
        if ds is None:
            continue
        frozen = Dataset(categories=list(ds.categories), items=_frozen_items(ds, project_dir, images_out))
        write_json_atomic(data_dir / f"coco_{split}.json", dataset_to_coco(frozen))
    write_json_atomic(run_dir / "config.json", config_dict(config))
    write_json_atomic(run_dir / "versions.json", package_versions())
    return run_dir


def read_status(run_dir: Path) -> dict[str, Any]:
    """status.json as written by the worker; {} while there is none (or it cannot be read)."""
    try:
        return json.loads((Path(run_dir) / "status.json").read_text())
    except (OSError, ValueError):
        return {}


def tail_log(run_dir: Path, lines: int = 50) -> str:
    path = Path(run_dir) / LOG_NAME
    if not path.exists():
        return ""
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(size - 64 * 1024, 0))
        text = fh.read().decode("utf-8", "replace")
    return "\n".join(text.splitlines()[-lines:])


def has_checkpoint(run_dir: Path) -> bool:
    return (Path(run_dir) / "checkpoints" / "last.pt").exists()
