"""`workbench classes`: add, list, rename, edit and delete on a real workspace; errors change nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.support.cli import run
from workbench.domain import KeypointSchema, ValidationError
from workbench.services import classes


def test_add_refuses_a_name_of_only_spaces_via_the_cli(ws, project, capsys) -> None:  # noqa: ANN001
    from workbench.cli import main

    rc = main(["--workspace", str(ws.root), "classes", "add", project, "   "])
    assert rc != 0
    assert "empty" in capsys.readouterr().err
    assert classes.list_categories(ws, project) == []


def test_cli_add_strips_the_name(ws, project) -> None:  # noqa: ANN001
    from workbench.cli import main

    assert main(["--workspace", str(ws.root), "classes", "add", project, " pad "]) == 0
    assert [c.name for c in classes.list_categories(ws, project)] == ["pad"]


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
