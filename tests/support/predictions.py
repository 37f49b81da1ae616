"""Prediction helpers: runs rows, a tiny real model.pt for the demo classes, and model-like
predictions made from ground truth."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from workbench.domain import Instance, KeypointSchema
from workbench.geometry import instance_to_rle
from workbench.services import annotate
from workbench.store import projects as project_repo
from workbench.store.runs import create_run, set_run_dir
from workbench.train.checkpoint import save_atomic
from workbench.train.dataset import TrainingSchema
from workbench.train.model import build_model, model_file_payload

DEMO_SCHEMA = TrainingSchema(
    ("circle", "square", "triangle"),
    (("triangle", KeypointSchema(("apex", "left", "right"), flip_pairs=((1, 2),))),),
)


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


def write_model(run_dir: Path) -> Path:
    """A tiny untrained model biased to see a confident circle with a full mask in every proposal."""
    args = {"backbone": "tiny", "num_classes": 4, "num_keypoints": 3, "min_size": 96, "max_size": 160}
    torch.manual_seed(0)
    model = build_model(**args, weights="none")
    with torch.no_grad():
        model.roi_heads.box_predictor.cls_score.bias.copy_(torch.tensor([-10.0, 10.0, -10.0, -10.0]))
        model.roi_heads.mask_predictor.mask_fcn_logits.bias.fill_(10.0)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_atomic(model_file_payload(model, args, {}, DEMO_SCHEMA.to_dict()), run_dir / "model.pt")
    return run_dir / "model.pt"


def run_with_model(ws, slug: str, tmp_path: Path) -> int:  # noqa: ANN001
    """A runs row whose folder holds the model of :func:`write_model`."""
    run = make_run(ws, slug)
    write_model(tmp_path / "run")
    with ws.store.transaction() as s:
        set_run_dir(s, run, str(tmp_path / "run"))
    return run
