"""The suite's file order comes from the times its own whole runs record (tests/support/durations.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support import durations
from tests.support.commands import env
from tests.support.paths import ROOT

pytest_plugins = ["pytester"]

PATH = st.sampled_from([f"tests/test_{n}.py" for n in range(12)])
SECONDS = st.floats(min_value=0, max_value=1e4, allow_nan=False)
# A scratch suite: a quick file, a slow one, one whose test skips.
SUITE = {
    "pyproject.toml": '[tool.pytest.ini_options]\ntestpaths = ["tests"]\naddopts = "-m \'not slow\'"\n',
    "tests/test_short.py": "def test_short():\n    pass\n",
    "tests/test_long.py": "import time\n\n\ndef test_long():\n    time.sleep(0.5)\n",
    "tests/test_skips.py": "import pytest\n\n\ndef test_skips():\n    pytest.skip('measures nothing')\n",
}


@given(st.lists(PATH, unique=True), st.dictionaries(PATH, SECONDS))
def test_unrecorded_files_lead_then_the_longest_and_ties_keep_their_order(paths: list[str], record: dict) -> None:
    order = durations.longest_first(paths, record)
    assert sorted(order) == sorted(paths)
    recorded = [path in record for path in order]
    assert recorded == sorted(recorded)  # every unrecorded file before every recorded one
    times = [record[path] for path in order if path in record]
    assert times == sorted(times, reverse=True)
    for first, second in pairwise(order):
        if record.get(first) == record.get(second):
            assert paths.index(first) < paths.index(second)


def test_a_new_file_goes_first_and_the_rest_longest_first() -> None:
    record = {"tests/a.py": 1.0, "tests/b.py": 30.0, "tests/c.py": 2.5}
    order = durations.longest_first(["tests/a.py", "tests/b.py", "tests/c.py", "tests/new.py"], record)
    assert order == ["tests/new.py", "tests/b.py", "tests/c.py", "tests/a.py"]


def test_a_file_adds_its_tests_phases_and_one_that_did_not_pass_measures_nothing() -> None:
    reports = [
        ("tests/a.py::test_one", "passed", 1.0),
        ("tests/a.py::test_one", "passed", 2.0),
        ("tests/a.py::test_two[x]", "passed", 0.5),
        ("tests/b.py::test_one", "passed", 4.0),
        ("tests/b.py::test_two", "skipped", 0.0),
        ("tests/c.py::test_one", "failed", 0.1),
    ]
    assert durations.per_file(reports) == {"tests/a.py": 3.5}


@given(
    st.dictionaries(PATH, SECONDS),
    st.dictionaries(PATH, SECONDS),
    st.sets(PATH),
)
def test_merging_takes_what_ran_keeps_what_exists_and_drops_what_is_gone(
    record: dict, measured: dict, gone: set
) -> None:
    result = durations.merged(record, measured, lambda path: path not in gone)
    for path, seconds in measured.items():
        assert result[path] == round(seconds, 1)
    for path, seconds in record.items():
        if path not in measured and path not in gone:
            assert result[path] == seconds  # not run this time: its last measure stays
    assert set(result) == set(measured) | (set(record) - gone)


@pytest.mark.parametrize(
    ("args", "expression"),
    [
        (["-m", "not slow", "--strict-markers"], "not slow"),
        (["-mslow"], "slow"),
        (["-m", "slow", "-n", "2", "-m", "not slow"], "not slow"),
        (["--strict-markers", "-n", "2"], ""),
    ],
)
def test_the_marker_expression_is_the_last_m_option(args: list[str], expression: str) -> None:
    assert durations.marker_expression(args) == expression


def test_the_record_is_written_sorted_and_only_when_it_changed(tmp_path: Path) -> None:
    path = tmp_path / "durations.json"
    assert durations.write(path, {"tests/b.py": 2.0, "tests/a.py": 1.5})
    assert path.read_text() == '{\n  "tests/a.py": 1.5,\n  "tests/b.py": 2.0\n}\n'
    inode = path.stat().st_ino
    assert not durations.write(path, {"tests/a.py": 1.5, "tests/b.py": 2.0})
    assert path.stat().st_ino == inode  # not replaced: git sees no change
    assert durations.write(path, {"tests/a.py": 1.5})
    assert durations.read(path) == {"tests/a.py": 1.5}


@pytest.mark.parametrize(
    ("args", "whole"),
    [
        ([], True),
        (["-m", "not slow"], True),
        (["-m", "slow"], False),
        (["-k", "short"], False),
        (["tests/test_short.py"], False),
        (["tests/test_short.py::test_short"], False),
        (["--deselect", "tests/test_short.py::test_short"], False),
        (["--ignore", "tests/test_short.py"], False),
        (["--lf"], False),
        (["--sw"], False),
        (["--collect-only"], False),
    ],
)
def test_only_a_run_of_the_default_selection_counts_as_whole(
    pytester: pytest.Pytester, args: list[str], whole: bool
) -> None:
    pytester.makepyprojecttoml(SUITE["pyproject.toml"])
    pytester.mkdir("tests")
    (pytester.path / "tests/test_short.py").write_text(SUITE["tests/test_short.py"])
    assert durations.whole_run(pytester.parseconfig(*args)) is whole


def run_suite(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """pytest in `root` with this suite's conftest as a plugin (so its hooks order and record)."""
    options = ["-p", "tests.conftest", "-p", "no:cacheprovider", "--no-cov", "-q", *args]
    return subprocess.run(
        [sys.executable, "-m", "pytest", *options],
        cwd=root,
        env=env(PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
    )


def test_a_whole_run_under_xdist_records_each_file_and_a_partial_run_follows_the_record_without_writing(
    tmp_path: Path,
) -> None:
    for name, text in SUITE.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    record = tmp_path / durations.RECORD
    record.write_text(json.dumps({"tests/test_skips.py": 9.0, "tests/test_gone.py": 5.0}))

    result = run_suite(tmp_path, "-n", "1")  # under xdist, as CI runs the suite
    assert result.returncode == 0, result.stdout + result.stderr
    measured = json.loads(record.read_text())
    assert set(measured) == {"tests/test_long.py", "tests/test_short.py", "tests/test_skips.py"}
    assert measured["tests/test_skips.py"] == 9.0  # skipped: not measured, its time stays
    assert measured["tests/test_long.py"] >= 0.5 > measured["tests/test_short.py"]

    (tmp_path / "tests/test_new.py").write_text("def test_new():\n    pass\n")
    written = record.read_bytes()
    partial = run_suite(tmp_path, "-n", "0", "-rA", "-k", "not skips")
    ran = [line.split()[1].split("::")[0] for line in partial.stdout.splitlines() if line.startswith("PASSED ")]
    assert ran == ["tests/test_new.py", "tests/test_long.py", "tests/test_short.py"], partial.stdout
    assert record.read_bytes() == written  # measured, but not the whole selection: the record stays
