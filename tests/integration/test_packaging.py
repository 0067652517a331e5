"""`pip install .` works: the wheel holds the whole tabpipe package and its schemas, and nothing else."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.support.commands import env
from tests.support.paths import ROOT
from tests.support.projects import make_project

pytestmark = pytest.mark.integration


def test_the_wheel_installs_and_its_schemas_load(tmp_path: Path) -> None:
    repo = make_project(tmp_path / "repo")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", "--no-deps", "-q", str(repo), "-w", str(tmp_path / "dist")], check=True, env=env())
    (wheel,) = (tmp_path / "dist").glob("tabpipe-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    packaged = {n for n in names if not n.startswith("tabpipe-")}
    expected = {
        str(p.relative_to(ROOT)) for p in (ROOT / "tabpipe").rglob("*") if p.is_file() and "__pycache__" not in p.parts
    }
    assert packaged == expected

    site = tmp_path / "site"
    subprocess.run([*pip, "install", "--no-deps", "-q", "--target", str(site), str(wheel)], check=True, env=env())
    probe = "import tabpipe.data.schema as s; print(s.__file__, s.builtin('adult').target)"
    found = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=env(PYTHONPATH=str(site)), capture_output=True, text=True
    )
    assert found.returncode == 0, found.stderr
    where, target = found.stdout.split()
    assert Path(where).is_relative_to(site) and target == "income"
