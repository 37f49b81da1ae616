"""The annotation formats by name: one table that the CLI's ``import``/``export`` and the UI's Import
and Export pages read, so a format added here is offered by both, with the options it takes.

Each entry wraps the service that does the work (``services.imports.import_<name>``,
``services.export.export_<name>``); the table only says what each takes, so a caller can refuse an
option the format would ignore (a typo must not end in a quiet import of nothing).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.domain import Progress, ValidationError
from workbench.services import export, imports
from workbench.services.export import FormatExport
from workbench.services.imports import ImportReport
from workbench.services.permissions import requires
from workbench.services.workspace import Workspace

__all__ = [
    "EXPORT_FORMATS",
    "IMPORT_FORMATS",
    "ExportFormat",
    "ImportFormat",
    "export_format",
    "export_zip",
    "import_format",
    "run_export",
    "run_import",
]

IMPORT_OPTIONS = ("split", "images_dir", "crowd_as_instances", "classes", "one_per_class")
"""Every option an annotation import may take besides the path and a progress callback."""


@dataclass(frozen=True)
class ImportFormat:
    """An annotation format the workbench reads: what to point it at and which options it takes."""

    name: str
    label: str
    path_hint: str
    """What the path is: shown beside the path box and in errors."""
    options: tuple[str, ...]
    run: Callable[..., ImportReport]
    needs_images_dir: bool = False


@dataclass(frozen=True)
class ExportFormat:
    """A format the workbench writes; ``options`` are the keyword options of its service."""

    name: str
    label: str
    options: tuple[str, ...]
    run: Callable[..., Any]


IMPORT_FORMATS: dict[str, ImportFormat] = {
    f.name: f
    for f in (
        ImportFormat(
            "coco", "COCO JSON", "a COCO JSON file, or a folder of per-split files (annotations/*.json)",
            ("split", "images_dir", "crowd_as_instances"), imports.import_coco,
        ),
        ImportFormat("labelme", "LabelMe", "a LabelMe JSON file or folder", ("split",), imports.import_labelme),
        ImportFormat(
            "yolo", "YOLO (Ultralytics)", "a data.yaml, or the folder holding it (images/ and labels/ beside)",
            (), imports.import_yolo,
        ),
        ImportFormat(
            "voc", "Pascal VOC", "a VOC folder (Annotations/, JPEGImages/, Segmentation*/)", ("split",),
            imports.import_voc,
        ),
        ImportFormat(
            "cvat", "CVAT for images 1.1 XML", "an annotations.xml, or a CVAT export folder (with images/)",
            ("split", "images_dir"), imports.import_cvat,
        ),
        ImportFormat(
            "labelstudio", "Label Studio JSON", "a Label Studio export (its JSON or JSON-MIN form)",
            ("split", "images_dir"), imports.import_labelstudio,
        ),
        ImportFormat(
            "masks", "Mask PNGs", "a folder of index PNGs (one per image), or of one folder of binary PNGs per class",
            ("split", "images_dir", "classes", "one_per_class"), imports.import_masks, needs_images_dir=True,
        ),
    )
}  # fmt: skip

EXPORT_FORMATS: dict[str, ExportFormat] = {
    f.name: f
    for f in (
        ExportFormat("coco", "COCO JSON", ("splits", "copy_images", "box_only_as_polygon"), export.export_coco),
        ExportFormat("labelmaps", "Label maps", ("splits", "layout", "heatmap_sigma"), export.export_labelmaps),
        ExportFormat("cvat", "CVAT for images 1.1 XML", ("splits", "copy_images"), export.export_cvat),
        ExportFormat("yolo", "YOLO (Ultralytics)", ("splits", "task"), export.export_yolo),
        ExportFormat("voc", "Pascal VOC", ("splits",), export.export_voc),
    )
}


def _lookup(table: Mapping[str, Any], name: str, what: str) -> Any:
    try:
        return table[name]
    except KeyError:
        raise ValidationError(f"unknown {what} format {name!r}; known: {', '.join(table)}") from None


def import_format(name: str) -> ImportFormat:
    """The import format of that name; an unknown name is refused, naming the ones there are."""
    return _lookup(IMPORT_FORMATS, name, "import")


def export_format(name: str) -> ExportFormat:
    """The export format of that name; an unknown name is refused, naming the ones there are."""
    return _lookup(EXPORT_FORMATS, name, "export")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _taken(options: Mapping[str, Any], takes: Iterable[str], doing: str) -> dict[str, Any]:
    """The options that are set, all of which ``doing`` must take (a set one it ignores is refused)."""
    given = {k: v for k, v in options.items() if v is not None and v is not False}
    ignored = [k for k in given if k not in takes]
    if ignored:
        takes_text = ", ".join(map(_flag, takes)) or "no options"
        raise ValidationError(f"{', '.join(map(_flag, ignored))}: not an option of {doing} (it takes {takes_text})")
    return given


@requires("import")
def run_import(
    ws: Workspace, slug: str, name: str, path: Path | str, *, progress: Progress = None, **options: Any
) -> ImportReport:
    """Import ``path`` as format ``name`` into project ``slug``; options left None are not given."""
    fmt = import_format(name)
    given = _taken(options, fmt.options, f"import {name}")
    if fmt.needs_images_dir and not given.get("images_dir"):
        raise ValidationError(f"import {name} needs --images-dir: the folder of the images the annotations belong to")
    for key in ("images_dir", "classes"):
        if key in given:
            given[key] = Path(given[key]).expanduser()
    return fmt.run(ws, slug, Path(path).expanduser(), progress=progress, **given)


@requires("export")
def run_export(
    ws: Workspace, slug: str, name: str, out_dir: Path | str, *, progress: Progress = None, **options: Any
) -> FormatExport:
    """Export project ``slug`` as format ``name`` into ``out_dir``: where it went and what the format
    could not carry (COCO: the folder, its files named in the notes' place by ``export_coco``)."""
    fmt = export_format(name)
    given = _taken(options, fmt.options, f"export {name}")
    done = fmt.run(ws, slug, Path(out_dir), progress=progress, **given)
    if isinstance(done, FormatExport):
        return done
    return FormatExport(Path(out_dir) if isinstance(done, list) else Path(done))


@requires("export")
def export_zip(ws: Workspace, slug: str, name: str, **options: Any) -> tuple[bytes, list[str]]:
    """Export as format ``name`` into a temporary folder and zip it: the zip's bytes and the notes."""
    with tempfile.TemporaryDirectory(prefix="wb-export-") as tmp:
        out = Path(tmp) / name
        done = run_export(ws, slug, name, out, **options)
        folder = done.path if done.path.is_dir() else done.path.parent
        archive = shutil.make_archive(str(Path(tmp) / "export"), "zip", root_dir=folder)
        return Path(archive).read_bytes(), list(done.notes)
