"""Bugs a demanding user found driving the CLI and services: each test failed before its fix."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest

from tests.support.cli import run
from tests.support.images import write_image
from workbench.domain import KeypointSchema, NotFoundError, ValidationError
from workbench.services import imports, projects
from workbench.store.projects import slugify

# ------------------------------------------------------------------------------------ project slugs


@pytest.mark.parametrize("slug", ["../outside", "a/b", "My Birds", ".hidden", "", "x" * 101, "Upper"])
def test_a_slug_that_is_not_a_plain_folder_name_is_refused(ws, slug: str) -> None:  # noqa: ANN001
    with pytest.raises(ValidationError, match="project slug"):
        projects.create_project(ws, "Birds", slug=slug)
    assert projects.list_projects(ws) == []
    assert not (ws.root.parent / "outside").exists()


def test_a_plain_explicit_slug_is_kept(ws) -> None:  # noqa: ANN001
    assert projects.create_project(ws, "Birds", slug="birds_2024-v1").slug == "birds_2024-v1"


@pytest.mark.parametrize(
    ("name", "slug"),
    [("ÜniCödé Birds", "unicode-birds"), ("Café", "cafe"), ("Cats & Dogs", "cats-dogs"), ("鳥", "project")],
)
def test_slugify_keeps_the_letters_of_accented_names(name: str, slug: str) -> None:
    assert slugify(name) == slug


def test_different_names_with_one_slug_get_numbered_slugs_and_the_same_name_is_refused(ws) -> None:  # noqa: ANN001
    assert projects.create_project(ws, "鳥").slug == "project"
    assert projects.create_project(ws, "鳥類").slug == "project-2"
    assert projects.create_project(ws, "猫").slug == "project-3"
    with pytest.raises(ValidationError, match="already exists"):
        projects.create_project(ws, "鳥類")


@pytest.mark.parametrize("slug", ["nosuch", "../escaped"])
def test_import_into_an_unknown_project_makes_no_folder(ws, tmp_path: Path, slug: str) -> None:  # noqa: ANN001
    img = write_image(tmp_path / "in" / "a.png")
    with pytest.raises(NotFoundError, match="no project"):
        imports.import_images(ws, slug, [img])
    assert not (ws.root / slug).exists()


# ------------------------------------------------------------------------------- database URL errors


@pytest.mark.parametrize(
    ("url", "args", "reason"),
    [
        ("sqlite:////nonexistent-dir/sub/x.db", ["project", "list"], "unable to open database file"),
        ("postgresql://me:s3cret@127.0.0.1:1/x", ["project", "list"], "port 1 failed"),
        ("not a url", ["project", "list"], "Could not parse SQLAlchemy URL"),
        ("nosuchdialect://x", ["stats", "p"], "Can't load plugin"),
        (None, ["db", "upgrade", "bogus"], "Can't locate revision identified by 'bogus'"),
        ("not a url", ["db", "current"], "Could not parse SQLAlchemy URL"),
    ],
)
def test_a_database_that_cannot_be_opened_is_one_line_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], url: str | None, args: list[str], reason: str
) -> None:
    db = ["--database-url", url] if url else []
    assert run(tmp_path / "ws", *args, *db) == 1
    err = capsys.readouterr().err
    assert err.startswith("workbench: error: database ") and err.count("\n") == 1
    assert reason in err
    assert "s3cret" not in err


# ---------------------------------------------------------------- predict / evaluate: device, threshold


BAD_INFERENCE = {
    "unknown device": ({"device": "banana"}, "unknown device 'banana'"),
    "absent gpu": ({"device": "cuda:7"}, "device cuda:7 asks for a GPU"),
    "negative threshold": ({"score_threshold": -3.0}, "between 0 and 1, got -3.0"),
    "threshold above one": ({"score_threshold": 2.0}, "between 0 and 1, got 2.0"),
}


@pytest.mark.parametrize("case", list(BAD_INFERENCE), ids=list(BAD_INFERENCE))
@pytest.mark.parametrize("use", ["predict", "evaluate"])
def test_predict_and_evaluate_refuse_a_bad_device_or_threshold_before_loading(
    ws, project: str, case: str, use: str  # noqa: ANN001
) -> None:
    from workbench.services import evaluation, review

    kwargs, message = BAD_INFERENCE[case]
    # run 999 does not exist: the options are checked first, so the message is about them
    with pytest.raises(ValidationError, match=message):
        if use == "predict":
            review.predict_images(ws, project, 999, [], **kwargs)
        else:
            evaluation.evaluate_run(ws, project, 999, **kwargs)


# ---------------------------------------------------------------------------- classes: keypoint schema


@pytest.mark.parametrize("flip", ["a-b,b-c", "a-b,a-b", "a-b,b-a"])
def test_flip_pairs_sharing_a_keypoint_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flip: str
) -> None:
    ws = tmp_path / "ws"
    assert run(ws, "project", "create", "P") == 0
    assert run(ws, "classes", "add", "p", "thing", "--keypoints", "a,b,c", "--flip", flip) == 1
    assert "is in more than one flip pair" in capsys.readouterr().err
    assert run(ws, "classes", "add", "p", "thing", "--keypoints", "a,b,c", "--flip", "a-b") == 0
    from workbench.services import classes
    from workbench.services.workspace import open_workspace

    w = open_workspace(ws)
    (cat,) = classes.list_categories(w, "p")
    bad = KeypointSchema(("a", "b", "c"), flip_pairs=classes.parse_pairs(flip, ["a", "b", "c"]))
    with pytest.raises(ValidationError, match="more than one flip pair"):
        classes.update_category(w, "p", cat.id, keypoints=bad)
    assert classes.list_categories(w, "p")[0].keypoints.flip_pairs == ((0, 1),)
    w.close()


def test_a_coco_file_with_flip_pairs_sharing_a_keypoint_is_refused_naming_it(tmp_path: Path) -> None:
    from workbench.formats.coco.read import load_coco

    path = tmp_path / "ann.json"
    cat = {"id": 1, "name": "p", "keypoints": ["a", "b", "c"], "skeleton": [], "flip_pairs": [[1, 2], [2, 3]]}
    path.write_text(json.dumps({"images": [], "annotations": [], "categories": [cat]}))
    with pytest.raises(ValidationError, match=r"ann\.json.*more than one flip pair"):
        load_coco(path)


@pytest.mark.parametrize("flags", [["--skeleton", "a-b"], ["--flip", "a-b"], ["--skeleton", "1-2", "--flip", "1-2"]])
def test_skeleton_or_flip_without_keypoints_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str]
) -> None:
    ws = tmp_path / "ws"
    assert run(ws, "project", "create", "P") == 0
    assert run(ws, "classes", "add", "p", "thing", *flags) == 1
    assert "give the names with --keypoints" in capsys.readouterr().err
    assert run(ws, "classes", "list", "p") == 0
    assert "thing" not in capsys.readouterr().out


# ------------------------------------------------------------------------------------- import options


def _project_with_image(tmp_path: Path) -> tuple[Path, Path]:
    ws = tmp_path / "ws"
    assert run(ws, "project", "create", "P") == 0
    return ws, write_image(tmp_path / "in" / "a.png")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["images", "p", "{img}", "{tmp}/typo.png"], "no such file or folder: {tmp}/typo.png; nothing was imported"),
        (["coco", "p", "{tmp}/a.json", "{tmp}/b.json"], "import coco takes one file or folder, got 2"),
        (["labelme", "p", "{tmp}/in", "{tmp}/in2"], "import labelme takes one file or folder, got 2"),
        (["labelme", "p", "{tmp}/in", "--images-dir", "{tmp}"], "--images-dir is for import coco"),
        (["images", "p", "{img}", "--images-dir", "{tmp}"], "--images-dir is for import coco"),
        (["coco", "p", "{tmp}/in", "--split", "val"], "a COCO folder's files name their splits"),
    ],
)
def test_import_refuses_ignored_paths_and_options_and_imports_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    ws, img = _project_with_image(tmp_path)
    fill = {"img": str(img), "tmp": str(tmp_path)}
    assert run(ws, "import", *[a.format(**fill) for a in args]) == 1
    err = capsys.readouterr().err
    assert message.format(**fill) in err and err.count("\n") == 1
    assert run(ws, "stats", "p", "--json") == 0
    assert json.loads(capsys.readouterr().out)["images"] == 0


def test_labelme_import_puts_its_images_in_the_split_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], shared_fixtures: Path
) -> None:
    ws, _ = _project_with_image(tmp_path)
    assert run(ws, "import", "labelme", "p", str(shared_fixtures / "labelme"), "--split", "val") == 0
    capsys.readouterr()
    assert run(ws, "stats", "p", "--json") == 0
    assert json.loads(capsys.readouterr().out)["splits"] == {"val": 3}


# ---------------------------------------------------------------------- deleting while an import runs


def test_deleting_a_project_waits_for_its_running_import_and_says_so(
    ws, project: str, caplog: pytest.LogCaptureFixture  # noqa: ANN001
) -> None:
    import fcntl
    import threading
    import time

    caplog.set_level(logging.WARNING)
    lock_path = ws.project_dir(project) / ".import.lock"
    with open(lock_path, "a+b") as held:  # another process's import holds the project's lock
        fcntl.flock(held, fcntl.LOCK_EX)
        errors: list[BaseException] = []

        def delete() -> None:
            try:
                projects.delete_project(ws, project)
            except BaseException as exc:  # pragma: no cover - shown by the assert below
                errors.append(exc)

        worker = threading.Thread(target=delete)
        worker.start()
        for _ in range(500):  # until the deletion reports that it waits (a sync, not a timing check)
            if any("waiting for another import" in r.getMessage() for r in caplog.records):
                break
            time.sleep(0.01)
        assert any(f"project {project!r} to finish before deleting it" in r.getMessage() for r in caplog.records)
        assert [p.slug for p in projects.list_projects(ws)] == [project]  # nothing deleted while held
        fcntl.flock(held, fcntl.LOCK_UN)
    worker.join(timeout=30)
    assert not worker.is_alive() and errors == []
    assert projects.list_projects(ws) == []
    assert not ws.project_dir(project).exists()


# ------------------------------------------------------------------------------ classes rename / edit


def _kp_project(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    assert run(ws, "project", "create", "P") == 0
    assert run(ws, "classes", "add", "p", "face", "--keypoints", "nose,l_eye,r_eye", "--skeleton", "nose-l_eye") == 0
    return ws


def _cats(ws: Path) -> dict:
    from workbench.services import classes
    from workbench.services.workspace import open_workspace

    w = open_workspace(ws)
    try:
        return {c.name: c for c in classes.list_categories(w, "p")}
    finally:
        w.close()


def test_classes_rename_and_edit_flip_pairs_keep_the_keypoint_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = _kp_project(tmp_path)
    assert run(ws, "classes", "rename", "p", "face", "head") == 0
    assert run(ws, "classes", "edit", "p", "head", "--flip", "l_eye-r_eye", "--color", "#102030") == 0
    head = _cats(ws)["head"]
    assert head.color == "#102030"
    assert head.keypoints == KeypointSchema(("nose", "l_eye", "r_eye"), skeleton=((0, 1),), flip_pairs=((1, 2),))
    assert run(ws, "classes", "edit", "p", "head", "--skeleton", "") == 0
    assert _cats(ws)["head"].keypoints.skeleton == ()
    capsys.readouterr()
    assert run(ws, "classes", "list", "p") == 0
    assert "flip=l_eye-r_eye" in capsys.readouterr().out
    assert run(ws, "classes", "edit", "p", "head", "--no-keypoints") == 0
    assert _cats(ws)["head"].keypoints is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["rename", "p", "nope", "x"], "no class 'nope'; classes: face"),
        (["edit", "p", "nope", "--color", "#000000"], "no class 'nope'"),
        (["edit", "p", "face"], "nothing to change"),
        (["edit", "p", "face", "--flip", "l_eye-nose,nose-r_eye"], "more than one flip pair"),
        (["edit", "p", "face", "--no-keypoints", "--flip", "a-b"], "--no-keypoints removes the schema"),
        (["edit", "p", "face", "--color", "red"], "#rrggbb"),
    ],
)
def test_classes_rename_and_edit_errors_change_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    ws = _kp_project(tmp_path)
    before = _cats(ws)
    assert run(ws, "classes", *args) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert _cats(ws) == before


def test_classes_list_and_delete_count_in_the_singular(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = tmp_path / "ws"
    assert run(ws, "demo", "--images", "2") == 0
    from workbench.services import classes
    from workbench.services.workspace import open_workspace

    w = open_workspace(ws)
    counts = classes.category_annotation_counts(w, "demo-shapes")
    one = next((c for c in classes.list_categories(w, "demo-shapes") if counts.get(c.id) == 1), None)
    w.close()
    if one is None:
        pytest.skip("the 2-image demo has no class with exactly one annotation")
    capsys.readouterr()
    assert run(ws, "classes", "list", "demo-shapes") == 0
    assert re.search(rf"{one.name} .* 1 annotation(?!s)", capsys.readouterr().out)
    assert run(ws, "classes", "delete", "demo-shapes", one.name, "--delete-annotations") == 0
    assert capsys.readouterr().out.strip() == f"deleted class {one.name} and its 1 annotation"


# ------------------------------------------------------------------------------------ demo and stats


@pytest.mark.parametrize("n", ["0", "-5"])
def test_demo_with_no_images_is_refused_and_makes_no_project(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], n: str
) -> None:
    ws = tmp_path / "ws"
    assert run(ws, "demo", "--images", n) == 1
    assert f"at least 1 image, got {n}" in capsys.readouterr().err
    assert run(ws, "project", "list") == 0
    assert "no projects" in capsys.readouterr().out
    assert not (ws / "demo-shapes").exists()


def test_stats_of_an_empty_project_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = tmp_path / "ws"
    assert run(ws, "project", "create", "P") == 0
    capsys.readouterr()
    assert run(ws, "stats", "p") == 0
    out = capsys.readouterr().out
    assert "status: (no images)" in out and "splits: (no images)" in out


# ------------------------------------------------------------------------------ numbers out of range


@pytest.mark.parametrize("sigma", ["inf", "nan", "-1"])
def test_labelmaps_refuse_a_sigma_that_is_not_a_positive_number(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sigma: str
) -> None:
    ws = tmp_path / "ws"
    assert run(ws, "demo", "--images", "2") == 0
    assert run(ws, "export", "labelmaps", "demo-shapes", str(tmp_path / "maps"), f"--sigma={sigma}") == 1
    err = capsys.readouterr().err
    assert "sigma" in err and err.count("\n") == 1
    assert not (tmp_path / "maps").exists()


@pytest.mark.parametrize("limit", [0, -1])
def test_a_pixel_limit_below_one_is_refused_not_every_image_skipped(ws, project: str, tmp_path: Path, limit: int) -> None:  # noqa: ANN001
    img = write_image(tmp_path / "in" / "a.png")
    with pytest.raises(ValidationError, match=f"pixel limit must be at least 1, got {limit}"):
        imports.import_images(ws, project, [img], max_pixels=limit)


def test_project_delete_without_yes_names_a_wrong_project_and_counts_a_right_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = tmp_path / "ws"
    assert run(ws, "project", "create", "P") == 0
    assert run(ws, "project", "delete", "typo") == 1
    assert "no project 'typo'; projects: p" in capsys.readouterr().err
    assert run(ws, "project", "delete", "p") == 1
    assert "removes its 0 images and 0 annotations; add --yes" in capsys.readouterr().err


def test_importing_a_folder_without_images_says_none_were_found(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws, _ = _project_with_image(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    assert run(ws, "import", "images", "p", str(tmp_path / "empty")) == 0
    out = capsys.readouterr().out
    assert f"0 images imported\n  note: no image files (JPEG, PNG, BMP, TIFF, WebP) found in {tmp_path / 'empty'}" in out


# ---------------------------------------------------------------------------------- augment preview


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--count", "0"], "--count must be at least 1, got 0"),
        (["--count", "-2"], "--count must be at least 1, got -2"),
        (["--max-side", "-4"], "--max-side must be at least 1 pixel, got -4"),
    ],
)
def test_augment_preview_refuses_counts_below_one_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    ws = tmp_path / "ws"
    assert run(ws, "demo", "--images", "2") == 0
    capsys.readouterr()
    assert run(ws, "augment", "preview", "demo-shapes", "--out", str(tmp_path / "prev"), *flags) == 1
    err = capsys.readouterr().err
    assert message in err and "no annotated images" not in err
    assert not (tmp_path / "prev").exists()


def test_augment_preview_and_set_count_in_the_singular(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = tmp_path / "ws"
    assert run(ws, "demo", "--images", "2") == 0
    capsys.readouterr()
    assert run(ws, "augment", "preview", "demo-shapes", "--out", str(tmp_path / "prev"), "--count", "1") == 0
    assert "wrote 1 preview (" in capsys.readouterr().out
    (tmp_path / "bad.json").write_text('[{"name": "Bogus"}]')
    assert run(ws, "augment", "set", "demo-shapes", "--pipeline", str(tmp_path / "bad.json")) == 1
    assert "the pipeline has 1 problem; nothing was saved" in capsys.readouterr().err
