"""Each test file's wall time, recorded by the suite's own whole runs: xdist hands out the longest first.

The record is tests/durations.json, committed, so a fresh clone (CI) has the order too.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import pytest

from tabpipe.core import files

RECORD = Path("tests/durations.json")  # under the rootdir, as the test ids are
# Options that run less than the default selection: a run with any of them measures only part.
NARROWING = ("keyword", "deselect", "ignore", "ignore_glob", "lf", "stepwise", "collectonly")


def file_of(nodeid: str) -> str:
    """The test file a test id is in (xdist hands out, and the record times, whole files)."""
    return nodeid.split("::", 1)[0]


def longest_first(paths: Iterable[str], record: Mapping[str, float]) -> list[str]:
    """`paths` by recorded time, longest first; a file not yet recorded leads (assumed long until measured).

    Ties keep the given order, so the same record always gives the same order (xdist's workers must agree)."""
    return sorted(paths, key=lambda path: (path in record, -record.get(path, 0.0)))


def per_file(reports: Iterable[tuple[str, str, float]]) -> dict[str, float]:
    """Each file's time from its tests' (test id, outcome, seconds) reports, setup and teardown included.

    A file with a test that did not pass is left out: a skip or a failure ends early, so it measured less."""
    totals: dict[str, float] = {}
    spoiled: set[str] = set()
    for nodeid, outcome, seconds in reports:
        path = file_of(nodeid)
        totals[path] = totals.get(path, 0.0) + seconds
        if outcome != "passed":
            spoiled.add(path)
    return {path: seconds for path, seconds in totals.items() if path not in spoiled}


def merged(
    record: Mapping[str, float], measured: Mapping[str, float], exists: Callable[[str], bool]
) -> dict[str, float]:
    """The record after a whole run: files measured take this run's times (to 0.1 s), the others keep theirs
    (deselected or skipped, they were not measured), and files that no longer exist are dropped."""
    kept = {path: seconds for path, seconds in record.items() if exists(path)}
    return kept | {path: round(seconds, 1) for path, seconds in measured.items()}


def marker_expression(args: Sequence[str]) -> str:
    """The `-m` expression that `args` give ("" for none; the last one wins, as on the command line)."""
    found = ""
    for index, arg in enumerate(args):
        if arg == "-m" and index + 1 < len(args):
            found = args[index + 1]
        elif arg.startswith("-m") and len(arg) > 2:
            found = arg[2:]
    return found


def read(path: Path) -> dict[str, float]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}


def write(path: Path, record: Mapping[str, float]) -> bool:
    """Write the record (atomically, sorted keys) only if it changed: a run that measured nothing new
    leaves `git status` clean."""
    if read(path) == record:
        return False
    files.write_json(path, dict(record))
    return True


def whole_run(config: pytest.Config) -> bool:
    """Whether this run selected what `python -m pytest` selects: no paths or test ids given, no -k,
    --deselect, --ignore, --lf or --sw, and pyproject's -m (so `-m slow` records nothing)."""
    return (
        config.args_source == pytest.Config.ArgsSource.TESTPATHS
        and not any(config.getoption(name, None) for name in NARROWING)
        and config.getoption("markexpr") == marker_expression(config.getini("addopts"))
    )


class Recorder:
    """Adds up each file's reports in the process that reports them all (xdist's controller, or the only
    one), and after a whole run that was not stopped early merges them into the record."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.reports: list[tuple[str, str, float]] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.reports.append((report.nodeid, report.outcome, report.duration))

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        finished = exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED)
        if not finished or session.shouldstop or session.shouldfail or not whole_run(self.config):
            return
        root = self.config.rootpath
        record = merged(read(root / RECORD), per_file(self.reports), lambda path: (root / path).is_file())
        write(root / RECORD, record)
