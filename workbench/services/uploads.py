"""Files handed over by a browser upload (a name and bytes): images, zips of images, and annotation files
or zips of them. Errors name the uploaded file, never the temporary folder it was unpacked into."""

from __future__ import annotations

import io
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Literal, Protocol

from workbench.domain import Progress, ValidationError, WorkbenchError
from workbench.images.decode import ImageSource
from workbench.services import imports
from workbench.services.imports import ImportReport
from workbench.services.permissions import requires
from workbench.services.workspace import Workspace


class Upload(Protocol):
    """What ``st.file_uploader`` hands a page: a name and the bytes."""

    name: str

    def getvalue(self) -> bytes: ...


def safe_extract(data: bytes, dest: Path, name: str) -> None:
    """Unzip an upload into ``dest``, refusing entries that would land outside it."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise ValidationError(f"{name}: not a zip archive ({exc})") from exc
    with zf:
        for info in zf.infolist():
            parts = PurePosixPath(info.filename.replace("\\", "/")).parts
            if info.filename.startswith("/") or ".." in parts or (parts and ":" in parts[0]):
                raise ValidationError(f"{name}: entry {info.filename!r} points outside the archive")
            if (info.external_attr >> 16) & 0o170000 == 0o120000:
                continue  # symbolic links are not followed
            zf.extract(info, dest)


@requires("import")
def import_image_uploads(ws: Workspace, slug: str, files: Sequence[Upload], progress: Progress = None) -> ImportReport:
    """Image uploads: loose files go in as bytes, zip archives are unpacked into a temporary folder."""
    sources: list[Path | ImageSource] = []
    with tempfile.TemporaryDirectory(prefix="wb-upload-") as tmp:
        for f in files:
            data = f.getvalue()
            if f.name.lower().endswith(".zip"):
                path = Path(tmp) / Path(f.name).name
                path.write_bytes(data)
                sources.append(path)
            else:
                sources.append(ImageSource(name=f.name, data=data))
        return imports.import_images(ws, slug, sources, progress=progress)


@requires("import")
def import_annotation_upload(
    ws: Workspace, slug: str, kind: Literal["coco", "labelme"], f: Upload, progress: Progress = None
) -> ImportReport:
    """A COCO JSON (images matched by file name to the project's), a LabelMe JSON, or a zip of JSON + images."""
    with tempfile.TemporaryDirectory(prefix="wb-upload-") as tmp:
        try:
            report = _import_annotation_upload(ws, slug, kind, f, Path(tmp), progress)
        except (WorkbenchError, ValueError, OSError) as exc:
            msg = str(exc)
            if tmp not in msg:
                raise
            msg = msg.replace(str(Path(tmp) / Path(f.name).name), f.name).replace(tmp, f.name)
            raise ValidationError(msg) from exc
        report.warnings = [w.replace(tmp, f.name) for w in report.warnings]
        report.skipped = [replace(s, reason=s.reason.replace(tmp, f.name)) for s in report.skipped]
        return report


def _import_annotation_upload(
    ws: Workspace, slug: str, kind: str, f: Upload, root: Path, progress: Progress
) -> ImportReport:
    data = f.getvalue()
    if f.name.lower().endswith(".zip"):
        safe_extract(data, root, f.name)
        target = root
        jsons = sorted(p for p in root.rglob("*.json") if not p.name.startswith("."))
        if kind == "coco" and len(jsons) == 1:
            return imports.import_coco(
                ws, slug, jsons[0], images_dir=jsons[0].parent, progress=progress, root=root
            )
    else:
        target = root / Path(f.name).name
        target.write_bytes(data)
    if kind == "coco":
        return imports.import_coco(ws, slug, target, progress=progress)
    return imports.import_labelme(ws, slug, target, progress=progress)
