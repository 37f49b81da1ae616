"""The Train page offers the task: semantic shows its architecture, encoder, size and loss, and the
run it starts carries them in its config."""

from __future__ import annotations

from pathlib import Path

from tests.support.apptest import app, button, running_run
from workbench.services import training
from workbench.services.demo import create_demo_project
from workbench.services.workspace import Workspace


def test_a_semantic_run_from_the_train_page(ws: Workspace, tmp_path: Path) -> None:
    slug = create_demo_project(ws, num_images=4).slug
    running_run(ws, slug, tmp_path)  # the cpu is busy: the new run waits, no worker starts here
    at = app("train", slug)
    assert "Architecture" not in [s.label for s in at.selectbox]  # instance (Mask R-CNN) first
    next(s for s in at.selectbox if s.label == "Task").select("semantic").run()
    assert not at.exception, at.exception
    boxes = {s.label: s for s in at.selectbox}
    assert boxes["Architecture"].value == "unet" and boxes["Encoder"].value == "resnet18"  # the CPU defaults
    boxes["Architecture"].select("fcn").run()
    boxes = {s.label: s for s in at.selectbox}
    assert boxes["Encoder"].options == ["resnet50", "resnet101"]
    boxes["Weights"].select("none")
    boxes["Device"].select("cpu")
    boxes["Loss"].select("ce")
    next(n for n in at.number_input if n.label == "Image size (px, square)").set_value(128)
    next(t for t in at.text_input if t.label == "Run name (optional)").input("seg")
    button(at, "Train").click().run()
    assert not at.exception, at.exception
    cfg = next(r for r in training.list_runs(ws, slug) if r.name == "seg").config
    assert (cfg["task"], cfg["arch"], cfg["encoder"], cfg["image_size"], cfg["seg_loss"]) == (
        "semantic", "fcn", "resnet50", 128, "ce")


def test_review_overlays_a_semantic_runs_label_map_with_class_toggles(ws: Workspace, tmp_path: Path) -> None:

    from tests.support.semantic import semantic_run_with_stored_map
    from workbench.services import review, semantic

    slug = create_demo_project(ws, num_images=2).slug
    rid, rec, pred, names = semantic_run_with_stored_map(ws, slug, tmp_path)
    review.store_run_predictions(ws, slug, rid, {rec.id: semantic.components_to_instances(pred, names)})
    at = app("review", slug)
    captions = [e.proto.imgs[0].caption for e in at.get("image")]
    assert captions == ["ground truth", "predicted"]
    shown = next(m for m in at.multiselect if m.label == "Classes shown")
    assert shown.value == names
    shown.set_value([]).run()
    assert not at.exception, at.exception
    assert len(review.list_predictions(ws, slug, run_id=rid, status="pending")) == 2  # the two components


def test_the_evaluate_page_shows_a_semantic_evaluation(ws: Workspace, tmp_path: Path) -> None:
    import json

    import numpy as np

    from tests.support.semantic import semantic_run_with_stored_map
    from workbench.evaluate.semantic import confusion_metrics
    from workbench.store import runs as run_repo

    slug = create_demo_project(ws, num_images=2).slug
    rid, _rec, _pred, names = semantic_run_with_stored_map(ws, slug, tmp_path)
    with ws.store.transaction() as s:
        run_repo.claim_next_queued_run(s, "cpu")
        run_repo.finish_run(s, rid, "succeeded")
    m = {**confusion_metrics(np.array([[50, 5, 0, 0], [4, 30, 0, 0], [0, 0, 20, 1], [0, 0, 2, 8]]), names),
         "task": "semantic", "num_images": 2}
    out = tmp_path / "semrun" / "eval" / "train"  # two demo images: both in train, the page's split
    out.mkdir(parents=True)
    (out / "metrics.json").write_text(json.dumps(m))
    (out / "report.html").write_text("<html></html>")
    at = app("evaluate", slug)
    shown = {x.label: x.value for x in at.metric}
    assert shown["Mean IoU"] == f"{m['mean_iou']:.3f}" and shown["Frequency-weighted IoU"] == f"{m['fw_iou']:.3f}"
    assert "Mask AP" not in shown
