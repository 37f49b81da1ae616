"""Export use cases: COCO (per split, optionally with images) and per-class label maps."""

from __future__ import annotations

import io
import shutil
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from workbench.domain import SPLITS, Dataset, ImageRecord, Progress, ValidationError, WorkbenchError
from workbench.services.permissions import requires
from workbench.services.workspace import Workspace
from workbench.store import annotations as annotation_repo
from workbench.store import categories as category_repo
from workbench.store import datasets as dataset_repo
from workbench.store import images as image_repo
from workbench.store import projects as project_repo
from workbench.utils.gc import paused_gc
from workbench.utils.staged import staged_folder

UNASSIGNED = "unassigned"


def _split_keys(splits: Iterable[str] | None) -> set[str | None] | None:
    """Split names as stored (None for unassigned); a name that is no split is refused, not read
    as a split without images (a typo gave an empty export)."""
    if splits is None:
        return None
    wanted = list(splits)
    for x in wanted:
        if x not in (*SPLITS, UNASSIGNED):
            raise ValidationError(f"unknown split {x!r}; splits are {', '.join((*SPLITS, UNASSIGNED))}")
    return {None if x == UNASSIGNED else x for x in wanted}


def _require_images_in_splits(ws: Workspace, slug: str, splits: Iterable[str] | None) -> None:
    """Refuse splits that hold no image between them (it gave an empty export), saying what each
    split holds so that the user sees where the images are. Of several named splits, an empty one
    is fine while another has images: the export holds those."""
    if splits is None:
        return
    wanted = list(dict.fromkeys(splits))
    _split_keys(wanted)
    with ws.store.transaction() as s:
        counts = project_repo.get_project(s, slug).split_counts or {}
    empty = [x for x in wanted if not counts.get(x)]
    if wanted and len(empty) == len(wanted):
        held = ", ".join(f"{x} {counts.get(x, 0)}" for x in (*SPLITS, UNASSIGNED))
        names = " and ".join(repr(x) for x in empty)
        raise WorkbenchError(
            f"project {slug!r}: {'split' if len(empty) == 1 else 'splits'} {names} "
            f"{'has' if len(empty) == 1 else 'have'} no images to export "
            f"(images per split: {held}); assign splits (`workbench split`, or the Dataset page) or choose another split"
        )


@requires("project.read")
def project_dataset(ws: Workspace, slug: str, *, splits: Iterable[str] | None = None) -> Dataset:
    """The project as a Dataset with export-ready ids: classes 1..N in their order (ignore classes
    after them), store ids elsewhere."""
    wanted = _split_keys(splits)
    with ws.store.transaction() as s:
        ds = dataset_repo.load_dataset(s, project_repo.project_id(s, slug), splits=wanted)
    # the COCO export's numbering (ignore classes left out of 1..N), so that label maps' classes.json
    # and a run's frozen COCO give every class the id the exported COCO file gives it
    ids = iter(range(1, len(ds.categories) + 1))
    numbered = {c.name: next(ids) for c in ds.categories if not c.is_ignore}
    numbered.update({c.name: next(ids) for c in ds.categories if c.is_ignore})
    ds.categories = [replace(c, id=numbered[c.name]) for c in ds.categories]
    return ds


def _safe_rel_name(name: str, image_id: int | None) -> str:
    """A relative path that stays inside the export folder: no '..', '.', empty or absolute parts."""
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".", "..")]
    return "/".join(parts) or f"image_{image_id}"


def _unique_names(images: list[ImageRecord], stored_suffix: bool) -> list[str]:
    """File names inside an export folder: the original name, made unique with the image id.

    With ``stored_suffix`` (images are copied) the names become files under the export folder, so
    they are made safe (a COCO file_name like ``../../x.jpg`` would otherwise write outside it).
    """
    out: list[str] = []
    seen: set[str] = set()
    for im in images:
        name = im.file_name.replace("\\", "/").lstrip("/")
        if stored_suffix:
            name = _safe_rel_name(name, im.id)
            if im.path:
                name = str(Path(name).with_suffix(Path(im.path).suffix))
        if name in seen:
            p = Path(name)
            base, n = str(p.with_name(f"{p.stem}_{im.id}{p.suffix}")), 1
            name = base
            while name in seen:
                n += 1
                name = str(p.with_name(f"{p.stem}_{im.id}_{n}{p.suffix}"))
        seen.add(name)
        out.append(name)
    return out


@requires("export")
def export_coco(
    ws: Workspace,
    slug: str,
    out_dir: Path | str,
    *,
    splits: Iterable[str] | None = None,
    copy_images: bool = False,
    progress: Progress = None,
    box_only_as_polygon: bool = False,
) -> list[Path]:
    """Write ``annotations/instances_<split>.json`` (and ``images/<split>/`` with ``copy_images``);
    returns the instances files. Where a class has keypoints, ``person_keypoints_<split>.json`` lies
    beside each, with only the keypoint classes, as COCO ships them (datumaro and pycocotools'
    keypoint evaluation read that).
    ``box_only_as_polygon`` writes box-only instances as their 4-corner polygon (pycocotools'
    ``annToMask`` and torchvision's v2 ``masks`` fail on their empty segmentation).

    All of it is staged and moved into place when complete (``utils.staged``): a failure (a full
    disk) leaves the previous export as it was; other files in ``out_dir`` are left alone.
    """
    splits = list(splits) if splits is not None else None
    wanted = _split_keys(splits)
    _require_images_in_splits(ws, slug, splits)
    with paused_gc():
        return _export_coco(ws, slug, Path(out_dir), wanted, copy_images, progress, box_only_as_polygon)


def _export_coco(
    ws: Workspace,
    slug: str,
    out_dir: Path,
    wanted: set[str | None] | None,
    copy_images: bool,
    progress: Progress,
    box_only_as_polygon: bool = False,
) -> list[Path]:
    from workbench.formats.coco.write import records_to_coco, save_coco

    with ws.store.transaction() as s:
        pid = project_repo.project_id(s, slug)
        categories = category_repo.list_categories(s, pid)
        images = [im for im in image_repo.list_images(s, pid) if wanted is None or im.split in wanted]
        records = annotation_repo.annotation_records(s, pid)
    if not images:
        raise WorkbenchError(f"project {slug!r} has no images to export")
    project_dir = ws.project_dir(slug)
    by_split: dict[str, list[ImageRecord]] = {}
    for im in images:
        by_split.setdefault(im.split or UNASSIGNED, []).append(im)
    written: list[Path] = []
    done, total = 0, len(images)
    with staged_folder(out_dir, what="COCO export") as stage:
        for split, part in sorted(by_split.items()):
            names = _unique_names(part, stored_suffix=copy_images)
            part = [replace(im, file_name=n) for im, n in zip(part, names, strict=True)]
            if copy_images:
                img_dir = stage.put(f"images/{split}", folder=True)
                for im in part:
                    dst = img_dir / im.file_name
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(project_dir / (im.path or ""), dst)
                    done += 1
                    if progress:
                        progress(done, total)
            rel = f"annotations/instances_{split}.json"
            info = {"description": f"workbench export of {slug}", "split": split}
            # store ids are database keys: the file numbers classes 1..N, as project_dataset does
            opts = {"category_ids": "renumbered", "info": info, "box_only_as_polygon": box_only_as_polygon}
            save_coco(records_to_coco(categories, part, records, **opts), stage.put(rel))  # type: ignore[arg-type]
            written.append(out_dir / rel)
            if any(c.keypoints is not None and not c.is_ignore for c in categories):
                kp_rel = f"annotations/person_keypoints_{split}.json"
                kp = records_to_coco(categories, part, records, keypoint_categories_only=True, **opts)  # type: ignore[arg-type]
                save_coco(kp, stage.put(kp_rel))  # beside its instances file, not in the list returned
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
        info = project_repo.get_project(s, slug)
    if info.num_annotations == 0:
        raise WorkbenchError(f"project {slug!r} has no annotations to export; annotate or import some first")


@requires("export")
def export_coco_zip(ws: Workspace, slug: str, *, splits: Iterable[str] | None = None) -> bytes:
    _require_annotations(ws, slug)
    with tempfile.TemporaryDirectory() as tmp:
        export_coco(ws, slug, Path(tmp), splits=splits, copy_images=True)
        return _zip_folder(Path(tmp))


@requires("export")
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
    from workbench.formats.labelmaps import export_labelmaps as write

    _require_annotations(ws, slug)
    splits = list(splits) if splits is not None else None
    _require_images_in_splits(ws, slug, splits)
    ds = project_dataset(ws, slug, splits=splits)
    return write(ds, Path(out_dir), layout=layout, heatmap_sigma=heatmap_sigma, progress=progress)  # type: ignore[arg-type]


@requires("export")
def export_labelmaps_zip(ws: Workspace, slug: str, *, layout: str = "png") -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        out = export_labelmaps(ws, slug, Path(tmp) / "labelmaps", layout=layout)
        return _zip_folder(out)


@dataclass(frozen=True)
class FormatExport:
    """Where an export in another tool's format went, and what that format could not carry."""

    path: Path
    notes: list[str] = field(default_factory=list)


@requires("export")
def export_cvat(
    ws: Workspace,
    slug: str,
    out_dir: Path | str,
    *,
    splits: Iterable[str] | None = None,
    copy_images: bool = False,
    progress: Progress = None,
) -> FormatExport:
    """Write ``annotations.xml`` in CVAT for images 1.1 (and ``images/`` with ``copy_images``), what
    CVAT's task/project import and datumaro's ``cvat`` format read. Staged and moved into place whole."""
    from workbench.formats.cvat_write import dataset_to_cvat

    splits = list(splits) if splits is not None else None
    _require_images_in_splits(ws, slug, splits)
    ds = project_dataset(ws, slug, splits=splits)
    if not ds.items:
        raise WorkbenchError(f"project {slug!r} has no images to export")
    project_dir = ws.project_dir(slug)
    out_dir = Path(out_dir)
    names = _unique_names([it.image for it in ds.items], stored_suffix=copy_images)
    stored = [it.image.path for it in ds.items]
    ds.items = [replace(it, image=replace(it.image, file_name=n)) for it, n in zip(ds.items, names, strict=True)]
    notes: list[str] = []
    with staged_folder(out_dir, what="CVAT export") as stage:
        if copy_images:
            img_dir = stage.put("images", folder=True)
            for n, (name, rel) in enumerate(zip(names, stored, strict=True), 1):
                dst = img_dir / name
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(project_dir / (rel or ""), dst)
                if progress:
                    progress(n, len(names))
        stage.put("annotations.xml").write_bytes(dataset_to_cvat(ds, name=slug, warnings=notes))
    return FormatExport(out_dir / "annotations.xml", notes)


def _format_images(ws: Workspace, slug: str, splits: Iterable[str] | None) -> Dataset:
    """The project's dataset for a format that ships its images (YOLO, VOC); refused when empty."""
    splits = list(splits) if splits is not None else None
    _require_images_in_splits(ws, slug, splits)
    ds = project_dataset(ws, slug, splits=splits)
    if not ds.items:
        raise WorkbenchError(f"project {slug!r} has no images to export")
    return ds


@requires("export")
def export_yolo(
    ws: Workspace,
    slug: str,
    out_dir: Path | str,
    *,
    task: str = "segment",
    splits: Iterable[str] | None = None,
    progress: Progress = None,
) -> FormatExport:
    """Write an Ultralytics dataset (``data.yaml``, ``images/<split>/``, ``labels/<split>/``) for
    ``task`` detect, segment or pose; the notes count what YOLO could not carry. Staged, moved whole."""
    from workbench.formats.yolo_write import dataset_to_yolo, dump_yaml

    ds = _format_images(ws, slug, splits)
    done = dataset_to_yolo(ds, task=task)
    project_dir = ws.project_dir(slug)
    out_dir = Path(out_dir)
    with staged_folder(out_dir, what="YOLO export") as stage:
        stage.put("data.yaml").write_text(dump_yaml(done.data_yaml), encoding="utf-8")
        folders = {f.split for f in done.files}
        for name in ("images", "labels"):
            for split in sorted(folders):
                stage.put(f"{name}/{split}", folder=True)
        for n, f in enumerate(done.files, 1):
            rel = f.image.path or ""
            suffix = Path(rel).suffix or Path(f.image.file_name).suffix
            shutil.copyfile(project_dir / rel, stage.path / "images" / f.split / f"{f.stem}{suffix}")
            (stage.path / "labels" / f.split / f"{f.stem}.txt").write_text(f.text, encoding="utf-8")
            if progress:
                progress(n, len(done.files))
    return FormatExport(out_dir / "data.yaml", done.notes)


@requires("export")
def export_voc(
    ws: Workspace, slug: str, out_dir: Path | str, *, splits: Iterable[str] | None = None, progress: Progress = None
) -> FormatExport:
    """Write a Pascal VOC folder (Annotations, JPEGImages, SegmentationClass/Object palette PNGs,
    ImageSets, labelmap.txt) that datumaro's ``voc`` format reads. Staged and moved whole."""
    from workbench.formats.voc import dataset_to_voc, save_index_png

    ds = _format_images(ws, slug, splits)
    done = dataset_to_voc(ds)
    project_dir = ws.project_dir(slug)
    out_dir = Path(out_dir)
    with staged_folder(out_dir, what="VOC export") as stage:
        dirs = {d: stage.put(d, folder=True) for d in ("Annotations", "JPEGImages", "SegmentationClass", "SegmentationObject")}
        sets: dict[str, list[str]] = {}
        for n, f in enumerate(done.files, 1):
            rel = f.image.path or ""
            suffix = Path(rel).suffix or Path(f.image.file_name).suffix
            shutil.copyfile(project_dir / rel, dirs["JPEGImages"] / f"{f.stem}{suffix}")
            (dirs["Annotations"] / f"{f.stem}.xml").write_text(f.xml, encoding="utf-8")
            save_index_png(f.class_map, dirs["SegmentationClass"] / f"{f.stem}.png")
            save_index_png(f.object_map, dirs["SegmentationObject"] / f"{f.stem}.png")
            sets.setdefault(f.image.split or "train", []).append(f.stem)
            if progress:
                progress(n, len(done.files))
        lists = stage.put("ImageSets", folder=True)
        for sub in ("Main", "Segmentation"):
            (lists / sub).mkdir()
            for name, stems in sets.items():
                (lists / sub / f"{name}.txt").write_text("".join(f"{s}\n" for s in stems), encoding="utf-8")
        stage.put("labelmap.txt").write_text(done.labelmap, encoding="utf-8")
    notes = list(done.notes)
    if any(it.image.split is None for it in ds.items):
        notes.append("images without a split are listed in ImageSets as train")
    return FormatExport(out_dir, notes)
