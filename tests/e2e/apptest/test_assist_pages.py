"""Assisted labelling on the Train and Dataset pages (AppTest): the SAM models listed, present or
with the message naming the missing file; the Dataset page's "Label next" order of a real run file
(tests/support/predictions.write_model) is the service's ranking, labelled images left out."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.apptest import app, make_project, texts
from workbench.services.workspace import Workspace


def test_train_page_lists_sam_models(ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    slug = make_project(ws)
    monkeypatch.setenv("WORKBENCH_SAM_DIR", str(tmp_path / "sam"))
    (tmp_path / "sam").mkdir()
    (tmp_path / "sam" / "sam_vit_l_0b3195.pth").write_bytes(b"placed by the user")
    at = app("train", slug)
    shown = texts(at)
    assert "Assist models (SAM): 1 of 3 present" in at.expander[0].label
    assert f"SAM vit_l: {tmp_path / 'sam' / 'sam_vit_l_0b3195.pth'}" in shown
    assert "SAM vit_b missing" in shown and "sam_vit_b_01ec64.pth" in shown and str(tmp_path / "sam") in shown


def test_dataset_page_shows_the_label_next_order(ws: Workspace, tmp_path: Path) -> None:
    from tests.support.predictions import run_with_model
    from workbench.domain import Instance
    from workbench.services import annotate, assist

    slug = make_project(ws, n_images=4)
    first = annotate.list_images(ws, slug)[0]
    annotate.save_image(
        ws, slug, first.id, [Instance(category="bird", polygons=((1, 1, 9, 1, 9, 9),))],
        expected_version=annotate.load_image(ws, slug, first.id).version,
    )
    run = run_with_model(ws, slug, tmp_path)
    at = app("dataset", slug)
    at.selectbox(key="ds_next_run").select(run).run()
    assert not at.exception, at.exception
    table = next(d.value for d in at.dataframe if "uncertainty" in d.value.columns)
    ranked = assist.rank_next(ws, slug, run)
    assert list(table["image"]) == [n.file_name for n in ranked]
    assert first.file_name not in set(table["image"]) and len(table) == 3
    assert list(table["uncertainty"]) == [n.uncertainty for n in ranked]
