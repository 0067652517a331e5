"""`pytest --cov` counts code run in subprocesses and in scratch copies of the checkout as the package's."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.helpers import ROOT, env

PROBE = """
import subprocess, sys

def test_a_subprocess_in_a_copy(copy_dir):
    code = "from tabpipe.core.hashing import bytes_sha256; print(bytes_sha256(b'x'))"
    subprocess.run([sys.executable, "-c", code], cwd=copy_dir, check=True)
"""

CONFTEST = """
import os, pytest

@pytest.fixture
def copy_dir():
    return os.environ["PROBE_COPY"]
"""


def test_code_run_by_a_subprocess_in_a_scratch_copy_counts_as_the_package(tmp_path: Path) -> None:
    copy = tmp_path / "scratch" / "repo"
    shutil.copytree(ROOT / "tabpipe", copy / "tabpipe", ignore=shutil.ignore_patterns("__pycache__"))
    probe = tmp_path / "probe"
    probe.mkdir()
    (probe / "test_probe.py").write_text(PROBE)
    (probe / "conftest.py").write_text(CONFTEST)
    data = tmp_path / ".coverage"
    config = ["-c", str(ROOT / "pyproject.toml"), "--rootdir", str(ROOT), "-n", "0", "-p", "no:cacheprovider"]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", *config, "--cov", "--cov-report=", "--cov-fail-under=0", str(probe)],
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
    hashing = files["tabpipe/core/hashing.py"]
    assert hashing["summary"]["covered_lines"] > 0
    assert "tabpipe/tracking/runs.py" not in files or files["tabpipe/tracking/runs.py"]["summary"]["covered_lines"] == 0
