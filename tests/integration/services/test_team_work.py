"""Team work through the services (issue 15): jobs by split/status/count, the review stage (done ->
in review -> rejected with a comment -> fixed -> accepted), who saved what and when, restore of a
version, the audit log; and solo mode writing none of it."""

from __future__ import annotations

import pytest

from tests.support.factories import add_images
from tests.support.team import team_of
from workbench.domain import Category, Instance, ValidationError
from workbench.services import annotate, classes, team
from workbench.store import team as team_repo


def _square(x: float) -> Instance:
    return Instance("a", polygons=((x, 2.0, x + 8, 2.0, x + 8, 10.0, x, 10.0),))


def test_review_cycle_history_restore_and_audit(ws, project) -> None:  # noqa: ANN001
    classes.add_category(ws, project, Category(name="a"))
    images = add_images(ws, project, 4)
    annotate.set_split(ws, project, [im.id for im in images[:3]], "train")
    users = team_of(ws, project)
    boss, ann, rita = users["admin"], users["annotator"], users["reviewer"]
    assert team.assign_images(boss, project, "ann", split="train", count=2) == 2
    assert team.assign_images(boss, project, "ann", split="train") == 1  # the third: the first two are taken
    with pytest.raises(ValidationError, match="viewer: only annotators and admins take jobs"):
        team.assign_images(boss, project, "vic", count=1)
    first = team.my_image_ids(ann, project)[0]

    v1 = annotate.save_image(ann, project, first, [_square(2)], expected_version=1).version
    saved = annotate.save_image(ann, project, first, [*annotate.load_image(ann, project, first).instances, _square(20)],
                                expected_version=v1, status="done")  # fmt: skip
    assert team.jobs(boss, project, [first])[first].review == "in_review"
    with pytest.raises(ValidationError, match="needs a comment"):
        team.review_image(rita, project, first, "reject")
    assert team.review_image(rita, project, first, "reject", "the second box is wrong") == "rejected"
    assert annotate.image_record(ann, project, first).status == "in_progress"
    assert [c["text"] for c in team.comments(ann, project, first)] == ["the second box is wrong"]
    with pytest.raises(ValidationError, match="not in review"):
        team.review_image(rita, project, first, "accept")

    # the annotator fixes it by going back to her first version, then marks it done again
    restored = team.restore(ann, project, first, v1)
    assert len(annotate.load_image(ann, project, first).instances) == 1
    annotate.set_status(ann, project, first, "done")
    assert team.review_image(rita, project, first, "accept") == "accepted"

    hist = team.history(boss, project, first)
    assert [h["version"] for h in hist] == [restored, saved.version, v1]  # (no baseline: it had no rows)
    assert {h["user"] for h in hist} == {"ann"} and not any(h["baseline"] for h in hist)
    assert hist[0]["deleted"] == 1  # the restore took the second box out again
    assert [c["verdict"] for c in team.comments(boss, project, first)] == ["rejected", "accepted"]
    act = {r["user"]: r for r in team.activity(boss, project)}
    assert act["ann"]["images"] == 1 and act["ann"]["objects"] == 2 and act["ann"]["rejection_rate"] == 0.5
    assert team.work_summary(boss, project)["ann"] == {
        "assigned": 3, "open": 2, "in_review": 0, "accepted": 1, "rejected": 0
    }
    log = team.audit_log(boss, project)
    assert {"assign", "dataset.edit"} <= {e["action"] for e in log}
    assert all(e["user"] in ("boss", "") for e in log if e["action"] == "assign")


def test_solo_mode_writes_no_team_rows(ws, project) -> None:  # noqa: ANN001
    classes.add_category(ws, project, Category(name="a"))
    (im,) = add_images(ws, project, 1)
    annotate.save_image(ws, project, im.id, [_square(2)], expected_version=1, status="done")
    with ws.store.transaction() as s:
        assert not team_repo.has_history(s, im.id)
        assert team_repo.work_of(s, [im.id]) == {}
        assert not team_repo.has_accounts(s)
    assert team.my_image_ids(ws, project) == []
