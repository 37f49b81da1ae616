"""AppTest for the Train, Evaluate and Review pages on real workspaces (runs, run folders, predictions)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from tests.support.apptest import app, button, make_project, running_run, send_action, texts
from tests.support.predictions import as_prediction, ground_truth, make_run
from workbench.domain import Instance
from workbench.images.overlay import Layer, draw_overlay
from workbench.services import annotate, classes, evaluation, review, training
from workbench.services.demo import create_demo_project
from workbench.services.projects import create_project
from workbench.services.workspace import Workspace
from workbench.store import projects as project_repo
from workbench.store import runs as run_repo

# --------------------------------------------------------------------------------------- empty states


@pytest.mark.parametrize(
    ("page", "message"),
    [
        ("train", "No runs yet"),
        ("evaluate", "No finished training run yet"),
        ("review", "No runs yet"),
    ],
)
def test_empty_project_says_what_to_do(ws: Workspace, page: str, message: str) -> None:
    slug = create_project(ws, "Empty").slug
    at = app(page, slug)
    assert message in texts(at)
    if page == "train":
        assert "no annotated images to train on" in texts(at)
        assert not [b for b in at.button if b.label == "Train"]
        assert "Press **Train**" not in texts(at)  # there is no Train button to press


# ---------------------------------------------------------------------------------------------- train


def test_train_page_shows_running_run_progress_and_cancels_it(ws: Workspace, tmp_path: Path) -> None:
    slug = create_demo_project(ws, num_images=4).slug
    rid = running_run(ws, slug, tmp_path)
    at = app("train", slug)
    df = at.dataframe[0].value
    assert list(df["name"]) == ["busy run"] and list(df["status"]) == ["running"] and list(df["progress"]) == ["6/12"]
    bars = [e for e in at.main if getattr(e, "type", "") == "progress"] or at.get("progress")
    assert bars, "no progress bar"
    text = bars[0].proto.text
    assert "epoch 2/3" in text and "iteration 2/4" in text and "ETA 1m 35s" in text  # step 6 of 12 is in epoch 2
    assert "step 6 loss 1.25" in at.code[0].value
    charts = at.get("vega_lite_chart")
    assert len(charts) == 2  # losses and validation AP
    button(at, "Cancel run").click().run()
    assert not at.exception, at.exception
    with ws.store.transaction() as s:
        info = run_repo.get_run(s, rid)
    assert info.status == "cancelled" and "not running" in (info.error or "")


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({"epoch": 0, "iter": 0, "epochs": 3, "iters_per_epoch": 4}, "epoch 1/3 · iteration 0/4"),  # starting
        ({"epoch": 0, "iter": 3, "epochs": 3, "iters_per_epoch": 4}, "epoch 1/3 · iteration 3/4"),
        ({"epoch": 1, "iter": 0, "epochs": 3, "iters_per_epoch": 4}, "epoch 1/3 · iteration 4/4"),  # validating
        ({"epoch": 1, "iter": 2, "epochs": 3, "iters_per_epoch": 4}, "epoch 2/3 · iteration 2/4"),
        ({"epoch": 3, "iter": 0, "epochs": 3, "iters_per_epoch": 4}, "epoch 3/3 · iteration 4/4"),  # finished
        ({"epoch": 1, "iter": 2}, "epoch 2/? · iteration 2/?"),
    ],
)
def test_epoch_text_counts_from_one(status: dict, expected: str) -> None:
    from workbench.services.training import epoch_text

    assert epoch_text(status) == expected


def test_train_caption_reads_epochs_and_no_pretrained_weights(ws: Workspace) -> None:
    slug = create_demo_project(ws, num_images=4).slug
    at = app("train", slug)
    caption = texts(at)
    assert "epochs on" in caption and "epoches" not in caption
    assert "no pretrained weights" in caption and "none weights" not in caption


def test_gpus_setting_only_on_a_machine_with_several_gpus(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    slug = create_demo_project(ws, num_images=4).slug
    for count in (0, 1):
        monkeypatch.setattr(training, "gpu_count", lambda count=count: count)
        at = app("train", slug)
        assert not [n for n in at.number_input if n.label == "GPUs"], count
    monkeypatch.setattr(training, "gpu_count", lambda: 4)
    at = app("train", slug)
    (gpus,) = [n for n in at.number_input if n.label == "GPUs"]
    assert gpus.value == 1 and gpus.min == 1 and gpus.max == 4


def test_gpus_setting_goes_into_the_run_config(ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    slug = create_demo_project(ws, num_images=4).slug
    running_run(ws, slug, tmp_path)  # the cpu is busy: the new run waits, no worker starts here
    monkeypatch.setattr(training, "gpu_count", lambda: 2)
    at = app("train", slug)
    next(s for s in at.selectbox if s.label == "Device").select("cpu")  # DDP over gloo: no GPU needed here
    next(n for n in at.number_input if n.label == "GPUs").set_value(2)
    next(t for t in at.text_input if t.label == "Run name (optional)").input("two ranks")
    button(at, "Train").click().run()
    assert not at.exception, at.exception
    new = next(r for r in training.list_runs(ws, slug) if r.name == "two ranks")
    assert new.config["gpus"] == 2


def test_failed_run_shows_its_error(ws: Workspace, tmp_path: Path) -> None:
    slug = create_demo_project(ws, num_images=4).slug
    rid = running_run(ws, slug, tmp_path)
    with ws.store.transaction() as s:
        run_repo.finish_run(s, rid, "failed", error="CUDA out of memory (batch 64)")
    at = app("train", slug)
    assert any("CUDA out of memory (batch 64)" in e.value for e in at.error)


def test_train_button_queues_a_run_behind_the_running_one(ws: Workspace, tmp_path: Path) -> None:
    slug = create_demo_project(ws, num_images=4).slug
    running_run(ws, slug, tmp_path)  # the cpu is busy: the new run waits, no worker starts here
    at = app("train", slug)
    next(s for s in at.selectbox if s.label == "Device").select("cpu")
    next(n for n in at.number_input if n.label == "Epochs").set_value(2)
    next(t for t in at.text_input if t.label == "Run name (optional)").input("my first model")
    button(at, "Train").click().run()
    assert not at.exception, at.exception
    assert "queued" in texts(at)
    runs = training.list_runs(ws, slug)
    new = next(r for r in runs if r.name == "my first model")
    assert new.status == "queued" and new.config["epochs"] == 2 and new.device == "cpu"
    run_dir = Path(new.run_dir)
    assert (run_dir / "dataset" / "coco_train.json").exists() and (run_dir / "config.json").exists()
    assert "my first model" in at.selectbox(key="train_run_pick").format_func(new.id)


@pytest.mark.parametrize(("n", "cuda", "backbone", "epochs"), [(6, False, "tiny", 30), (1000, True, "resnet50_fpn_v2", 12)])
def test_default_config_fits_size_and_device(n: int, cuda: bool, backbone: str, epochs: int) -> None:
    cfg = training.default_config(n, cuda=cuda)
    assert (cfg.backbone, cfg.epochs, cfg.device) == (backbone, epochs, "cuda" if cuda else "cpu")
    assert training.format_eta(3725) == "1h 02m"


# ------------------------------------------------------------------------------------------- evaluate


@pytest.fixture
def evaluated(ws: Workspace) -> tuple[str, int]:
    from tests.support.training import trained_run

    slug = create_demo_project(ws, num_images=6).slug
    rid = trained_run(ws, slug, "tiny")
    evaluation.evaluate_run(ws, slug, rid, split="val")
    return slug, rid


def test_evaluate_page_renders_a_real_evaluation(ws: Workspace, evaluated: tuple[str, int]) -> None:
    slug, rid = evaluated
    at = app("evaluate", slug)
    metrics = {m.label: m.value for m in at.metric}
    assert {"Mask AP", "Box AP", "Keypoint AP", "Mean IoU (label maps)"} <= set(metrics)
    saved = evaluation.load_evaluation(ws, slug, rid, "val").metrics
    assert metrics["Mask AP"] == f"{saved['types']['segm']['stats']['AP']:.3f}"
    per_class = at.dataframe[0].value
    assert set(per_class["class"]) == {"circle", "square", "triangle"}
    assert at.get("download_button"), "no report download"
    assert "Train another run to compare" in texts(at)


def test_evaluate_button_evaluates_another_split(ws: Workspace, evaluated: tuple[str, int]) -> None:
    slug, rid = evaluated
    at = app("evaluate", slug)
    at.selectbox(key="eval_split").select("train").run()
    assert "has not been evaluated on train yet" in texts(at)
    button(at, "Evaluate").click().run()
    assert not at.exception, at.exception
    assert evaluation.load_evaluation(ws, slug, rid, "train") is not None
    assert {m.label for m in at.metric} >= {"Mask AP", "Box AP"}


# --------------------------------------------------------------------------------------------- review


def _stored_predictions(ws: Workspace, slug: str) -> tuple[int, int, list[int]]:
    """Two predictions made from an image's ground truth, stored for a runs row."""
    run = make_run(ws, slug)
    image_id = training.labelled_dataset(ws, slug, None).items[0].image.id
    size_wh, gts = ground_truth(ws, slug, image_id)
    preds = [as_prediction(gts[0], size_wh, 0.9), as_prediction(gts[0], size_wh, 0.3, category="square"
             if gts[0].category != "square" else "circle")]
    review.store_run_predictions(ws, slug, run, {image_id: preds})
    ids = [p.id for p in sorted(review.list_predictions(ws, slug, run_id=run), key=lambda p: -p.score)]
    return run, image_id, ids


def image_picker(at: AppTest):  # noqa: ANN201
    """The Review page's image selectbox (unkeyed, so that the browser shows its labels fresh)."""
    return next(s for s in at.selectbox if s.label.startswith("Image ("))


def canvas_data(at: AppTest) -> dict:
    """The data the Review page gave its canvas (the annotator in review mode)."""
    (comp,) = [e for e in at.main if getattr(e, "type", "") == "bidi_component"]
    return json.loads(comp.proto.json)


def canvas_action(at: AppTest, kind: str, prediction_id: int) -> AppTest:
    """What a click on Accept or Reject in the canvas sends."""
    data = canvas_data(at)
    payload = {"kind": kind, "prediction_id": prediction_id, "image_id": data["image"]["id"], "epoch": data["epoch"]}
    return send_action(at, {**payload, "seq": 1})


def test_review_accept_and_reject_change_the_store(ws: Workspace) -> None:
    slug = create_demo_project(ws, num_images=3).slug
    run, image_id, (high, low) = _stored_predictions(ws, slug)
    at = app("review", slug)
    assert image_picker(at).value == image_id
    data = canvas_data(at)
    assert data["mode"] == "review" and data["image"]["id"] == image_id
    preds = {s["prediction_id"]: s for s in data["instances"] if s["role"] == "prediction"}
    assert set(preds) == {high, low} and preds[high]["status"] == "pending" and preds[high]["polygons"]
    canvas_action(at, "accept", high)
    assert "Accepted as annotation" in texts(at)
    canvas_action(at, "reject", low)
    status = {p.id: (p.status, p.annotation_id) for p in review.list_predictions(ws, slug, run_id=run)}
    assert status[high][0] == "accepted" and status[low] == ("rejected", None)

    accepted = [i for i in annotate.load_image(ws, slug, image_id).instances if i.id == status[high][1]]
    assert accepted and accepted[0].source == "predicted"
    shapes = canvas_data(at)["instances"]
    assert {s["prediction_id"]: s["status"] for s in shapes if s["role"] == "prediction"} == {
        high: "accepted", low: "rejected"
    }
    assert status[high][1] in {s["id"] for s in shapes if s["role"] == "truth"}  # now ground truth


def test_review_accept_all_above_threshold(ws: Workspace) -> None:
    slug = create_demo_project(ws, num_images=3).slug
    run, _, (high, low) = _stored_predictions(ws, slug)
    at = app("review", slug)
    at.number_input(key="review_accept_threshold").set_value(0.5)
    at.button(key="review_accept_all").click().run()
    assert "Accepted 1 prediction with" in texts(at)
    status = {p.id: p.status for p in review.list_predictions(ws, slug, run_id=run)}
    assert status == {high: "accepted", low: "pending"}


def test_review_canvas_lists_every_prediction_above_the_min_score(ws: Workspace) -> None:
    """The canvas's own list holds every prediction (no Streamlit row per prediction: an untrained
    model's 100 detections made 100 rows of buttons), highest score first; Min score starts at 0.05
    for a run without an evaluation and filters."""
    slug = create_demo_project(ws, num_images=3).slug
    run = make_run(ws, slug)
    image_id = training.labelled_dataset(ws, slug, None).items[0].image.id
    size_wh, gts = ground_truth(ws, slug, image_id)
    n = 25
    scores = [0.9 - 0.035 * i for i in range(n)]  # down to 0.06
    review.store_run_predictions(ws, slug, run, {image_id: [as_prediction(gts[0], size_wh, s) for s in scores]})
    by_score = sorted(review.list_predictions(ws, slug, run_id=run), key=lambda p: -p.score)
    at = app("review", slug)
    assert at.slider(key="review_min_score").value == 0.05
    listed = [s["prediction_id"] for s in canvas_data(at)["instances"] if s["role"] == "prediction"]
    assert listed == [p.id for p in by_score]
    at.slider(key="review_min_score").set_value(0.5).run()
    listed = [s["prediction_id"] for s in canvas_data(at)["instances"] if s["role"] == "prediction"]
    assert listed == [p.id for p in by_score if p.score >= 0.5]


def test_review_error_filter(ws: Workspace) -> None:
    slug = create_demo_project(ws, num_images=3).slug
    _, image_id, _ = _stored_predictions(ws, slug)  # one exact prediction, one of another class on the same object
    at = app("review", slug)
    at.selectbox(key="review_error").select("spurious").run()  # the second prediction finds nothing of its class
    assert image_picker(at).value == image_id
    at.selectbox(key="review_error").select("wrong_class").run()
    assert not at.exception
    assert "No images with predictions of run" in texts(at)
    assert not [s for s in at.selectbox if s.label.startswith("Image (")]


def test_draw_overlay_tints_shapes_and_scales_to_the_display_copy() -> None:
    img = Image.new("RGB", (50, 40), (0, 0, 0))
    square = Instance("thing", polygons=((20.0, 20.0, 80.0, 20.0, 80.0, 60.0, 20.0, 60.0),))
    out = draw_overlay(img, (100, 80), [Layer([square])], {"thing": "#ff0000"}, opacity=0.5)
    assert out.size == (50, 40)
    inside, outside = out.getpixel((25, 20)), out.getpixel((5, 5))
    assert inside[0] > 100 and inside[1] == 0 and outside == (0, 0, 0)
    none = draw_overlay(img, (100, 80), [Layer([square], filled=False)], {"thing": "#ff0000"})
    assert none.getpixel((25, 20)) == (0, 0, 0) and none.getpixel((10, 15))[0] > 100  # outline only


def test_review_accept_says_when_keypoints_no_longer_fit_the_class(ws: Workspace) -> None:
    """The class lost its keypoints after the prediction was stored: the mask is accepted, the
    keypoints are dropped and the page says so (not a silent drop, not a malformed annotation)."""
    import numpy as np

    from workbench.domain import Category, KeypointSchema
    from workbench.geometry import mask_to_rle

    slug = create_demo_project(ws, num_images=3).slug
    cat = classes.add_category(ws, slug, Category(name="pose", keypoints=KeypointSchema(names=("a", "b"))))
    run = make_run(ws, slug)
    im = annotate.list_images(ws, slug)[0]
    m = np.zeros((im.height, im.width), np.uint8)
    m[10:30, 10:30] = 1
    kps = (12.0, 12.0, 2, 20.0, 20.0, 2)
    review.store_run_predictions(ws, slug, run, {im.id: [Instance("pose", rle=mask_to_rle(m), keypoints=kps, score=0.9)]})
    (pred,) = review.list_predictions(ws, slug, run_id=run)
    classes.update_category(ws, slug, cat.id, keypoints=None)  # type: ignore[arg-type]
    at = app("review", slug)
    canvas_action(at, "accept", pred.id)
    (warning,) = [w.value for w in at.warning]
    assert "Accepted as annotation" in warning and "has no keypoints now" in warning and "mask was kept" in warning
    ann_id = review.list_predictions(ws, slug, run_id=run)[0].annotation_id
    (new,) = [i for i in annotate.load_image(ws, slug, im.id).instances if i.id == ann_id]
    assert new.keypoints is None and new.polygons


def test_review_opens_on_the_newest_run_that_has_a_model(ws: Workspace) -> None:
    from tests.support.predictions import make_run
    from workbench.store import runs as run_repo

    slug = make_project(ws, n_images=1)
    good = make_run(ws, slug, "good")
    bad = make_run(ws, slug, "crashed")  # newer, but it failed: nothing to predict or review with
    with ws.store.transaction() as s:
        run_repo.finish_run(s, good, "succeeded")
        run_repo.finish_run(s, bad, "failed", error="boom")
    at = app("review", slug)
    assert not at.exception, at.exception
    picker = next(s for s in at.selectbox if s.label == "Run")
    assert picker.value == good
    assert "succeeded" not in picker.format_func(good)  # status lives in the page, not in the label


def _early_stopped_run(
    ws: Workspace, slug: str, tmp_path: Path, epoch: int, epochs: int, best_ap: float
) -> int:
    """A run that succeeded after ``epoch`` of ``epochs`` epochs (what early stopping leaves)."""
    run_dir = tmp_path / "runs" / f"done{epoch}"
    run_dir.mkdir(parents=True)
    status = {"status": "succeeded", "epoch": epoch, "epochs": epochs, "iter": 0, "iters_per_epoch": 1,
              "step": epoch, "total_steps": epochs, "loss": 0.7, "best_ap": best_ap, "best_epoch": 1,
              "device": "cpu"}
    with ws.store.transaction() as s:
        rid = run_repo.create_run(
            s, project_repo.project_id(s, slug), "stopped", {"early_stopping_patience": 5}, str(run_dir), device="cpu"
        ).id
        run_repo.claim_next_queued_run(s, "cpu")
        run_repo.update_run_progress(s, rid, status)
        run_repo.finish_run(s, rid, "succeeded")
    (run_dir / "status.json").write_text(json.dumps(status))
    return rid


@pytest.mark.parametrize(("epoch", "epochs", "says_early"), [(6, 150, True), (30, 30, False)])
def test_a_run_that_stopped_early_says_so(ws: Workspace, tmp_path: Path, epoch: int, epochs: int, says_early: bool) -> None:
    # Train with the defaults on a small set: mask AP stays 0 and early stopping ends the run at epoch
    # 6 of 150; the panel says it stopped early, not only 'Finished' beside 'epoch 6/150'.
    slug = create_demo_project(ws, num_images=4).slug
    _early_stopped_run(ws, slug, tmp_path, epoch, epochs, 0.0)
    at = app("train", slug)
    warned = [w.value for w in at.warning if "Stopped early" in w.value]
    if says_early:
        assert warned == [
            "Stopped early after epoch 6 of 150: validation mask AP did not improve for 5 epochs (best 0.000 "
            "at epoch 1; the model is that epoch's). A model still at 0 often needs more epochs to find "
            "anything: set *Stop early after* to 0 in the settings to run them all."
        ]
    else:
        assert warned == []
    assert any(s.value.startswith("Finished.") for s in at.success)


@pytest.mark.parametrize(("value", "expected"), [(0, None), (12, 12)])
def test_early_stopping_setting_goes_into_the_run_config(ws: Workspace, tmp_path: Path, value: int, expected: int | None) -> None:
    slug = create_demo_project(ws, num_images=4).slug
    running_run(ws, slug, tmp_path)  # the cpu is busy: the new run waits, no worker starts here
    at = app("train", slug)
    patience = next(n for n in at.number_input if n.label.startswith("Stop early after"))
    assert patience.value == 5  # the default config's
    next(s for s in at.selectbox if s.label == "Device").select("cpu")
    patience.set_value(value)
    next(t for t in at.text_input if t.label == "Run name (optional)").input("patient")
    button(at, "Train").click().run()
    assert not at.exception, at.exception
    new = next(r for r in training.list_runs(ws, slug) if r.name == "patient")
    assert new.config["early_stopping_patience"] == expected
