"""Long work says it is alive: `dvc repro` on adult never goes 10 s without a line (slow: about 3 minutes).

The gap is a time threshold, so it sits behind `slow` (`pytest -m slow tests/integration/test_progress.py`);
the lines themselves are checked in the default suite by the unit tests of each progress report.
"""

import subprocess
import time
from pathlib import Path

import pytest

from tests.support.commands import env
from tests.support.paths import BIN
from tests.support.projects import make_project, set_params

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_repro_on_adult_never_goes_ten_seconds_without_a_line(tmp_path: Path) -> None:
    repo = make_project(tmp_path / "repo")
    set_params(repo, **{"data.dataset": "adult"})
    process = subprocess.Popen(
        [str(BIN / "dvc"), "repro"], cwd=repo, env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    stamps, lines, last = [], [], time.monotonic()
    for line in process.stdout:
        now = time.monotonic()
        stamps.append(now - last)
        lines.append(line.rstrip())
        last = now
    assert process.wait() == 0, "\n".join(lines[-30:])
    gaps = sorted(zip(stamps, lines, strict=True), reverse=True)[:5]
    assert gaps[0][0] < 10, "longest silences:\n" + "\n".join(f"{s:.1f} s before: {line}" for s, line in gaps)
    assert any("CV" in line and "about" in line for line in lines)
    assert any(line.startswith("evaluate: permutation importance") for line in lines)
    assert any(line.startswith("validate: HTML report written") for line in lines)
