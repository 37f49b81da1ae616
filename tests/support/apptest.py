"""Streamlit AppTest helpers: the app opened on a page, its texts and buttons, a project with images
and a class, annotator actions injected as the component's trigger, and a run a worker is running."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from streamlit.testing.v1 import AppTest

from tests.support.images import png_bytes
from workbench.domain import Category, KeypointSchema
from workbench.images.decode import ImageSource
from workbench.services import classes, imports, projects
from workbench.services.workspace import Workspace
from workbench.store import projects as project_repo
from workbench.store import runs as run_repo

APP = str(Path(__file__).resolve().parents[2] / "workbench" / "ui" / "streamlit_app.py")
NOTICES = ("info", "success", "error", "warning", "caption")


def app(page: str | None = None, project: str | None = None, *, timeout: float = 60) -> AppTest:
    """The app with ``project`` open on ``page`` (url path), run once and free of exceptions."""
    from streamlit.util import calc_hash

    at = AppTest.from_file(APP, default_timeout=timeout)
    if project:
        at.session_state["wb_project"] = project
    at.run()
    if page:
        at._page_hash = calc_hash(page)  # pages are callables with a url_path: st.Page hashes it
        at.run()
    assert not at.exception, at.exception
    return at


def texts(at: AppTest, kinds: tuple[str, ...] = (*NOTICES, "markdown")) -> str:
    """The text of every element of those kinds, one per line."""
    return "\n".join(str(e.value) for kind in kinds for e in getattr(at, kind))


def button(at: AppTest, label: str):  # noqa: ANN201
    return next(b for b in at.button if b.label == label)


def make_project(ws: Workspace, name: str = "Birds", n_images: int = 2, with_class: bool = True) -> str:
    slug = projects.create_project(ws, name).slug
    if n_images:
        srcs = [
            ImageSource(name=f"im{i}.png", data=png_bytes((64, 48), (10 * i, 20, 30)))
            for i in range(n_images)
        ]
        imports.import_images(ws, slug, srcs)
    if with_class:
        schema = KeypointSchema(names=("head", "tail"), skeleton=((0, 1),))
        classes.add_category(ws, slug, Category(name="bird", color="#ff0000", keypoints=schema))
    return slug


def send_action(at: AppTest, payload: dict[str, Any]) -> AppTest:
    """What the browser does with setTriggerValue('action', payload): one rerun with the trigger set."""
    from streamlit.components.v2.bidi_component.main import _make_trigger_id
    from streamlit.proto.WidgetStates_pb2 import WidgetState

    comp = next(e for e in at.main if getattr(e, "type", "") == "bidi_component")
    states = at._tree.get_widget_states()
    states.widgets.append(
        WidgetState(
            id=_make_trigger_id(comp.proto.id, "events"),
            json_trigger_value=json.dumps([{"event": "action", "value": payload}]),
        )
    )
    at._run(states)
    assert not at.exception, at.exception
    return at


def action(at: AppTest, kind: str, instances: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    s = at.session_state["wb_ann"]
    seq = s["ack"] + 1
    return {
        "kind": kind,
        "seq": seq,
        "epoch": s["epoch"],
        "image_id": s["image_id"],
        "instances": instances,
        **extra,
    }


def polygon_item(poly: list[float], category: str = "bird", **kw: Any) -> dict[str, Any]:
    return {
        "id": None,
        "category": category,
        "polygons": [poly],
        "keypoints": None,
        "rle": False,
        "source": "manual",
        "score": None,
        **kw,
    }


def running_run(ws: Workspace, slug: str, tmp_path: Path) -> int:
    """A run that a worker is running: claimed row, status.json, metrics.jsonl and a log in its folder."""
    run_dir = tmp_path / "runs" / "r1"
    run_dir.mkdir(parents=True)
    with ws.store.transaction() as s:
        rid = run_repo.create_run(s, project_repo.project_id(s, slug), "busy run", {}, str(run_dir), device="cpu").id
        run_repo.claim_next_queued_run(s, "cpu")
        progress = {"status": "running", "epoch": 1, "epochs": 3, "iter": 2, "iters_per_epoch": 4, "step": 6,
                    "total_steps": 12, "eta_s": 95.0, "loss": 1.25, "device": "cpu"}
        run_repo.update_run_progress(s, rid, progress)
    (run_dir / "status.json").write_text(json.dumps(progress))
    rows = [{"type": "train", "epoch": 1, "iter": i, "step": i, "loss": 2.0 - 0.1 * i, "loss_mask": 0.5} for i in range(6)]
    rows.append({"type": "val", "epoch": 1, "step": 4, "segm_ap": 0.2, "bbox_ap": 0.25, "segm_ap50": 0.4})
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (run_dir / "worker.log").write_text("step 6 loss 1.25\n")
    return rid
