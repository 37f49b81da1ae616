"""AppTest checks for problems found by walking the UI as a new user (one test per fix)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.ui.test_pages import app, make_project, ws  # noqa: F401  (ws is a fixture)
from workbench.domain import ValidationError
from workbench.services.imports import ImportReport
from workbench.services.workspace import Workspace
from workbench.ui.app_pages import imports as imports_page


@dataclass
class Upload:
    """What st.file_uploader hands the page: a name and the bytes."""

    name: str
    data: bytes

    def getvalue(self) -> bytes:
        return self.data


@pytest.mark.parametrize("kind", ["coco", "labelme"])
def test_bad_annotation_upload_names_the_uploaded_file_not_a_temp_folder(ws: Workspace, kind: str) -> None:  # noqa: F811
    slug = make_project(ws, n_images=1)
    with pytest.raises(ValidationError) as info:
        imports_page.import_annotation_upload(ws, slug, kind, Upload("bad.json", b"{not json"))
    msg = str(info.value)
    assert msg.startswith("bad.json"), msg
    assert "wb-upload-" not in msg


def test_import_warnings_show_class_names_literally_in_one_box(ws: Workspace) -> None:  # noqa: F811
    slug = make_project(ws, n_images=1)
    at = app("import", slug)
    report = ImportReport(warnings=["added class '__ignore__'", "added class 'car'"], annotations=2)
    at.session_state[imports_page.REPORT_KEY] = {"kind": "labelme", "report": report}
    at.run()
    assert not at.exception, at.exception
    assert len(at.warning) == 1
    box = at.warning[0].value
    assert "\\_\\_ignore\\_\\_" in box  # escaped: markdown shows the underscores, not bold text
    assert "car" in box
