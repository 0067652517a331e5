"""Values a CSV-trained model never saw, over HTTP: answered, counted and flagged under serve.unseen: answer;
refused naming the field under refuse; declared limits (data.limits) refused either way."""

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tabpipe.serve import prediction_log
from tests.support.client import get, post
from tests.support.commands import dvc, env, needs, tabpipe_command
from tests.support.params import ONE_CORE, STRONG
from tests.support.projects import make_project, set_params
from tests.support.servers import serving

pytestmark = pytest.mark.integration

CSV = "data/raw/wine.csv"
# What training saw: alcohol up to 14.83, cellars north/south/east, no missing value anywhere.
STRONGER_THAN_ANY = {"alcohol": 14.9, "malic_acid": 2.0, "flavanoids": 2.5, "cellar": "north", "proline": 700.0}
UNSEEN = {**STRONGER_THAN_ANY, "cellar": "west", "malic_acid": None}
KNOWN = {"alcohol": 13.0, "malic_acid": 2.0, "flavanoids": 2.5, "cellar": "south", "proline": 700.0}


def write_wine(path: Path) -> None:
    """scikit-learn's wine data with a few of its columns and a made-up categorical one, as a user's CSV."""
    from sklearn.datasets import load_wine

    wine = load_wine(as_frame=True)
    frame = wine.frame[["alcohol", "malic_acid", "flavanoids", "proline"]].copy()
    frame["cellar"] = np.random.default_rng(0).choice(["north", "south", "east"], len(frame))
    frame["cultivar"] = [str(wine.target_names[t]) for t in wine.target]
    assert frame["alcohol"].max() == 14.83
    frame.to_csv(path, index=False)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("unseen")
    repo, home = make_project(base / "repo"), base / "bentoml"
    write_wine(repo / CSV)
    set_params(
        repo,
        **{
            "data.dataset": "csv",
            "data.path": CSV,
            "data.target": "cultivar",
            "data.limits": {"proline": {"minimum": 0.0, "maximum": 5000.0, "nullable": False}},
            "train.candidates": STRONG,
            "train.cv_folds": 3,
            "evaluate.importance_repeats": 1,
            **ONE_CORE,
        },
    )
    dvc("repro", cwd=repo, env=env(BENTOML_HOME=str(home)))
    return repo, home


@pytest.fixture(scope="module")
def answering(built: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    log = tmp_path_factory.mktemp("unseen-log") / "predictions.db"
    with serving(*built, **{prediction_log.ENV: str(log)}) as url:
        yield {"url": url, "log": log}


def unseen_counts(url: str) -> dict[tuple[str, str], float]:
    _, text = get(url, "/metrics")
    return {
        (sample.labels["column"], sample.labels["kind"]): sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "tabpipe_unseen_values"
        for sample in family.samples
        if sample.name == "tabpipe_unseen_values_total"
    }


def test_the_schema_records_observed_and_declared_limits(built: tuple[Path, Path]) -> None:
    repo, _ = built
    schema = json.loads((repo / "data/prepared/schema.json").read_text())
    limits = {f["name"]: f["limits"] for f in schema["features"]}
    assert limits == {
        "alcohol": "observed",
        "malic_acid": "observed",
        "flavanoids": "observed",
        "proline": "declared",
        "cellar": "observed",
    }
    assert json.loads((repo / "models/serving.json").read_text())["serve"]["unseen"] == "answer"


def test_unseen_values_are_answered_counted_and_flagged(answering: dict) -> None:
    url = answering["url"]
    before = unseen_counts(url)
    status, answer = post(url, {"rows": [KNOWN, STRONGER_THAN_ANY, UNSEEN]})
    assert status == 200, answer
    assert len(answer["predictions"]) == 3
    for prediction in answer["predictions"]:
        assert abs(sum(prediction["probabilities"].values()) - 1.0) < 1e-9

    after = unseen_counts(url)
    grew = {key: after[key] - before.get(key, 0.0) for key in after if after[key] != before.get(key, 0.0)}
    assert grew == {
        ("alcohol", "above_range"): 2.0,
        ("cellar", "unseen_category"): 1.0,
        ("malic_acid", "missing"): 1.0,
    }

    prediction_log.wait(answering["log"], 3)
    logged = prediction_log.read(answering["log"])
    mine = logged[logged["request_id"] == answer["request_id"]].sort_values("row")
    assert [json.loads(flags) for flags in mine["unseen"]] == [
        {},
        {"alcohol": "above_range"},
        {"alcohol": "above_range", "malic_acid": "missing", "cellar": "unseen_category"},
    ]
    assert mine["alcohol"].tolist() == [13.0, 14.9, 14.9]  # the log keeps what was sent


@needs("promtool", debian="prometheus")
def test_promtool_accepts_the_scrape_with_unseen_counts(answering: dict) -> None:
    mark = prediction_log.last_id(answering["log"])
    assert post(answering["url"], {"rows": [UNSEEN]})[0] == 200
    prediction_log.wait(answering["log"], 1, after_id=mark)  # logged before the next test takes its mark
    _, text = get(answering["url"], "/metrics")
    assert "tabpipe_unseen_values_total" in text
    checked = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_declared_limits_and_types_are_refused_under_answer(answering: dict) -> None:
    for row, field, kind in (
        ({**KNOWN, "proline": 6000.0}, "proline", "less_than_equal"),
        ({**KNOWN, "proline": None}, "proline", "float_type"),
        ({**KNOWN, "alcohol": "14.9"}, "alcohol", "float_type"),
        ({**KNOWN, "cellar": 3}, "cellar", "string_type"),
        ({**KNOWN, "vintage": 1999}, "vintage", "extra_forbidden"),
    ):
        status, answer = post(answering["url"], {"rows": [row]})
        assert status == 400, answer
        assert [(p["loc"][-1], p["type"]) for p in answer["detail"]] == [(field, kind)]
    raw = b'{"rows": [{"alcohol": Infinity, "malic_acid": 2.0, "flavanoids": 2.5, "cellar": "north", "proline": 700}]}'
    status, answer = post(answering["url"], raw)
    assert status == 400 and answer["detail"][0]["type"] == "finite_number"


def test_the_monitor_reports_unseen_values_by_column_and_kind(built: tuple[Path, Path], answering: dict) -> None:
    repo, _ = built
    mark = prediction_log.last_id(answering["log"])
    below_any_seen = {**KNOWN, "proline": 100.0}  # training's least was 278, but proline's limits are declared
    rows = [*({**KNOWN, "alcohol": 11.1 + i * 0.1} for i in range(35)), UNSEEN, below_any_seen]
    status, answer = post(answering["url"], {"rows": rows})
    assert status == 200, answer
    prediction_log.wait(answering["log"], len(rows), after_id=mark)
    out = repo / "reports" / "monitor-unseen"
    args = ["monitor", "--log", str(answering["log"]), "--after-id", str(mark), "--out", str(out)]
    result = subprocess.run(
        tabpipe_command(*args),
        cwd=repo,
        env=env(),
        capture_output=True,
        text=True,
    )
    assert result.returncode in (0, 3), result.stderr
    report = json.loads((out / "drift.json").read_text())
    assert report["unseen_rows"] == 1
    assert report["unseen_values"] == {
        "alcohol": {"above_range": 1},
        "cellar": {"unseen_category": 1},
        "malic_acid": {"missing": 1},
    }
    assert "unseen: column 'alcohol': above_range 1" in result.stderr
    assert 'tabpipe_monitor_unseen_values{feature="cellar",kind="unseen_category"' in (out / "drift.prom").read_text()


def test_under_refuse_the_same_values_get_400_naming_the_field(built: tuple[Path, Path], tmp_path: Path) -> None:
    repo, home = built
    set_params(repo, **{"serve.unseen": "refuse"})
    dvc("repro", cwd=repo, env=env(BENTOML_HOME=str(home)))  # only package reruns: the policy is serving's
    assert json.loads((repo / "models/serving.json").read_text())["serve"]["unseen"] == "refuse"
    with serving(repo, home, **{prediction_log.ENV: str(tmp_path / "log.db")}) as url:
        status, answer = post(url, {"rows": [KNOWN]})
        assert status == 200, answer
        for row, field, kind in (
            (STRONGER_THAN_ANY, "alcohol", "less_than_equal"),
            ({**KNOWN, "cellar": "west"}, "cellar", "literal_error"),
            ({**KNOWN, "malic_acid": None}, "malic_acid", "float_type"),
        ):
            status, answer = post(url, {"rows": [row]})
            assert status == 400, answer
            assert [(p["loc"][-1], p["type"]) for p in answer["detail"]] == [(field, kind)]
        assert unseen_counts(url) == {}
    prediction_log.wait(tmp_path / "log.db", 1)
    assert prediction_log.read(tmp_path / "log.db")["unseen"].tolist() == ["{}"]
