"""Import use cases: images (files, folders, zips), COCO and LabelMe, each with a report.

Image files are written before their rows; rows are committed per batch (images) or in one
transaction (annotation formats). An import that fails removes the files whose rows never
committed right away; a kill in between leaves at worst unreferenced files, which the next import
sweeps away (``storage.sweep_orphans``); it never leaves a row without its file.
"""

from __future__ import annotations

import fcntl
import hashlib
import itertools
import logging
import shutil
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from workbench.domain import (
    AnnotatedImage,
    Dataset,
    ImageRecord,
    Progress,
    ValidationError,
    check_name_length,
    plural,
)
from workbench.evaluate.matching import box_iou
from workbench.geometry import with_bbox_area
from workbench.images import storage
from workbench.images.decode import DecodedImage, ImageError, ImageSource, decode_image
from workbench.images.sources import Skipped, check_zip_sizes, count_image_candidates, iter_image_sources
from workbench.services.permissions import requires
from workbench.services.workspace import Workspace
from workbench.store import annotations as annotation_repo
from workbench.store import categories as category_repo
from workbench.store import datasets as dataset_repo
from workbench.store import images as image_repo
from workbench.store import projects as project_repo
from workbench.utils.gc import paused_gc

log = logging.getLogger(__name__)

BATCH = 64
DEFAULT_MAX_PIXELS = 178_956_970


@dataclass
class ImportReport:
    imported: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    annotations: int = 0
    keypoints_attached: int = 0  # annotations already there that got keypoints from this import
    considered: int = 0  # images the annotation files list (annotation imports)

    def nothing_found(self) -> bool:
        """An annotation import whose every listed image was skipped (0 of N)."""
        return bool(self.considered) and not (
            self.imported or self.duplicates or self.annotations or self.keypoints_attached
        ) and len(self.skipped) >= self.considered

    def summary(self) -> str:
        parts = [f"{plural(len(self.imported), 'image')} imported"]
        if self.annotations:
            parts.append(plural(self.annotations, "annotation"))
        if self.keypoints_attached:
            parts.append(f"keypoints added to {plural(self.keypoints_attached, 'annotation')}")
        if self.duplicates:
            parts.append(f"{plural(len(self.duplicates), 'duplicate')} skipped")
        if self.skipped:
            parts.append(f"{plural(len(self.skipped), 'file')} skipped")
        return ", ".join(parts)


def _same_box(a: Sequence[float] | None, b: Sequence[float] | None) -> bool:
    """Boxes of one object written by two tools: IoU of at least 0.9."""
    if not a or not b:
        return False
    return bool(box_iou(a, b, False) >= 0.9)


def _attach_keypoints(s, image_id: int, item: AnnotatedImage, cat_ids: dict[str, int], pending: list[dict]) -> int:  # noqa: ANN001
    """Keypoints of an already annotated image's objects go onto its matching annotations.

    COCO ships one object twice, in instances_*.json and with keypoints in person_keypoints_*.json;
    the second file's keypoints join the annotation of the same class and box (stored, or added
    earlier in this import) that has none. Returns how many annotations got keypoints.
    """
    targets: list[tuple[int, list[float] | None, dict | int]] = [
        (row["category_id"], row["bbox"], row) for row in pending if row["image_id"] == image_id and not row["keypoints"]
    ]
    targets += [(cat, bbox, ann_id) for ann_id, cat, bbox in annotation_repo.annotations_without_keypoints(s, image_id)]
    added, stored = 0, False
    for inst in item.instances:
        if not inst.keypoints or inst.category not in cat_ids:
            continue
        box = with_bbox_area(inst, item.image.size_wh).bbox_xywh
        for n, (cat, bbox, target) in enumerate(targets):
            if cat == cat_ids[inst.category] and _same_box(bbox, box):
                if isinstance(target, dict):
                    target["keypoints"] = list(inst.keypoints)
                else:
                    annotation_repo.set_annotation_keypoints(s, target, inst.keypoints)
                    stored = True
                del targets[n]
                added += 1
                break
    if stored:
        annotation_repo.mark_annotations_imported(s, image_id)  # an open annotator reloads
    return added


def _decode(src: ImageSource, report: ImportReport, max_pixels: int) -> DecodedImage | None:
    """The decoded image, or None with the reason it is skipped (a name the store would refuse too)."""
    try:
        check_name_length("file name", src.name)
        return decode_image(src, max_pixels=max_pixels)
    except ImageError as exc:
        report.skipped.append(Skipped.from_error(exc))
    except ValidationError as exc:
        report.skipped.append(Skipped(src.name, str(exc)))
    except OSError as exc:
        report.skipped.append(Skipped(src.name, f"cannot read: {exc}"))
    return None


def _remove_files(project_dir: Path, rel_paths: Iterable[str]) -> None:
    """Delete files (and their thumbnails and display copies) whose rows were never committed."""
    for rel in rel_paths:
        storage.delete_image_files(project_dir, rel)


class _ConvertedImages:
    """Project images whose stored file is a conversion (EXIF-rotated, TIFF, ... stored as an upright
    PNG), found by the sha256 of that stored file: it is what an export with images holds, so that
    importing such an export back finds the image instead of adding it twice. Hashed on first use,
    and only files whose original was not a PNG."""

    def __init__(self, project_dir: Path, images: list[ImageRecord]) -> None:
        self._project_dir = project_dir
        self._images = images
        self._by_sha: dict[str, int] | None = None

    def get(self, sha256: str) -> int | None:
        if self._by_sha is None:
            self._by_sha = {}
            for im in self._images:
                if im.id is None or not im.path or not im.path.endswith(".png"):
                    continue
                if Path(im.file_name).suffix.lower() == ".png":
                    continue
                try:
                    digest = hashlib.sha256((self._project_dir / im.path).read_bytes()).hexdigest()
                except OSError:
                    continue
                if digest != im.sha256:
                    self._by_sha[digest] = im.id
        return self._by_sha.get(sha256)


def _store_files(project_dir: Path, decoded: DecodedImage) -> str:
    """Store the image with its thumbnail and display copy; nothing is left behind if one fails.

    Only called for content the project does not hold yet, so the files removed are this call's.
    """
    rel = storage.store_image(project_dir, decoded)
    try:
        storage.make_thumbnail(project_dir, rel)
        storage.make_display_copy(project_dir, rel)
    except BaseException:
        storage.delete_image_files(project_dir, rel)
        raise
    return rel


@contextmanager
def project_write_lock(ws: Workspace, slug: str, doing: str) -> Iterator[None]:
    """Hold the project's file lock (flock, released by the kernel if the holder dies).

    Imports and project deletion take it, so a deletion waits for a running import instead of
    pulling the folder from under it. When another process holds it, a warning says what waits
    (the CLI shows it on stderr) rather than sitting silent.
    """
    with ws.store.transaction() as s:
        project_repo.project_id(s, slug)  # an unknown project is refused before a folder is made for it
    folder = ws.project_dir(slug)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".import.lock", "a+b") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.warning("waiting for another import (or deletion) of project %r to finish before %s", slug, doing)
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextmanager
def import_lock(ws: Workspace, slug: str) -> Iterator[None]:
    """One import per project at a time (others wait), then sweep files a killed import left.

    Files are written before their rows commit, so sweeping while another import runs would delete
    its files; the lock makes the sweep safe.
    """
    with project_write_lock(ws, slug, "this import"):
        with ws.store.transaction() as s:  # the project may have been deleted while we waited
            known = image_repo.image_paths(s, project_repo.project_id(s, slug))
        storage.sweep_orphans(ws.project_dir(slug), known)
        yield


@requires("import")
def import_images(
    ws: Workspace,
    slug: str,
    sources: Sequence[Path | str | ImageSource],
    *,
    split: str | None = None,
    progress: Progress = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> ImportReport:
    """Import image files, folders and zip archives (paths) or in-memory uploads (ImageSource)."""
    if max_pixels < 1:  # every image would be skipped as a 'decompression bomb'
        raise ValidationError(f"the pixel limit must be at least 1, got {max_pixels}")
    with import_lock(ws, slug):
        report = ImportReport()
        project_dir = ws.project_dir(slug)
        with ws.store.transaction() as s:
            pid = project_repo.project_id(s, slug)
            seen = image_repo.image_ids_by_sha(s, pid)
            converted = _ConvertedImages(project_dir, image_repo.list_images(s, pid))
        paths = [Path(p) for p in sources if not isinstance(p, ImageSource)]
        uploads = [p for p in sources if isinstance(p, ImageSource)]
        # before any file is read: zips whose images would not fit the disk (or the cap) are refused
        check_zip_sizes(paths, free_bytes=shutil.disk_usage(project_dir).free)
        # lazily: a zip's entries are read one at a time, never the whole archive into memory
        items = itertools.chain(uploads, iter_image_sources(paths, skipped=report.skipped, notes=report.warnings))
        expected = len(uploads) + count_image_candidates(paths)
        pending: list[ImageRecord] = []

        def flush() -> None:
            if pending:
                with ws.store.transaction() as s:
                    for rec in pending:
                        image_repo.add_image(s, pid, rec)
                pending.clear()

        try:
            for n, src in enumerate(items, 1):
                decoded = _decode(src, report, max_pixels)
                if decoded is not None:
                    if decoded.sha256 in seen or converted.get(decoded.sha256) is not None:
                        report.duplicates.append(src.name)
                    else:
                        rel = _store_files(project_dir, decoded)
                        seen[decoded.sha256] = -1
                        pending.append(
                            ImageRecord(
                                file_name=src.name,
                                width=decoded.width,
                                height=decoded.height,
                                sha256=decoded.sha256,
                                path=rel,
                                split=split,
                            )
                        )
                        report.imported.append(src.name)
                        if len(pending) >= BATCH:
                            flush()
                if progress:
                    progress(n, max(expected, n))
            flush()
        except BaseException:
            # the batch that failed (or was cancelled) never committed: its files go now rather
            # than at the next import's sweep; batches already committed keep their rows and files
            _remove_files(project_dir, [rec.path for rec in pending if rec.path])
            raise
        return report


@requires("import")
def import_dataset(
    ws: Workspace,
    slug: str,
    ds: Dataset,
    *,
    progress: Progress = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    source: str | None = None,
) -> ImportReport:
    """Import a Dataset read by a format module: classes merge by name, then images and instances.

    An image already in the project (same content, or same file name) receives the annotations when
    it has none yet; otherwise its annotations are skipped and reported. The rows of every image and
    annotation are one transaction. ``source`` (the annotation file) names the import in errors.

    Matching by file name (the item has no image file): where several project images share the
    name, the one of the item's width x height is taken; if that still leaves several, the import
    is refused naming the file name and ``source``, since picking one would put the annotations on
    an arbitrary image.
    """
    sources = [source] if source is not None else None
    return import_datasets(ws, slug, [ds], progress=progress, max_pixels=max_pixels, sources=sources)


@requires("import")
def import_datasets(
    ws: Workspace,
    slug: str,
    datasets: Sequence[Dataset],
    *,
    progress: Progress = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    sources: Sequence[str] | None = None,
) -> ImportReport:
    """``import_dataset`` of several datasets (a COCO folder's split files) as one all-or-nothing import.

    Every dataset's image files are stored first, then the rows of all of them are one transaction:
    an error in any (a class whose keypoints clash, say) leaves the store as it was and removes the
    files this import stored.
    """
    with import_lock(ws, slug):
        report = ImportReport(
            warnings=[w for ds in datasets for w in ds.warnings],
            skipped=[Skipped(name, reason) for ds in datasets for name, reason in ds.skipped],
        )
        project_dir = ws.project_dir(slug)
        with ws.store.transaction() as s:
            pid = project_repo.project_id(s, slug)
            by_sha = image_repo.image_ids_by_sha(s, pid)
            project_images = image_repo.list_images(s, pid)
            existing: dict[str, list[ImageRecord]] = {}
            for pim in project_images:
                existing.setdefault(pim.file_name, []).append(pim)
            converted = _ConvertedImages(project_dir, project_images)
            annotated = {i for i, names in dataset_repo.class_presence(s, pid).items() if names}
        written: list[str] = []  # files this import stored; removed again if its rows never commit
        total = sum(len(ds.items) for ds in datasets)
        try:
            # 1. files first (outside the transaction): decode, dedupe, store
            # (dataset index, item, new image's record, existing image id, plan index of the entry
            # that adds the image when an earlier item of this import holds the same image)
            plan: list[tuple[int, AnnotatedImage, ImageRecord | None, int | None, int | None]] = []
            new_at: dict[str, int] = {}  # sha256 -> plan index of the entry adding that image
            entries = ((k, item) for k, ds in enumerate(datasets) for item in ds.items)
            for n, (k, item) in enumerate(entries, 1):
                im = item.image
                named = existing.get(im.file_name, [])
                if named and (im.path is None or not Path(im.path).exists()) and item.data is None:
                    fits = [r for r in named if (r.width, r.height) == (im.width, im.height)]
                    if not fits:
                        sizes = ", ".join(sorted({f"{r.width}x{r.height}" for r in named}))
                        report.skipped.append(
                            Skipped(
                                im.file_name,
                                (
                                    f"the file says {im.width}x{im.height}, the project's "
                                    f"{'image' if len(named) == 1 else 'images'} of that name "
                                    f"{'is' if len(named) == 1 else 'are'} {sizes}"
                                ),
                            )
                        )
                        continue
                    if len(fits) > 1:
                        if not item.instances:
                            continue  # nothing to put on either of them
                        where = sources[k] if sources is not None else "the import"
                        raise ValidationError(
                            f"{where}: image {im.file_name!r} ({im.width}x{im.height}) matches "
                            f"{len(fits)} project images of that file name and size (ids "
                            f"{', '.join(str(r.id) for r in fits)}), so its annotations cannot be "
                            "matched by name; put the image file beside the annotations to match "
                            "it by content, or delete the duplicate from the project"
                        )
                    plan.append((k, item, None, fits[0].id, None))
                else:
                    src = ImageSource(name=im.file_name, path=Path(im.path) if im.path else None, data=item.data)
                    if src.path is None and src.data is None:
                        report.skipped.append(Skipped(im.file_name, "no image file and no embedded image data"))
                        continue
                    decoded = _decode(src, report, max_pixels)
                    if decoded is None:
                        continue
                    if (decoded.width, decoded.height) != (im.width, im.height):
                        report.skipped.append(
                            Skipped(
                                im.file_name,
                                (
                                    f"the annotations say {im.width}x{im.height} but the upright image is "
                                    f"{decoded.width}x{decoded.height}; annotations would not line up"
                                ),
                            )
                        )
                        continue
                    if by_sha.get(decoded.sha256) == -1:
                        # added by an earlier item of this import (the instances and the keypoints
                        # file of one split): its annotations join when that item had none
                        plan.append((k, item, None, None, new_at[decoded.sha256]))
                        report.duplicates.append(im.file_name)
                    elif decoded.sha256 in by_sha:
                        plan.append((k, item, None, by_sha[decoded.sha256], None))
                        report.duplicates.append(im.file_name)
                    elif (same := converted.get(decoded.sha256)) is not None:
                        plan.append((k, item, None, same, None))
                        report.duplicates.append(im.file_name)
                    else:
                        rel = _store_files(project_dir, decoded)
                        written.append(rel)
                        by_sha[decoded.sha256] = -1
                        rec = ImageRecord(
                            file_name=im.file_name,
                            width=decoded.width,
                            height=decoded.height,
                            sha256=decoded.sha256,
                            path=rel,
                            split=im.split,
                            status="done" if item.instances else "unlabeled",
                        )
                        new_at[decoded.sha256] = len(plan)
                        plan.append((k, item, rec, None, None))
                if progress:
                    progress(n, total)
            # 2. rows: one transaction
            with ws.store.transaction() as s:
                cat_ids_of: list[dict[str, int]] = []
                kept = {entry[0] for entry in plan}
                for k, ds in enumerate(datasets):
                    # classes come with the images they belong to: a file whose every image was
                    # skipped adds none (a file of classes only, with no images, adds its classes)
                    if (ds.items or ds.skipped) and k not in kept:
                        cat_ids_of.append({})
                        continue
                    ids, notes = category_repo.merge_categories(s, pid, ds.categories)
                    cat_ids_of.append(ids)
                    report.warnings.extend(n for n in notes if n not in report.warnings)
                rows = []
                marked: list[int] = []  # existing images that receive annotations: one bulk update
                created: dict[int, int] = {}  # plan index -> id of the image that entry added
                for n, (k, item, rec, image_id, ref) in enumerate(plan):
                    cat_ids = cat_ids_of[k]
                    if rec is not None:
                        image_id = created[n] = image_repo.add_image(s, pid, rec)
                        report.imported.append(rec.file_name)
                    else:
                        if ref is not None:
                            image_id = created[ref]
                        if image_id in annotated and item.instances:
                            where = (
                                "same image as another file of this import, which has annotations"
                                if ref is not None
                                else "already annotated in this project"
                            )
                            added = _attach_keypoints(s, image_id, item, cat_ids, rows)
                            if added:
                                report.keypoints_attached += added
                                report.warnings.append(
                                    f"{item.image.file_name}: {where}; keypoints added to "
                                    f"{plural(added, 'annotation')} of the same class and box, the rest not imported"
                                )
                            else:
                                report.warnings.append(f"{item.image.file_name}: {where}; its annotations were not imported")
                            continue
                    assert image_id is not None
                    size_wh = item.image.size_wh
                    for inst in item.instances:
                        if inst.category not in cat_ids:
                            raise ValidationError(f"{item.image.file_name}: unknown class {inst.category!r}")
                        inst = with_bbox_area(inst, size_wh)
                        vals = annotation_repo.instance_to_values(inst, cat_ids[inst.category], image_id)
                        if vals["source"] == "manual":
                            vals["source"] = "imported"
                        rows.append(vals)
                    if rec is None and item.instances:
                        marked.append(image_id)
                    if item.instances:
                        annotated.add(image_id)
                annotation_repo.mark_images_imported(s, marked)
                annotation_repo.insert_instances(s, rows)
                report.annotations = len(rows)
        except BaseException:
            _remove_files(project_dir, written)
            raise
        return report


@requires("import")
def import_coco(
    ws: Workspace,
    slug: str,
    path: Path | str,
    *,
    images_dir: Path | None = None,
    split: str | None = None,
    progress: Progress = None,
    root: Path | None = None,
    crowd_as_instances: bool = False,
) -> ImportReport:
    """Import a COCO file, or a folder of per-split COCO files (datumaro or roboflow layout).

    Image paths resolve inside ``root`` only (default: ``images_dir``, else the dataset folder).
    ``crowd_as_instances`` imports RLE masks marked ``iscrowd=1`` as ordinary instances.

    A folder imports all of its files or none: a file that is refused leaves the project unchanged.
    """
    from workbench.formats.coco.layouts import find_coco_splits
    from workbench.formats.coco.read import load_coco

    with ws.store.transaction() as s:
        known = {im.file_name for im in image_repo.list_images(s, project_repo.project_id(s, slug))}
    path = Path(path)
    if path.is_dir():
        files = find_coco_splits(path)
        if not files:
            raise ValidationError(
                f"{path}: no COCO annotation files found (annotations/*.json or */_annotations.coco.json)"
            )
        # all or nothing: every file is read and validated before anything is stored, and the
        # rows of all of them are one transaction (a bad second file used to leave the first in)
        with paused_gc():
            ordered = sorted(files.items())
            datasets = [
                load_coco(f, split=name, known_names=known, root=root, crowd_as_instances=crowd_as_instances)
                for name, f in ordered
            ]
            ordered, datasets = _without_keypoint_twins(ordered, datasets)
            report = import_datasets(ws, slug, datasets, progress=progress, sources=[str(f) for _, f in ordered])
    else:
        with paused_gc():
            datasets = [
                load_coco(
                    path, images_dir=images_dir, split=split, known_names=known, root=root,
                    crowd_as_instances=crowd_as_instances,
                )
            ]
            report = import_dataset(ws, slug, datasets[0], progress=progress, source=str(path))
    report.considered = sum(len(ds.items) + len(ds.skipped) for ds in datasets)
    return report


def _without_keypoint_twins(
    ordered: list[tuple[str, Path]], datasets: list[Dataset]
) -> tuple[list[tuple[str, Path]], list[Dataset]]:
    """Leave out ``person_keypoints_<split>.json`` where ``instances_<split>.json`` already holds keypoints.

    Our exports (and datumaro's) write keypoints in both; COCO's own instances files have none, and
    then the keypoints file adds its keypoints to the instances' annotations as before.
    """
    by_key = dict(zip((k for k, _ in ordered), datasets, strict=True))
    keep_o, keep_d = [], []
    for (key, f), ds in zip(ordered, datasets, strict=True):
        split, _, task = key.partition(".")
        twin = by_key.get(split) if task == "person_keypoints" else None
        if twin is not None and any(inst.keypoints for it in twin.items for inst in it.instances):
            twin.warnings.append(f"{f}: its keypoints are in the instances file of split {split!r} too; not read twice")
            continue
        keep_o.append((key, f))
        keep_d.append(ds)
    return keep_o, keep_d


@requires("import")
def import_labelme(
    ws: Workspace, slug: str, path: Path | str, *, split: str | None = None, progress: Progress = None
) -> ImportReport:
    """Import a LabelMe file or folder; ``split`` puts its new images in that split."""
    from workbench.formats.labelme import load_labelme

    ds = load_labelme(Path(path))
    if split is not None:
        ds.items = [replace(it, image=replace(it.image, split=split)) for it in ds.items]
    return import_dataset(ws, slug, ds, progress=progress, source=str(path))


def source_names(items: Iterable[ImageSource]) -> list[str]:
    return [i.name for i in items]


def _project_file_names(ws: Workspace, slug: str) -> set[str]:
    """File names of the project's images: an import matches images it cannot find by these."""
    with ws.store.transaction() as s:
        return {im.file_name for im in image_repo.list_images(s, project_repo.project_id(s, slug))}


def _in_split(ds: Dataset, split: str | None) -> Dataset:
    if split is not None:
        ds.items = [replace(it, image=replace(it.image, split=split)) for it in ds.items]
    return ds


@requires("import")
def import_cvat(
    ws: Workspace,
    slug: str,
    path: Path | str,
    *,
    images_dir: Path | None = None,
    split: str | None = None,
    progress: Progress = None,
) -> ImportReport:
    """Import a CVAT for images 1.1 XML file, or a CVAT export folder (``annotations.xml`` + ``images/``).

    Images not found beside the file are matched by name to the project's images; ``split`` puts
    the new images in that split (else a project export's subsets name their splits).
    """
    from workbench.formats.cvat import load_cvat

    known = _project_file_names(ws, slug)
    ds = load_cvat(Path(path), images_dir=images_dir, known_names=known)
    return import_dataset(ws, slug, _in_split(ds, split), progress=progress, source=str(path))


@requires("import")
def import_labelstudio(
    ws: Workspace,
    slug: str,
    path: Path | str,
    *,
    images_dir: Path | None = None,
    split: str | None = None,
    progress: Progress = None,
) -> ImportReport:
    """Import a Label Studio export (its "JSON" or "JSON-MIN" form); images are looked for in
    ``images_dir`` (default: beside the file) by their stored path, else by basename."""
    from workbench.formats.labelstudio import load_labelstudio

    known = _project_file_names(ws, slug)
    ds = load_labelstudio(Path(path), images_dir=images_dir, known_names=known)
    return import_dataset(ws, slug, _in_split(ds, split), progress=progress, source=str(path))


@requires("import")
def import_yolo(ws: Workspace, slug: str, path: Path | str, *, progress: Progress = None) -> ImportReport:
    """Import an Ultralytics YOLO dataset (a ``data.yaml`` or its folder): every split it names,
    all or nothing; classes (and keypoint names, ``flip_idx``) from the yaml."""
    from workbench.formats.yolo import load_yolo

    datasets = load_yolo(Path(path))
    sources = [str(path)] * len(datasets)
    return import_datasets(ws, slug, datasets, progress=progress, sources=sources)


@requires("import")
def import_voc(
    ws: Workspace, slug: str, path: Path | str, *, split: str | None = None, progress: Progress = None
) -> ImportReport:
    """Import a Pascal VOC folder; ``split`` is for the images its ImageSets lists do not name."""
    from workbench.formats.voc import load_voc

    ds = load_voc(Path(path))
    if split is not None:
        ds.items = [it if it.image.split else replace(it, image=replace(it.image, split=split)) for it in ds.items]
    return import_dataset(ws, slug, ds, progress=progress, source=str(path))


@requires("import")
def import_masks(
    ws: Workspace,
    slug: str,
    path: Path | str,
    *,
    images_dir: Path | str,
    layout: str = "auto",
    classes: Path | str | None = None,
    one_per_class: bool = False,
    split: str | None = None,
    progress: Progress = None,
) -> ImportReport:
    """Import mask PNGs (an index PNG per image, or a folder of binary PNGs per class) for the images
    of ``images_dir``: instances are connected components per class, or one per class per image."""
    from workbench.formats.mask_pngs import load_masks

    ds = load_masks(
        Path(path), images_dir=Path(images_dir), layout=layout,
        classes=Path(classes) if classes is not None else None, one_per_class=one_per_class,
    )
    if split is not None:
        ds.items = [replace(it, image=replace(it.image, split=split)) for it in ds.items]
    return import_dataset(ws, slug, ds, progress=progress, source=str(path))
