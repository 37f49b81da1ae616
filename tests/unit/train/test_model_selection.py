"""Model selection that does not leak: the demo holds a test split out of training and of choosing the
checkpoint, and the report says which split its numbers are on and states the test split's."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.coco_reference import make_dataset
from workbench.evaluate import evaluate_coco, write_report
from workbench.services import projects
from workbench.services.dataset import project_stats
from workbench.services.demo import create_demo_project
from workbench.services.export import project_dataset
from workbench.services.training import training_splits
from workbench.services.workspace import open_workspace


def _splits(ws, slug: str) -> dict[str, str]:  # noqa: ANN001
    return {it.image.file_name: it.image.split for it in project_dataset(ws, slug).items}


def test_demo_test_split_is_extra_images_that_training_never_sees(ws, tmp_path: Path):  # noqa: ANN001
    other = open_workspace(tmp_path / "other")  # a fresh store: the same image ids as ``ws``'s
    try:
        plain = create_demo_project(other, num_images=10, test_images=0).slug
        before = _splits(other, plain)
    finally:
        other.close()
    held = create_demo_project(ws, num_images=10, test_images=3).slug
    after = _splits(ws, held)
    # the train/val images and their splits are those of the demo without a test split
    assert {k: v for k, v in after.items() if k in before} == before
    test = sorted(k for k, v in after.items() if v == "test")
    assert len(test) == 3 and not set(test) & set(before)
    assert projects.get_project(ws, held).split_counts == {
        "train": list(before.values()).count("train"), "val": list(before.values()).count("val"), "test": 3
    }
    train, val = training_splits(ws, held)
    seen = {it.image.file_name for it in train.items} | {it.image.file_name for it in (val.items if val else [])}
    assert seen == set(before) and not seen & set(test)
    assert project_stats(ws, held)["instances_per_split"]["test"]  # the test images are annotated


def test_small_demos_stay_train_and_val_only(ws):  # noqa: ANN001
    slug = create_demo_project(ws, num_images=6).slug
    assert set(projects.get_project(ws, slug).split_counts) <= {"train", "val"}


def test_report_states_the_split_the_checkpoint_was_chosen_on_and_the_test_numbers(tmp_path: Path) -> None:
    gt, dt = make_dataset(0, n_images=6)
    val = evaluate_coco(gt, dt)
    gt_t, dt_t = make_dataset(1, n_images=6)
    test = evaluate_coco(gt_t, dt_t[: len(dt_t) // 2])
    html = write_report(val, tmp_path / "val", title="val", split="val", selected_on="val", test=test)
    metrics = json.loads((tmp_path / "val" / "metrics.json").read_text())
    sel = metrics["model_selection"]
    assert sel["split"] == "val" and sel["selected_on"] == "val" and sel["held_out"] is False
    assert sel["test"]["segm"]["AP"] == test.stats("segm")["AP"] != val.stats("segm")["AP"]
    text = html.read_text(encoding="utf-8")
    assert "Test split (held out)" in text and f"{test.stats('segm')['AP']:.3f}" in text
    assert "optimistic" in text
    # a report on the test split itself says it is held out
    write_report(test, tmp_path / "test", title="test", split="test", selected_on="val")
    sel = json.loads((tmp_path / "test" / "metrics.json").read_text())["model_selection"]
    assert sel["held_out"] is True and "test" not in sel
    # without the new arguments, metrics.json is as before
    write_report(val, tmp_path / "plain", title="plain")
    assert "model_selection" not in json.loads((tmp_path / "plain" / "metrics.json").read_text())
