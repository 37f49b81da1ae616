"""The Train page's mosaic / copy-paste settings reach the run's config (off by default)."""

from __future__ import annotations

from pathlib import Path

from tests.support.apptest import app, button, running_run
from workbench.services import training
from workbench.services.demo import create_demo_project
from workbench.services.workspace import Workspace


def test_mosaic_and_copy_paste_settings_go_into_the_run_config(ws: Workspace, tmp_path: Path) -> None:
    slug = create_demo_project(ws, num_images=4).slug
    running_run(ws, slug, tmp_path)  # the cpu is busy: the new run waits, no worker starts here
    at = app("train", slug)
    inputs = {n.label: n for n in at.number_input}
    mosaic = inputs["Mosaic (share of images)"]
    paste = inputs["Copy-paste (share of images)"]
    close = inputs["Last epochs without mosaic / copy-paste"]
    assert (mosaic.value, paste.value, close.value) == (0.0, 0.0, 0)  # the default config: off
    next(s for s in at.selectbox if s.label == "Device").select("cpu")
    mosaic.set_value(0.8)
    paste.set_value(0.3)
    close.set_value(4)
    next(t for t in at.text_input if t.label == "Run name (optional)").input("mixed")
    button(at, "Train").click().run()
    assert not at.exception, at.exception
    new = next(r for r in training.list_runs(ws, slug) if r.name == "mixed")
    assert (new.config["mosaic"], new.config["copy_paste"], new.config["close_mosaic"]) == (0.8, 0.3, 4)
