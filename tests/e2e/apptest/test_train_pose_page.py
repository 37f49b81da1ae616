"""AppTest: the Train page's keypoint-heatmap task: its settings go into the run's config, and a
heatmap run shows PCK, not mask AP."""

from __future__ import annotations

from pathlib import Path

from tests.support.apptest import app, button, running_run, texts
from workbench.services import training
from workbench.services.demo import create_demo_project
from workbench.services.workspace import Workspace


def test_keypoints_task_settings_go_into_the_run_config(ws: Workspace, tmp_path: Path) -> None:
    slug = create_demo_project(ws, num_images=4).slug
    running_run(ws, slug, tmp_path)  # the cpu is busy: the new run waits, no worker starts here
    at = app("train", slug)
    at.selectbox(key="train_task").select("keypoints-heatmap").run()
    assert not at.exception, at.exception
    assert "hourglass" in texts(at)  # the caption's defaults
    at.selectbox(key="train_hm_arch").select("unet").run()
    at.number_input(key="train_hm_sigma").set_value(3.0)
    at.number_input(key="train_hm_w").set_value(48)
    next(s for s in at.selectbox if s.label == "Device").select("cpu")
    next(t for t in at.text_input if t.label == "Run name (optional)").input("pose run")
    button(at, "Train").click().run()
    assert not at.exception, at.exception
    new = next(r for r in training.list_runs(ws, slug) if r.name == "pose run")
    cfg = new.config
    assert cfg["task"] == "keypoints-heatmap" and cfg["arch"] == "unet" and cfg["encoder"] is None
    assert cfg["heatmap"]["sigma"] == 3.0 and cfg["heatmap"]["input_size"] == [48, 64] and cfg["weights"] == "none"
    at.selectbox(key="train_run_pick").select(new.id).run()
    assert not at.exception, at.exception
    assert any(m.label == "Best PCK" for m in at.metric)


def test_early_stop_text_names_the_tasks_metric() -> None:
    from workbench.ui.app_pages.train import early_stop_text

    status = {"epoch": 6, "epochs": 20, "best_ap": 0.81, "best_epoch": 3}
    text = early_stop_text(status, {"task": "keypoints-heatmap", "early_stopping_patience": 3})
    assert "validation PCK did not improve for 3 epochs" in text and "best 0.810 at epoch 3" in text
    assert "mask AP" in early_stop_text(status, {"task": "instance", "early_stopping_patience": 3})
