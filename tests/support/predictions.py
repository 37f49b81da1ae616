"""Review test helpers: runs rows and model-like predictions made from ground truth."""

from __future__ import annotations

from dataclasses import replace

from workbench.domain import Instance
from workbench.geometry import instance_to_rle
from workbench.services import annotate
from workbench.store import projects as project_repo
from workbench.store.runs import create_run


def make_run(ws, slug: str, name: str = "run") -> int:  # noqa: ANN001
    """A runs row, as training would leave it (the review needs only the id)."""
    with ws.store.transaction() as s:
        return create_run(s, project_repo.project_id(s, slug), name, {}, "").id


def as_prediction(inst: Instance, size_wh: tuple[int, int], score: float, **changes) -> Instance:  # noqa: ANN003
    """A model-like prediction of ``inst``: its mask as RLE, no id, a score."""
    rle = instance_to_rle(inst, size_wh)
    return replace(
        inst,
        polygons=(),
        rle=rle,
        bbox_xywh=None,
        area=None,
        id=None,
        score=score,
        source="predicted",
        **changes,
    )


def ground_truth(ws, slug: str, image_id: int) -> tuple[tuple[int, int], list[Instance]]:  # noqa: ANN001
    loaded = annotate.load_image(ws, slug, image_id)
    return loaded.image.size_wh, loaded.instances
