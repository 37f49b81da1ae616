"""The Annotate page saves what changed (issue 11): the browser's action carries only the shapes that
changed since a state the page acknowledged, the page writes only those rows, and the shapes go
back to the browser once per epoch, not with every save's answer."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from streamlit.testing.v1 import AppTest

from tests.support.apptest import app, make_project, send_action
from workbench.domain import Instance
from workbench.services import annotate
from workbench.services.workspace import Workspace

N = 40


def square(k: int, dx: float = 0.0) -> tuple[float, ...]:
    x, y = 6.0 * (k % 10) + 1 + dx, 6.0 * (k // 10) + 1
    return (x, y, x + 4, y, x + 4, y + 4, x, y + 4)


def opened(ws: Workspace) -> tuple[str, AppTest, int]:
    """The Annotate page open on an image of N saved squares."""
    slug = make_project(ws, n_images=1)
    image_id = annotate.list_images(ws, slug)[0].id
    shapes = [Instance(category="bird", polygons=(square(k),)) for k in range(N)]
    annotate.save_image(ws, slug, image_id, shapes, expected_version=1)
    return slug, app("annotate", slug), image_id


def component_data(at: AppTest) -> dict[str, Any]:
    comp = next(e for e in at.main if getattr(e, "type", "") == "bidi_component")
    raw = json.loads(comp.proto.json)
    return raw.get("data", raw)


def item(at: AppTest, k: int, dx: float) -> dict[str, Any]:
    """Loaded shape k as the browser sends it after moving it by dx."""
    loaded = next(it for it in at.session_state["wb_ann"]["payload"] if it["id"] == stored_ids(at)[k])
    return {**loaded, "mask": None, "polygons": [list(square(k, dx))]}


def stored_ids(at: AppTest) -> list[int]:
    return [i.id for i in at.session_state["wb_ann"]["loaded"]]


def delta(at: AppTest, seq: int, base: int, changed: list[dict[str, Any]], deleted: list[str] = ()) -> dict:
    s = at.session_state["wb_ann"]
    return {"kind": "save", "seq": seq, "epoch": s["epoch"], "image_id": s["image_id"], "base": base,
            "changed": changed, "deleted": list(deleted)}  # fmt: skip


def versions(ws: Workspace, slug: str, image_id: int) -> dict[int, int]:
    return {i.id: i.version for i in annotate.load_image(ws, slug, image_id).instances}


def test_the_shapes_go_to_the_browser_once_and_a_delta_writes_one_row(ws: Workspace) -> None:
    slug, at, image_id = opened(ws)
    first = component_data(at)
    assert len(first["instances"]) == N and all(it["uid"].startswith("py:") for it in first["instances"])
    before = versions(ws, slug, image_id)
    moved = item(at, 7, 0.5)
    send_action(at, delta(at, 1, 0, [moved]))
    after = versions(ws, slug, image_id)
    assert [k for k in before if before[k] != after[k]] == [moved["id"]] and after[moved["id"]] == 2
    assert annotate.load_image(ws, slug, image_id).version == 3
    assert "instances" not in component_data(at)  # the answer to a save carries no shapes
    s = at.session_state["wb_ann"]
    assert s["version"] == 3 and s["error"] is None
    assert next(i for i in s["loaded"] if i.id == moved["id"]).polygons == (square(7, 0.5),)


def test_a_delta_counts_from_the_acknowledged_state_so_a_lost_action_loses_nothing(ws: Workspace) -> None:
    """Streamlit keeps only the newest trigger: an action can be replaced before Python reads it."""
    slug, at, image_id = opened(ws)
    a, b = item(at, 1, 0.5), item(at, 2, 0.5)
    send_action(at, delta(at, 1, 0, [a]))  # acknowledged: the browser's next base is seq 1
    send_action(at, delta(at, 2, 1, [item(at, 1, 1.0)]))  # shape 1 moved again, read
    # sent before the browser learnt of seq 2: from seq 1, shape 1 back where seq 1 had it, shape 2 moved
    send_action(at, delta(at, 3, 1, [b]))
    stored = {i.id: i.polygons[0] for i in annotate.load_image(ws, slug, image_id).instances}
    assert stored[a["id"]] == square(1, 0.5) and stored[b["id"]] == square(2, 0.5)
    # lost: seq 4 (deletes shape 3) never reached Python; seq 5 from seq 3 still carries it
    gone = item(at, 3, 0.0)["uid"]
    send_action(at, delta(at, 5, 3, [item(at, 4, 0.5)], deleted=[gone]))
    ann = annotate.load_image(ws, slug, image_id)
    assert len(ann.instances) == N - 1 and stored_ids(at) == [i.id for i in ann.instances]


def test_a_delta_from_an_unknown_state_asks_for_the_whole_list(ws: Workspace) -> None:
    slug, at, image_id = opened(ws)
    version = annotate.image_version(ws, slug, image_id)
    send_action(at, delta(at, 1, 99, [item(at, 0, 0.5)]))
    assert annotate.image_version(ws, slug, image_id) == version  # nothing saved from a guess
    assert component_data(at)["resync"] == 1
    whole = [{**it, "mask": None} for it in at.session_state["wb_ann"]["payload"]][1:]  # shape 0 deleted
    s = at.session_state["wb_ann"]
    send_action(at, {"kind": "save", "seq": 2, "epoch": s["epoch"], "image_id": image_id, "instances": whole})
    assert len(annotate.load_image(ws, slug, image_id).instances) == N - 1


def test_a_stale_delta_is_refused_by_the_store_and_merged_shape_by_shape(ws: Workspace) -> None:
    slug, at, image_id = opened(ws)
    theirs = annotate.load_image(ws, slug, image_id)
    other = theirs.instances[5]
    moved = replace(other, polygons=(square(5, 1.0),))
    annotate.save_changes(ws, slug, image_id, [moved], expected_version=theirs.version)  # another tab
    epoch = at.session_state["wb_ann"]["epoch"]
    mine = item(at, 9, 0.5)
    send_action(at, delta(at, 1, 0, [mine]))
    s = at.session_state["wb_ann"]
    assert s["conflict"] is None and s["epoch"] == epoch + 1  # merged: a new epoch with both edits
    stored = {i.id: i.polygons[0] for i in annotate.load_image(ws, slug, image_id).instances}
    assert stored[other.id] == square(5, 1.0) and stored[mine["id"]] == square(9, 0.5)
    assert len(component_data(at)["instances"]) == N  # the merged shapes go to the browser


def test_a_new_mount_asks_for_the_shapes_and_gets_a_new_epoch(ws: Workspace) -> None:
    _, at, image_id = opened(ws)
    s = at.session_state["wb_ann"]
    epoch = s["epoch"]
    send_action(at, {"kind": "reload", "seq": 1, "epoch": epoch, "image_id": image_id})
    data = component_data(at)
    assert data["epoch"] == epoch + 1 and len(data["instances"]) == N
