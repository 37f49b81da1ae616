"""A semantic run without training: its row and a folder holding a predicted map of one image."""

from __future__ import annotations

import numpy as np

from workbench.services import annotate, semantic
from workbench.store import projects as project_repo
from workbench.store import runs as run_repo


def semantic_run_with_stored_map(ws, slug, tmp_path):  # noqa: ANN001, ANN202
    """A semantic run row whose folder holds a predicted map of the first image (no model needed)."""
    from workbench.domain import AnnotatedImage, Dataset
    from workbench.formats.labelmaps import export_index_maps

    run_dir = tmp_path / "semrun"
    run_dir.mkdir()
    (run_dir / "model.pt").write_bytes(b"x")
    with ws.store.transaction() as s:
        rid = run_repo.create_run(s, project_repo.project_id(s, slug), "seg", {"task": "semantic"}, str(run_dir),
                                  device="cpu").id
    rec = annotate.list_images(ws, slug)[0]
    pred = np.zeros((rec.height, rec.width), np.uint8)
    pred[10:30, 10:30] = 1
    pred[40:60, 40:60] = 2
    cats = semantic.project_dataset(ws, slug, splits=[]).categories
    export_index_maps(Dataset(categories=cats, items=[AnnotatedImage(image=rec)]), [pred], run_dir / "predicted")
    return rid, rec, pred, [c.name for c in cats if not c.is_ignore]
