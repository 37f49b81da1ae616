"""The package as users install it: every subpackage listed, the migrations inside the wheel, and the
wheel working from a folder that is not the checkout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def _pyproject() -> dict:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())


def test_every_subpackage_of_the_tree_is_listed_for_the_wheel() -> None:
    on_disk = {
        ".".join(p.parent.relative_to(REPO_ROOT).parts)
        for p in (REPO_ROOT / "workbench").rglob("__init__.py")
    }
    listed = set(_pyproject()["tool"]["setuptools"]["packages"])
    assert listed == on_disk | {"workbench.migrations"}


def test_pytest_is_a_test_dependency_only() -> None:
    project = _pyproject()["project"]
    assert not any(d.startswith("pytest") for d in project["dependencies"])
    assert any(d.startswith("pytest") for d in project["optional-dependencies"]["test"])


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO_ROOT), "--no-deps", "-q",
         "-w", str(out)],
        check=True, capture_output=True, text=True,
    )
    (whl,) = out.glob("workbench-*.whl")
    return whl


@pytest.mark.slow
def test_wheel_holds_every_module_and_migration(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for py in (REPO_ROOT / "workbench").rglob("*.py"):
        assert py.relative_to(REPO_ROOT).as_posix() in names
    for f in ["env.py", "script.py.mako", *(p.name for p in (REPO_ROOT / "migrations" / "versions").glob("*.py"))]:
        inside = f"workbench/migrations/{'versions/' if f[0].isdigit() else ''}{f}"
        assert inside in names, inside
    assert "workbench/ui/components/annotator/annotator.js" in names


@pytest.mark.slow
def test_installed_wheel_runs_outside_the_checkout(wheel: Path, tmp_path: Path) -> None:
    """A fresh venv holds only the wheel; its dependencies come from this venv's site-packages through a
    plain path entry (whose .pth files, the editable install's among them, are not run)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps", str(wheel)],
                   check=True, capture_output=True, text=True)
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    deps = next(p for p in map(Path, sys.path) if p.name == "site-packages" and p.is_dir())
    (Path(site) / "deps.pth").write_text(f"{deps}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKBENCH_") and k != "PYTHONPATH"}
    work = tmp_path / "elsewhere"
    work.mkdir()

    def wb(*args: str) -> str:
        r = subprocess.run([str(venv / "bin" / "workbench"), "--workspace", str(work / "ws"), *args],
                           cwd=work, env=env, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        return r.stdout

    where = subprocess.run([str(py), "-c", "import workbench; print(workbench.__file__)"], cwd=work, env=env,
                           check=True, capture_output=True, text=True).stdout
    assert where.startswith(site)
    wb("demo")
    head = max(m.name.split("_")[0] for m in (REPO_ROOT / "migrations" / "versions").glob("0*.py"))
    assert f"current: {head}; head: {head}" in wb("db", "current")  # the wheel's migrations reach head
    wb("export", "coco", "demo-shapes", str(work / "out"))
    files = sorted((work / "out" / "annotations").glob("instances_*.json"))
    assert [f.name for f in files] == ["instances_test.json", "instances_train.json", "instances_val.json"]
    assert all(json.loads(f.read_text())["annotations"] for f in files)
