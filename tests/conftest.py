"""Fixtures, a model store of the tests' own, and which worker runs which file (shared helpers: tests/support/)."""

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from tabpipe.data.schema import Schema
from tests.support import durations
from tests.support.commands import dvc, env
from tests.support.data import TOY
from tests.support.params import FAMILIES, SLOW_FAMILIES, SMALL_ADULT, SMALL_CALIFORNIA, regressor
from tests.support.projects import Reproduced, copy_reproduced, make_project, reproduce, set_params
from tests.support.servers import Served, dask_cluster, serving

# Test files that share a session-scoped fixture (`served_family`): one worker runs them all, so
# each family is trained and served once.
SHARED_WORKER = {
    "tests/integration/test_fuzz.py": "served",
    "tests/integration/test_load.py": "served",
    "tests/integration/test_service.py": "served",
}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """xdist hands out files in collection order: longest first (tests/durations.json, which whole runs
    update) keeps both workers busy to the end.

    (First, so pytest then groups the tests of each served family, as it does for any order.)"""
    paths = dict.fromkeys(durations.file_of(item.nodeid) for item in items)
    order = durations.longest_first(paths, durations.read(config.rootpath / durations.RECORD))
    rank = {path: index for index, path in enumerate(order)}
    items.sort(key=lambda item: rank[durations.file_of(item.nodeid)])


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """xdist's file-by-file scheduling, with the files in SHARED_WORKER kept together.

    (`--dist loadgroup` would do it with marks, but it silently stops grouping under pytest 9.2:
    pytest-dev/pytest-xdist#1386.)"""
    from xdist.scheduler import LoadFileScheduling

    class ByFile(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = durations.file_of(nodeid)
            return SHARED_WORKER.get(path, path)

    return ByFile(config, log)


def pytest_configure(config: pytest.Config) -> None:
    """BentoML reads BENTOML_HOME once per process: keep the tests' model store out of ~/bentoml.

    The process that receives every report (xdist's controller) records each file's time.

    Property tests run HYPOTHESIS_PROFILE's number of examples: `dev` (the default, quick while
    working) or `ci` (.ci/run; at least 100 per property). Neither has a deadline: a per-example time
    limit is a time threshold, and it failed two properties on a busy machine (266 ms against 200)."""
    from hypothesis import settings

    if not hasattr(config, "workerinput"):  # xdist's workers pass their reports to the controller
        config.pluginmanager.register(durations.Recorder(config), "tabpipe-durations")
    os.environ["BENTOML_HOME"] = tempfile.mkdtemp(prefix="tabpipe-bentoml-")
    settings.register_profile("dev", max_examples=10, deadline=None)
    settings.register_profile("ci", max_examples=100, deadline=None)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A fresh git repository holding a copy of the project, committed, with no outputs yet."""
    return make_project(tmp_path / "repo")


@pytest.fixture(scope="session")
def golden(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Reproduced:
    """The default project after `dvc repro`, built once per test run and shared by every worker.

    Tests never change it: they take a copy (`reproduced`). The first worker to ask builds it under a
    file lock in the run's temporary folder (shared by the workers, new for every run); the others wait.
    """
    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    shared = (base.parent if worker_id != "master" else base) / "golden"
    shared.mkdir(exist_ok=True)
    with FileLock(shared / "build.lock"):
        if not (shared / "done").exists():
            for leftover in ("repo", "bentoml"):  # a build that failed in another worker
                shutil.rmtree(shared / leftover, ignore_errors=True)
            reproduce(shared)
            (shared / "done").touch()
    return Reproduced(shared / "repo", shared / "bentoml")


@pytest.fixture
def reproduced(golden: Reproduced, tmp_path: Path) -> Reproduced:
    """A copy of the reproduced default project, this test's to change (as if it had run `dvc repro`)."""
    return copy_reproduced(golden, tmp_path / "reproduced")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Dask scheduler with two worker processes on 127.0.0.1 (its address), for a module's tests."""
    with dask_cluster(tmp_path_factory.mktemp("dask")) as address:
        yield address


@pytest.fixture
def toy() -> Schema:
    return TOY


def featurized(tmp_path_factory: pytest.TempPathFactory, name: str, params: dict) -> Reproduced:
    """A project with `params` set, reproduced up to featurize (the served families train from there)."""
    base = tmp_path_factory.mktemp(name)
    repo = make_project(base / "repo")
    set_params(repo, **params)
    dvc("repro", "featurize", cwd=repo)
    return Reproduced(repo, base / "bentoml")


@pytest.fixture(scope="session")
def small_adult(tmp_path_factory: pytest.TempPathFactory) -> Reproduced:
    """The small adult project reproduced up to featurize: what every served classifier shares."""
    return featurized(tmp_path_factory, "small-adult", SMALL_ADULT)


@pytest.fixture(scope="session")
def small_california(tmp_path_factory: pytest.TempPathFactory) -> Reproduced:
    """The small california project (a regression) reproduced up to featurize."""
    return featurized(tmp_path_factory, "small-california", SMALL_CALIFORNIA)


@pytest.fixture(
    scope="session",
    params=[pytest.param(f, marks=pytest.mark.slow) if f in SLOW_FAMILIES else f for f in sorted(FAMILIES)],
)
def served_family(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """Each family served once per session, shared by the load and fuzz tests (pytest groups them).
    SLOW_FAMILIES only under `-m slow`, which serves them all.

    Classifiers learn small adult and decide by F1's threshold; a regressor small california (its
    candidates are train.regression's)."""
    family = request.param
    base = tmp_path_factory.mktemp(f"served-{family}")
    source = request.getfixturevalue("small_california" if regressor(family) else "small_adult")
    project, log = copy_reproduced(source, base), base / "log.db"
    repo, home = project.repo, project.home
    if regressor(family):
        set_params(repo, **{"train.regression.candidates": {family: FAMILIES[family]}})
    else:  # a classifier decides by a threshold (F1's), so its parity covers decided labels, not only argmax
        set_params(repo, **{"train.candidates": {family: FAMILIES[family]}, "decision.objective": "f1"})
    dvc("repro", cwd=repo, env=env(BENTOML_HOME=str(home)))
    features = json.loads((repo / "data/prepared/schema.json").read_text())["features"]
    test = pd.read_parquet(repo / "data/prepared/test.parquet")[[f["name"] for f in features]].head(3)
    rows = test.astype(object).where(test.notna(), None).to_dict(orient="records")
    with serving(repo, home, TABPIPE_PREDICTION_LOG=str(log)) as url:
        yield Served(family, repo, url, features, rows, log)
