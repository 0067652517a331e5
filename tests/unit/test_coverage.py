"""The suite's coverage counts the `tabpipe` commands the tests run, in scratch copies of the checkout too."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.commands import env
from tests.support.paths import ROOT

PROBE = """
import os, subprocess
from pathlib import Path

import coverage

from tests.support.commands import tabpipe_command

def test_a_command_in_a_copy(copy_dir):
    subprocess.run(tabpipe_command("--help"), cwd=copy_dir, check=True, capture_output=True)
    measured = set()
    for path in Path(os.environ["COVERAGE_FILE"]).parent.glob(".coverage.*"):
        data = coverage.CoverageData(str(path))
        data.read()
        measured |= set(data.measured_files())
    assert str(Path(copy_dir) / "tabpipe" / "cli" / "app.py") in measured  # the copy's code ran
"""

CONFTEST = """
import os, pytest

@pytest.fixture
def copy_dir():
    return os.environ["PROBE_COPY"]
"""


def test_a_tabpipe_command_run_in_a_scratch_copy_counts_as_the_package(tmp_path: Path) -> None:
    copy = tmp_path / "scratch" / "repo"
    shutil.copytree(ROOT / "tabpipe", copy / "tabpipe", ignore=shutil.ignore_patterns("__pycache__"))
    probe = tmp_path / "probe"
    probe.mkdir()
    (probe / "test_probe.py").write_text(PROBE)
    (probe / "conftest.py").write_text(CONFTEST)
    data = tmp_path / ".coverage"
    config = ["-c", str(ROOT / "pyproject.toml"), "--rootdir", str(ROOT), "-n", "0", "-p", "no:cacheprovider"]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", *config, "--cov-report=", "--cov-fail-under=0", str(probe)],
        cwd=ROOT,
        env=env(PROBE_COPY=str(copy), COVERAGE_FILE=str(data)),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = tmp_path / "coverage.json"
    subprocess.run(
        [sys.executable, "-m", "coverage", "json", "--fail-under=0", "--data-file", str(data), "-o", str(report)],
        cwd=ROOT,
        env=env(),
        check=True,
        capture_output=True,
    )
    files = json.loads(report.read_text())["files"]
    assert not any(str(tmp_path) in name for name in files)  # the copy's files are mapped to tabpipe/
    assert files["tabpipe/cli/app.py"]["summary"]["covered_lines"] > 0  # only the command imports it
