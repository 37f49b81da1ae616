"""Problems found by following whole user journeys across pages (import -> annotate -> export -> train)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.ui.test_pages_ml import _running_run, button, ws  # noqa: F401  (ws is a fixture)
from tests.ui.test_pages_ml import app as ml_app

from workbench.domain import Instance
from workbench.services import annotate, classes, training
from workbench.services.demo import create_demo_project
from workbench.services.workspace import Workspace
from workbench.store import projects as project_repo
from workbench.store import runs as run_repo
from workbench.ui.components.annotator import instance_to_payload, payload_to_instances

SQUARE = (6.0, 1.0, 9.0, 1.0, 9.0, 4.0)


def _box_only(keypoints: tuple[float, ...] | None = None) -> Instance:
    """What a CVAT or datumaro COCO file's ``segmentation: []`` annotation becomes on import."""
    return Instance(
        category="b", bbox_xywh=(2.0, 2.0, 3.0, 1.0), area=3.0, keypoints=keypoints, source="imported", id=15
    )


@pytest.mark.parametrize("keypoints", [None, (0.0, 0.0, 0, 0.0, 2.0, 1, 4.0, 1.0, 2)])
def test_saving_an_image_keeps_its_imported_box_only_annotation(keypoints: tuple[float, ...] | None) -> None:
    # Drawing a polygon beside an imported box sent both back; the box (no polygon, no visible
    # keypoints) was dropped, so the save deleted it from the store.
    box = _box_only(keypoints)
    items = [instance_to_payload(box), {"id": None, "category": "a", "polygons": [list(SQUARE)]}]
    out = payload_to_instances(items, [box])
    assert len(out) == 2
    kept = out[0]
    assert kept.id == 15 and kept.bbox_xywh == (2.0, 2.0, 3.0, 1.0) and kept.area == 3.0
    assert kept.keypoints == keypoints


def test_a_box_only_annotation_keeps_its_box_when_its_keypoints_move_or_its_class_changes() -> None:
    box = _box_only((0.0, 0.0, 0, 0.0, 2.0, 1, 4.0, 1.0, 2))
    item = instance_to_payload(box) | {"category": "a", "keypoints": [1.0, 1.0, 2, 0.0, 2.0, 1, 4.0, 1.0, 2]}
    (kept,) = payload_to_instances([item], [box])
    assert kept.category == "a" and kept.bbox_xywh == (2.0, 2.0, 3.0, 1.0)
    assert kept.keypoints == (1.0, 1.0, 2, 0.0, 2.0, 1, 4.0, 1.0, 2)


def test_a_keypoint_only_instance_still_gets_the_box_of_its_moved_keypoints() -> None:
    # its stored box is the box of its keypoints (what the save computed): moving them recomputes it
    kp = (1.0, 1.0, 2, 5.0, 3.0, 2)
    inst = Instance(category="a", keypoints=kp, bbox_xywh=(1.0, 1.0, 4.0, 2.0), area=8.0, id=3)
    moved = [1.0, 1.0, 2, 7.0, 4.0, 2]
    (out,) = payload_to_instances([instance_to_payload(inst) | {"keypoints": moved}], [inst])
    assert out.bbox_xywh is None and out.area is None
    # with every keypoint removed it has nothing left to save
    gone = [0.0, 0.0, 0, 0.0, 0.0, 0]
    assert payload_to_instances([instance_to_payload(inst) | {"keypoints": gone}], [inst]) == []


# ------------------------------------------------------------------- Train: runs that stop early


def _early_stopped_run(
    ws: Workspace, slug: str, tmp_path: Path, epoch: int, epochs: int, best_ap: float  # noqa: F811
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
def test_a_run_that_stopped_early_says_so(ws: Workspace, tmp_path: Path, epoch: int, epochs: int, says_early: bool) -> None:  # noqa: F811
    # Train with the defaults on a small set: mask AP stays 0, early stopping ends the run at epoch 6
    # of 150, and the panel said only 'Finished' beside 'epoch 6/150'.
    slug = create_demo_project(ws, num_images=4).slug
    _early_stopped_run(ws, slug, tmp_path, epoch, epochs, 0.0)
    at = ml_app("train", slug)
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
def test_early_stopping_setting_goes_into_the_run_config(ws: Workspace, tmp_path: Path, value: int, expected: int | None) -> None:  # noqa: F811
    slug = create_demo_project(ws, num_images=4).slug
    _running_run(ws, slug, tmp_path)  # the cpu is busy: the new run waits, no worker starts here
    at = ml_app("train", slug)
    patience = next(n for n in at.number_input if n.label.startswith("Stop early after"))
    assert patience.value == 5  # the default config's
    next(s for s in at.selectbox if s.label == "Device").select("cpu")
    patience.set_value(value)
    next(t for t in at.text_input if t.label == "Run name (optional)").input("patient")
    button(at, "Train").click().run()
    assert not at.exception, at.exception
    new = next(r for r in training.list_runs(ws, slug) if r.name == "patient")
    assert new.config["early_stopping_patience"] == expected


# ------------------------------------------------------------------- state kept across pages


def test_a_prepared_export_zip_goes_when_the_user_leaves_the_page(ws: Workspace) -> None:  # noqa: F811
    # Prepare the COCO zip, fix a polygon on Annotate, come back: the button offered the zip made
    # before the fix, as if it were the current data.
    from streamlit.util import calc_hash

    slug = _annotated(ws)
    at = ml_app("export", slug)
    button(at, "Prepare COCO zip").click().run()
    assert len(at.get("download_button")) == 1
    at.run()  # a rerun of the same page (another widget) keeps it
    assert len(at.get("download_button")) == 1
    at._page_hash = calc_hash("annotate")
    at.run()
    at._page_hash = calc_hash("export")
    at.run()
    assert not at.exception, at.exception
    assert len(at.get("download_button")) == 0
    button(at, "Prepare COCO zip").click().run()
    assert len(at.get("download_button")) == 1


def test_saving_a_class_says_saved(ws: Workspace) -> None:  # noqa: F811
    # 'Saved.' was written just before st.rerun(), so the page never showed it
    slug = _annotated(ws)
    at = ml_app("classes", slug)
    cid = classes.list_categories(ws, slug)[0].id
    at.text_input(key=f"cls_{cid}_kp_names").input("head, left_hand, right_hand")
    at.text_input(key=f"cls_{cid}_kp_flip").input("left_hand-right_hand")
    at.text_input(key=f"cls_{cid}_kp_skeleton").input("head-left_hand, head-right_hand")
    button(at, "Save changes").click().run()
    assert not at.exception, at.exception
    assert [e.value for e in at.error] == []
    assert [s.value for s in at.success] == ["Saved 'bird'."]
    assert classes.list_categories(ws, slug)[0].keypoints.flip_pairs == ((1, 2),)
    at.run()  # once
    assert [s.value for s in at.success] == []


def _annotated(ws: Workspace) -> str:  # noqa: F811
    from tests.ui.test_pages import make_project

    slug = make_project(ws, n_images=1)
    image_id = annotate.list_images(ws, slug)[0].id
    version = annotate.load_image(ws, slug, image_id).version
    annotate.save_image(ws, slug, image_id, [Instance(category="bird", polygons=(SQUARE,))], expected_version=version)
    return slug
