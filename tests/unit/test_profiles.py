"""The property-test depth follows HYPOTHESIS_PROFILE: few examples while working, at least 100 in CI."""

import subprocess
import sys

import pytest

from tests.support.commands import env
from tests.support.paths import ROOT

PROBE = """
from hypothesis import given, strategies as st

seen = []

@given(st.integers())
def test_count(n):
    seen.append(n)

def test_report():
    print(f"EXAMPLES={len(seen)}")
"""


@pytest.mark.parametrize(("profile", "low", "high"), [("dev", 1, 10), ("ci", 100, 100)])
def test_the_profile_sets_how_many_examples_a_property_gets(tmp_path, profile: str, low: int, high: int) -> None:
    probe = tmp_path / "test_probe.py"
    probe.write_text(PROBE)
    config = ["-c", str(ROOT / "pyproject.toml"), "--rootdir", str(ROOT), "-p", "tests.conftest", "-n", "0", "--no-cov"]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", *config, str(probe)],
        cwd=ROOT,
        env=env(HYPOTHESIS_PROFILE=profile),
        capture_output=True,
        text=True,
    )
    count = int(result.stdout.split("EXAMPLES=")[1].split()[0])
    assert low <= count <= high, result.stdout
