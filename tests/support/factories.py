"""Small projects made through the services: real images, classes and annotations."""

from __future__ import annotations

from pathlib import Path

from tests.support.images import image_bytes, write_image
from workbench.domain import Category, ImageRecord, Instance
from workbench.images.decode import ImageSource
from workbench.services import annotate, classes, imports
from workbench.services.workspace import Workspace


def add_images(ws: Workspace, slug: str, n: int = 2) -> list[ImageRecord]:
    """Import ``n`` distinct 40 x 30 PNGs into the project; its images, in order."""
    imports.import_images(
        ws, slug, [ImageSource(name=f"im{i}.png", data=image_bytes(40, 30, seed=i)) for i in range(n)]
    )
    return annotate.list_images(ws, slug)


def project_with_train_and_val(ws: Workspace, project: str, tmp_path: Path) -> None:
    """Class ``a``, two train images (the first annotated) and one val image."""
    classes.add_category(ws, project, Category(name="a"))
    for seed, split in [(1, "train"), (2, "train"), (3, "val")]:
        imports.import_images(ws, project, [write_image(tmp_path / f"{seed}.png", 8, 8, seed=seed)], split=split)
    im = annotate.list_images(ws, project)[0]
    square = (1.0, 1.0, 5.0, 1.0, 5.0, 5.0)
    annotate.save_image(ws, project, im.id, [Instance("a", polygons=(square,))], expected_version=1)


def media_files(ws: Workspace, slug: str) -> list[Path]:
    """Every file under the project's media folders (images, thumbnails, display copies), relative."""
    root = ws.project_dir(slug)
    return sorted(
        p.relative_to(root)
        for sub in ("images", "thumbs", "display")
        for p in (root / sub).rglob("*")
        if p.is_file()
    )
