"""A predicted class map becomes annotations on accept: its connected components, as polygons or (with
a hole) RLE, small ones dropped; the accepted masks are the components'."""

from __future__ import annotations

import numpy as np

from tests.support.semantic import semantic_run_with_stored_map
from workbench.geometry.masks import instance_to_mask
from workbench.services import annotate, review, semantic
from workbench.services.demo import create_demo_project
from workbench.store import projects as project_repo
from workbench.store import runs as run_repo


def test_predicted_components_accepted_become_instances_with_their_masks(ws, tmp_path) -> None:  # noqa: ANN001
    slug = create_demo_project(ws, num_images=2).slug
    with ws.store.transaction() as s:
        rid = run_repo.create_run(s, project_repo.project_id(s, slug), "seg", {"task": "semantic"},
                                  str(tmp_path / "run"), device="cpu").id
    rec = annotate.list_images(ws, slug)[0]
    h, w = rec.height, rec.width
    names = [c.name for c in semantic.project_dataset(ws, slug, splits=[]).categories if not c.is_ignore]
    index = np.zeros((h, w), np.uint8)
    index[10:40, 10:40] = 1
    index[20:30, 20:30] = 0  # a hole: RLE
    index[50:70, 60:95] = 2  # a plain blob: polygons
    index[5:7, 100:102] = 2  # 4 px: below min_area, dropped
    conf = np.full((h, w), 0.8, np.float32)
    conf[50:70, 60:95] = 0.6
    found = semantic.components_to_instances(index, names, conf, min_area=16)
    assert sorted((i.category, i.rle is not None) for i in found) == sorted([(names[0], True), (names[1], False)])
    assert {i.category: i.score for i in found} == {names[0]: 0.8, names[1]: 0.6}
    before = len(annotate.load_image(ws, slug, rec.id).instances)
    review.store_run_predictions(ws, slug, rid, {rec.id: found})
    for p in review.list_predictions(ws, slug, run_id=rid, image_id=rec.id, status="pending"):
        review.accept(ws, slug, p.id, as_polygons=p.instance.rle is None)
    got = annotate.load_image(ws, slug, rec.id).instances[before:]
    assert len(got) == 2
    by_class = {i.category: instance_to_mask(i, (w, h)).astype(bool) for i in got}
    hole = index == 1
    np.testing.assert_array_equal(by_class[names[0]], hole)  # RLE: exactly the component, hole kept
    blob = np.zeros_like(hole)
    blob[50:70, 60:95] = True
    iou = (by_class[names[1]] & blob).sum() / (by_class[names[1]] | blob).sum()
    assert iou >= 0.95  # a polygon traced on the component's pixels (rasterised again by pycocotools)


def test_two_semantic_runs_side_by_side(ws, tmp_path) -> None:  # noqa: ANN001
    import json

    import pytest

    from workbench.domain import ValidationError
    from workbench.evaluate.semantic import confusion_metrics

    slug = create_demo_project(ws, num_images=2).slug
    cms = {"a": [[8, 2, 0], [1, 4, 0], [0, 0, 5]], "b": [[9, 1, 0], [3, 2, 0], [0, 1, 4]]}
    ids = {}
    for name, cm in cms.items():
        run_dir = tmp_path / name
        (run_dir / "eval" / "val").mkdir(parents=True)
        (run_dir / "model.pt").write_bytes(b"x")  # the report reads the evaluations, not the model
        metrics = {**confusion_metrics(np.array(cm), ["x", "y"]), "task": "semantic", "num_images": 1}
        (run_dir / "eval" / "val" / "metrics.json").write_text(json.dumps(metrics))
        with ws.store.transaction() as s:
            ids[name] = run_repo.create_run(s, project_repo.project_id(s, slug), name, {"task": "semantic"},
                                            str(run_dir), device="cpu").id
    path = semantic.compare_semantic_runs(ws, slug, ids["a"], ids["b"], "val")
    page = path.read_text()
    ma = confusion_metrics(np.array(cms["a"]), ["x", "y"])
    mb = confusion_metrics(np.array(cms["b"]), ["x", "y"])
    assert f"{ma['mean_iou'] - mb['mean_iou']:+.3f}" in page and f"{ma['per_class']['y']['iou']:.3f}" in page
    assert path == tmp_path / "a" / "eval" / "val" / f"compare-{ids['b']}" / "report.html"
    with pytest.raises(ValidationError, match="different runs"):
        semantic.compare_semantic_runs(ws, slug, ids["a"], ids["a"])


def test_the_overlay_blends_the_chosen_classes_of_both_maps(ws, tmp_path) -> None:  # noqa: ANN001
    from workbench.domain import AnnotatedImage
    from workbench.formats.labelmaps import palette

    slug = create_demo_project(ws, num_images=2).slug
    rid, rec, pred, names = semantic_run_with_stored_map(ws, slug, tmp_path)
    views = semantic.label_map_overlay(ws, slug, rid, rec.id, classes=[names[0]], opacity=1.0)
    pal = np.asarray(palette()).reshape(256, 3)
    assert views["predicted"].shape == (rec.height, rec.width, 3)
    assert (views["predicted"][15, 15] == pal[1]).all()  # class 1 shown at full opacity: its colour
    plain = semantic.label_map_overlay(ws, slug, rid, rec.id, classes=[], opacity=1.0)["predicted"]
    assert (views["predicted"][50, 50] == plain[50, 50]).all()  # class 2 hidden: the image's pixel
    loaded = annotate.load_image(ws, slug, rec.id)
    cats = semantic.project_dataset(ws, slug, splits=[]).categories
    gt = semantic.semantic_index_map(AnnotatedImage(image=rec, instances=tuple(loaded.instances)), cats)
    ys, xs = np.nonzero(gt == 1)
    assert len(ys)  # the demo image has a class-1 shape
    assert (views["ground truth"][ys[0], xs[0]] == pal[1]).all()
    import pytest

    from workbench.domain import ValidationError

    with pytest.raises(ValidationError, match="unknown class"):
        semantic.label_map_overlay(ws, slug, rid, rec.id, classes=["nope"])
