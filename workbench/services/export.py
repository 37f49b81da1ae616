"""Export use cases: COCO (per split, optionally with images) and per-class label maps."""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path

from workbench.domain import AnnotatedImage, Dataset, WorkbenchError
from workbench.services.workspace import Workspace
from workbench.store import repo

Progress = Callable[[int, int], None] | None
UNASSIGNED = "unassigned"


def project_dataset(ws: Workspace, slug: str, *, splits: Iterable[str] | None = None) -> Dataset:
    """The project as a Dataset with export-ready ids: classes 1..N in their order, store ids elsewhere."""
    wanted = None if splits is None else [None if x == UNASSIGNED else x for x in splits]
    with ws.store.transaction() as s:
        ds = repo.load_dataset(s, repo.project_id(s, slug), splits=wanted)
    ds.categories = [replace(c, id=i) for i, c in enumerate(ds.categories, 1)]
    return ds


def _by_split(ds: Dataset) -> dict[str, Dataset]:
    parts: dict[str, Dataset] = {}
    for item in ds.items:
        key = item.image.split or UNASSIGNED
        parts.setdefault(key, Dataset(categories=ds.categories)).items.append(item)
    return parts


def _unique_names(items: list[AnnotatedImage], stored_suffix: bool) -> list[str]:
    """File names inside an export folder: the original name, made unique with the image id."""
    out, seen = [], set()
    for item in items:
        name = item.image.file_name.replace("\\", "/").lstrip("/")
        if stored_suffix and item.image.path:
            name = str(Path(name).with_suffix(Path(item.image.path).suffix))
        if name in seen:
            p = Path(name)
            name = str(p.with_name(f"{p.stem}_{item.image.id}{p.suffix}"))
        seen.add(name)
        out.append(name)
    return out


def export_coco(
    ws: Workspace,
    slug: str,
    out_dir: Path | str,
    *,
    splits: Iterable[str] | None = None,
    copy_images: bool = False,
    progress: Progress = None,
) -> list[Path]:
    """Write ``annotations/instances_<split>.json`` (and ``images/<split>/`` with ``copy_images``)."""
    from workbench.formats.coco import dataset_to_coco, save_coco

    ds = project_dataset(ws, slug, splits=splits)
    if not ds.items:
        raise WorkbenchError(f"project {slug!r} has no images to export")
    out_dir = Path(out_dir)
    project_dir = ws.project_dir(slug)
    written: list[Path] = []
    done, total = 0, len(ds.items)
    for split, part in sorted(_by_split(ds).items()):
        names = _unique_names(part.items, stored_suffix=copy_images)
        part.items = [
            AnnotatedImage(image=replace(it.image, file_name=n), instances=it.instances)
            for it, n in zip(part.items, names, strict=True)
        ]
        if copy_images:
            img_dir = out_dir / "images" / split
            for item in part.items:
                dst = img_dir / item.image.file_name
                dst.parent.mkdir(parents=True, exist_ok=True)
                tmp = dst.with_name(dst.name + ".tmp")
                shutil.copyfile(project_dir / (item.image.path or ""), tmp)
                os.replace(tmp, dst)
                done += 1
                if progress:
                    progress(done, total)
        path = out_dir / "annotations" / f"instances_{split}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        save_coco(
            dataset_to_coco(part, info={"description": f"workbench export of {slug}", "split": split}), path
        )
        written.append(path)
    return written


def _zip_folder(folder: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                zf.write(p, p.relative_to(folder).as_posix())
    return buf.getvalue()


def _require_annotations(ws: Workspace, slug: str) -> None:
    with ws.store.transaction() as s:
        info = repo.get_project(s, slug)
    if info.num_annotations == 0:
        raise WorkbenchError(f"project {slug!r} has no annotations to export; annotate or import some first")


def export_coco_zip(ws: Workspace, slug: str, *, splits: Iterable[str] | None = None) -> bytes:
    _require_annotations(ws, slug)
    with tempfile.TemporaryDirectory() as tmp:
        export_coco(ws, slug, Path(tmp), splits=splits, copy_images=True)
        return _zip_folder(Path(tmp))


def export_labelmaps(
    ws: Workspace,
    slug: str,
    out_dir: Path | str,
    *,
    layout: str = "png",
    splits: Iterable[str] | None = None,
    heatmap_sigma: float | None = 2.0,
    progress: Progress = None,
) -> Path:
    """Per-class binary maps (PNG per class or .npz), the semantic index map and keypoint heatmaps."""
    from workbench.formats.labelmap_export import export_labelmaps as write

    _require_annotations(ws, slug)
    ds = project_dataset(ws, slug, splits=splits)
    return write(ds, Path(out_dir), layout=layout, heatmap_sigma=heatmap_sigma, progress=progress)  # type: ignore[arg-type]


def export_labelmaps_zip(ws: Workspace, slug: str, *, layout: str = "png") -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        out = export_labelmaps(ws, slug, Path(tmp) / "labelmaps", layout=layout)
        return _zip_folder(out)
