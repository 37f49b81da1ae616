"""Prediction: torchvision outputs -> Instances, and a tiny real model.pt through the service and the CLI."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.support.predictions import make_run
from workbench.domain import KeypointSchema, ValidationError, WorkbenchError
from workbench.geometry import rle_to_mask
from workbench.services import annotate, review
from workbench.store import images as image_repo
from workbench.store import projects as project_repo
from workbench.train.checkpoint import save_atomic
from workbench.train.dataset import TrainingSchema
from workbench.train.model import build_model, model_file_payload
from workbench.train.predict import output_to_instances

torch.set_num_threads(2)

SCHEMA = TrainingSchema(
    ("circle", "square", "triangle"),
    (("triangle", KeypointSchema(("apex", "left", "right"), flip_pairs=((1, 2),))),),
)


def _output(h: int = 20, w: int = 30) -> dict[str, torch.Tensor]:
    masks = torch.zeros(4, 1, h, w)
    masks[0, 0, 2:8, 3:9] = 0.9  # triangle
    masks[1, 0, 10:15, 10:20] = 0.7  # square
    masks[2, 0, 0:5, 0:5] = 0.4  # below the mask threshold: empty, dropped
    masks[3, 0, 5:9, 5:9] = 0.9  # low score
    kps = torch.tensor([[[4.0, 2.0, 1.0], [3.0, 8.0, 1.0], [9.0, 8.0, 1.0], [1.0, 1.0, 1.0]]] * 4)
    kps[0, 2, 0] = 99.0  # outside the image: clipped to the border
    return {
        "boxes": torch.tensor([[3.0, 2.0, 9.0, 8.0], [10.0, 10.0, 20.0, 15.0], [0, 0, 5, 5], [5, 5, 9, 9]]),
        "labels": torch.tensor([3, 2, 1, 1]),
        "scores": torch.tensor([0.9, 0.8, 0.7, 0.1]),
        "masks": masks,
        "keypoints": kps,
    }


def test_output_to_instances() -> None:
    tri, sq = output_to_instances(_output(), SCHEMA, (30, 20), score_threshold=0.5)
    assert (tri.category, sq.category) == ("triangle", "square")
    assert tri.source == "predicted" and tri.score == pytest.approx(0.9)
    assert rle_to_mask(tri.rle).sum() == 36 and tri.rle.size_hw == (20, 30)
    assert tri.bbox_xywh == (3.0, 2.0, 6.0, 6.0)
    assert tri.keypoints == (4.0, 2.0, 2, 3.0, 8.0, 2, 30.0, 8.0, 2)  # K=3 of the head's 4, clipped, visible
    assert sq.keypoints is None  # squares have no keypoint schema
    assert len(output_to_instances(_output(), SCHEMA, (30, 20))) == 3  # the empty mask is still dropped


def test_output_with_an_unknown_label_or_wrong_size_is_refused() -> None:
    out = _output()
    out["labels"] = torch.tensor([7, 2, 1, 1])
    with pytest.raises(ValidationError, match="label 7"):
        output_to_instances(out, SCHEMA, (30, 20))
    with pytest.raises(ValidationError, match="image is 31x20"):
        output_to_instances(_output(), SCHEMA, (31, 20))


def _write_model(run_dir: Path) -> Path:
    """A tiny untrained model biased to see a confident circle with a full mask in every proposal."""
    args = {"backbone": "tiny", "num_classes": 4, "num_keypoints": 3, "min_size": 96, "max_size": 160}
    torch.manual_seed(0)
    model = build_model(**args, weights="none")
    with torch.no_grad():
        model.roi_heads.box_predictor.cls_score.bias.copy_(torch.tensor([-10.0, 10.0, -10.0, -10.0]))
        model.roi_heads.mask_predictor.mask_fcn_logits.bias.fill_(10.0)
    run_dir.mkdir(parents=True, exist_ok=True)
    save_atomic(model_file_payload(model, args, {}, SCHEMA.to_dict()), run_dir / "model.pt")
    return run_dir / "model.pt"


def _run_with_model(ws, slug: str, tmp_path: Path) -> int:  # noqa: ANN001
    from workbench.store.runs import set_run_dir

    run = make_run(ws, slug)
    _write_model(tmp_path / "run")
    with ws.store.transaction() as s:
        set_run_dir(s, run, str(tmp_path / "run"))
    return run


def test_predict_images_stores_model_outputs(ws, demo, tmp_path) -> None:  # noqa: ANN001
    run = _run_with_model(ws, demo, tmp_path)
    val = review.select_images(ws, demo, split="val")
    got = review.predict_images(ws, demo, run, val, score_threshold=0.5, chunk_size=1)
    assert got.images == len(val) and got.predictions > 0
    preds = review.list_predictions(ws, demo, run_id=run)
    assert {p.image_id for p in preds} == {r.id for r in val}
    sizes = {r.id: (r.height, r.width) for r in val}
    for p in preds:
        assert p.instance.category == "circle" and p.score >= 0.5 and p.status == "pending"
        assert p.instance.rle.size_hw == sizes[p.image_id] and p.instance.area > 0
        assert p.instance.keypoints is None  # circles carry no keypoints
    # and they review like any other: accept one, it is an annotation now
    ann_id = review.accept(ws, demo, preds[0].id).annotation_ids[0]
    assert ann_id in {i.id for i in annotate.load_image(ws, demo, preds[0].image_id).instances}


def test_run_without_model_file_is_explained(ws, demo) -> None:  # noqa: ANN001
    run = make_run(ws, demo)
    with pytest.raises(WorkbenchError, match="has no model file"):
        review.predict_images(ws, demo, run, review.select_images(ws, demo))


def test_select_images(ws, demo) -> None:  # noqa: ANN001
    every = review.select_images(ws, demo)
    assert len(every) == 6
    assert review.select_images(ws, demo, images=[str(every[1].id), every[2].file_name]) == every[1:3]
    assert review.select_images(ws, demo, unlabeled=True) == []
    with pytest.raises(ValidationError, match="choose one"):
        review.select_images(ws, demo, split="val", unlabeled=True)
    with pytest.raises(Exception, match="no image 'nope.png'"):
        review.select_images(ws, demo, images=["nope.png"])


def test_cli_predict_command(ws, demo, tmp_path, capsys) -> None:  # noqa: ANN001
    from workbench import cli

    run = _run_with_model(ws, demo, tmp_path)
    code = cli.main(
        ["predict", str(run), "--split", "val", "--score-threshold", "0.5", "--workspace", str(ws.root)]
    )
    assert code == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert re.search(r"run \d+: (1 prediction|\d+ predictions) on (1 image|\d+ images) of", out), out
    with ws.store.transaction() as s:
        val_ids = {r.id for r in image_repo.list_images(s, project_repo.project_id(s, demo), split="val")}
    assert {p.image_id for p in review.list_predictions(ws, demo, run_id=run)} == val_ids
    assert cli.main(["predict", "999", "--workspace", str(ws.root)]) == 1
    assert "no run with id 999" in capsys.readouterr().err


def test_predicted_masks_have_a_real_shape(ws, demo, tmp_path) -> None:  # noqa: ANN001
    run = _run_with_model(ws, demo, tmp_path)
    (im,) = review.select_images(ws, demo, images=[review.select_images(ws, demo)[0].file_name])
    review.predict_images(ws, demo, run, [im], score_threshold=0.5)
    for p in review.list_predictions(ws, demo, run_id=run):
        m = rle_to_mask(p.instance.rle)
        x, y, w, h = p.instance.bbox_xywh
        assert m.sum() == pytest.approx(p.instance.area)
        ys, xs = np.nonzero(m)
        assert xs.min() >= np.floor(x) - 1 and xs.max() <= np.ceil(x + w) + 1  # the mask lies in its box
        assert ys.min() >= np.floor(y) - 1 and ys.max() <= np.ceil(y + h) + 1
