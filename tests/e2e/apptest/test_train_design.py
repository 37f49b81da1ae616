"""The Train page's detector design (issue 16): the anchor check draws the boxes and anchors, "Use
fitted anchors" fills the fields, and the settings go into the run's config."""

from __future__ import annotations

from pathlib import Path

from tests.support.apptest import app, button, running_run
from workbench.services import anchors, training
from workbench.services.demo import create_demo_project
from workbench.services.workspace import Workspace


def test_fitted_anchors_and_design_settings_go_into_the_run_config(ws: Workspace, tmp_path: Path) -> None:
    slug = create_demo_project(ws, num_images=4).slug
    running_run(ws, slug, tmp_path)  # the cpu is busy: the new run waits, no worker starts here
    at = app("train", slug)
    fields = {t.label: t for t in at.text_input}
    sizes = fields["Anchor sizes per FPN level (px; levels split by ';')"]
    assert sizes.value == "16; 32; 64; 128"  # the tiny backbone's own
    button(at, "Check the anchors on the training boxes").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    plots = [e.proto.imgs[0].caption for e in at.get("image")]
    assert plots == ["Training boxes (after the resize) and the anchors, size against aspect ratio"]
    table = next(d.value for d in at.dataframe if "anchors" in d.value.columns)
    assert {"current", "fitted"} <= set(table["anchors"]) and "IoU ≥ 0.7" in table.columns
    button(at, "Use fitted anchors").click().run()
    fitted = anchors.anchor_report(ws, slug, fit=True).fitted
    fields = {t.label: t for t in at.text_input}
    assert fields["Anchor sizes per FPN level (px; levels split by ';')"].value == anchors.format_sizes(fitted["anchor_sizes"])
    next(s for s in at.selectbox if s.label == "RoI pooling").select("roi_pool")
    next(s for s in at.selectbox if s.label == "Mask resolution").select(56)
    next(s for s in at.selectbox if s.label == "Device").select("cpu")
    next(n for n in at.number_input if n.label == "RoIs sampled per image").set_value(64)
    next(t for t in at.text_input if t.label == "Run name (optional)").input("designed")
    button(at, "Train").click().run()
    assert not at.exception, at.exception
    new = next(r for r in training.list_runs(ws, slug) if r.name == "designed")
    det = new.config["detector"]
    assert det["anchor_sizes"] == fitted["anchor_sizes"] and det["aspect_ratios"] == fitted["aspect_ratios"]
    assert (det["roi_pooling"], det["mask_resolution"], det["mask_head_depth"]) == ("roi_pool", 56, None)
    assert new.config["box_batch_size_per_image"] == 64 and new.config["rpn_batch_size_per_image"] is None
