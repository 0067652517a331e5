"""Monitoring against a real `bentoml serve`: the prediction log under concurrency and restarts, the
monitor command over it, and alert rules and dashboard queries that name only metrics really exported."""

import contextlib
import json
import re
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import promql_parser
import pytest
import yaml

from tabpipe.monitor import assess
from tabpipe.serve import prediction_log
from tests.support.client import get, post
from tests.support.commands import env, needs, tabpipe_command
from tests.support.paths import ROOT
from tests.support.projects import Reproduced, copy_reproduced, set_params
from tests.support.servers import serving
from tests.support.webhook import webhook_receiver

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def site(golden: Reproduced, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    base = tmp_path_factory.mktemp("monitor")
    project = copy_reproduced(golden, base)
    yield {"repo": project.repo, "home": project.home, "log": base / "log" / "predictions.db"}


def started(site: dict) -> contextlib.AbstractContextManager[str]:
    return serving(site["repo"], site["home"], **{prediction_log.ENV: str(site["log"])})


def rows_of(frame: pd.DataFrame, schema: list[str]) -> list[dict]:
    return frame[schema].astype(object).to_dict(orient="records")


def send(url: str, rows: list[dict], sizes: list[int]) -> list[dict]:
    """Post `rows` in requests of the given sizes from 8 threads at once; every answer must be 200."""
    chunks, start = [], 0
    for size in sizes:
        chunks.append(rows[start : start + size])
        start += size

    def one(chunk: list[dict]) -> dict:
        status, answer = post(url, {"rows": chunk})
        assert status == 200, answer
        return {"rows": chunk, **answer}

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(one, chunks))


def monitor(repo: Path, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        tabpipe_command("monitor", *args),
        cwd=repo,
        env=env(**extra_env),
        capture_output=True,
        text=True,
    )


def test_every_answered_row_is_logged_once_in_order_across_a_restart(site: dict) -> None:
    repo = site["repo"]
    features = json.loads((repo / "data/prepared/schema.json").read_text())["features"]
    train = pd.read_parquet(repo / "data/prepared/train.parquet")
    rows = rows_of(train, [f["name"] for f in features]) * 3
    sizes = [1 + i % 5 for i in range(110)]
    with started(site) as url:
        answers = send(url, rows, sizes)
        status, info = post(url, {}, "/model")
        assert status == 200 and info["prediction_log"] == str(site["log"])
    with started(site) as url:  # a restarted service appends to the same log
        answers += send(url, rows[: sum(sizes[:20])], sizes[:20])

    prediction_log.wait(site["log"], sum(sizes) + sum(sizes[:20]))
    logged = prediction_log.read(site["log"])
    assert len(logged) == sum(sizes) + sum(sizes[:20]) == sum(len(a["rows"]) for a in answers)
    by_request = {rid: part for rid, part in logged.groupby("request_id")}
    assert set(by_request) == {a["request_id"] for a in answers}
    for answer in answers:
        part = by_request[answer["request_id"]].sort_values("row")
        assert part["row"].tolist() == list(range(len(answer["rows"])))
        assert np.all(np.diff(part["id"].to_numpy()) == 1)  # never interleaved with another request
        assert part["label"].tolist() == [p["label"] for p in answer["predictions"]]
        assert part[list(answer["rows"][0])].to_dict(orient="records") == answer["rows"]
        served = [p["probabilities"]["setosa"] for p in answer["predictions"]]
        assert part["proba_setosa"].tolist() == served


def test_monitor_is_healthy_on_like_traffic_and_advises_retraining_on_shifted(site: dict, tmp_path: Path) -> None:
    repo, log = site["repo"], site["log"]
    # A ceiling on the Brier score too, so an error's ceiling is exported (iris has no decision costs).
    set_params(repo, **{"monitor.max_metric_rise": {"expected_cost": 0.05, "brier": 0.05}})
    schema = json.loads((repo / "data/prepared/schema.json").read_text())
    names = [f["name"] for f in schema["features"]]
    train = pd.read_parquet(repo / "data/prepared/train.parquet")
    reference = len(pd.read_parquet(repo / "data/prepared/test.parquet"))
    # Like traffic: every iris row, train and test (the 33 test rows alone are a noisy reference for
    # the predicted classes: the first 112 training rows' differ from theirs by 0.107, over the 0.1 bound).
    every_row = pd.concat([train, pd.read_parquet(repo / "data/prepared/test.parquet")], ignore_index=True)
    with started(site) as url, webhook_receiver() as hook:
        mark = prediction_log.last_id(log)
        answers = send(url, rows_of(every_row, names), [10] * 15)
        labels = pd.DataFrame(
            [
                {"request_id": a["request_id"], "row": i, "species": every_row["species"].iloc[n * 10 + i]}
                for n, a in enumerate(answers)
                for i in range(len(a["rows"]))
            ]
        )
        labels.to_csv(tmp_path / "labels.csv", index=False)
        prediction_log.wait(log, len(labels), after_id=mark)
        like = monitor(
            repo,
            *("--log", str(log), "--after-id", str(mark), "--labels", str(tmp_path / "labels.csv")),
            TABPIPE_WEBHOOK_URL=hook.url,
        )
        assert hook.received == []  # healthy: nothing to tell
        assert like.returncode == assess.HEALTHY, like.stderr
        healthy = json.loads((repo / "reports/monitor/drift.json").read_text())
        labelled_prom = (repo / "reports/monitor/drift.prom").read_text()
        assert healthy["rows"] == len(every_row) and healthy["retrain"] == 0 and healthy["labelled"]["accuracy"] >= 0.9

        mark = prediction_log.last_id(log)
        small_petals = train[train["petal_length"] < 2.0]  # traffic from one corner of the data only
        send(url, rows_of(small_petals, names), [len(small_petals)])
        prediction_log.wait(log, len(small_petals), after_id=mark)
        shifted = monitor(repo, "--log", str(log), "--after-id", str(mark), TABPIPE_WEBHOOK_URL=hook.url)
        post(url, {"rows": []})  # one refused request, so the rejection counter is exported too
        scrape = get(url, "/metrics")[1]
    assert shifted.returncode == assess.RETRAIN, shifted.stderr
    (advice,) = [r["body"]["text"] for r in hook.received]
    assert advice.startswith("Retrain advised for tabpipe-iris:") and f"{len(small_petals)} rows" in advice
    assert "drift: important feature(s)" in advice
    assert "retrain: drift: important feature(s)" in shifted.stderr and "petal" in shifted.stderr
    assert "monitor: reading the prediction log" in shifted.stderr
    assert (
        f"monitor: drift of {len(small_petals)} rows against {reference} reference rows, 4 features (Evidently)"
        in shifted.stderr
    )
    found = json.loads((repo / "reports/monitor/drift.json").read_text())
    assert found["retrain"] == 1 and found["prediction_drifted"] == 1
    assert (repo / "reports/monitor/drift.html").stat().st_size > 100_000
    site["texts"] = {
        "service": scrape,
        "labelled": labelled_prom,
        "shifted": (repo / "reports/monitor/drift.prom").read_text(),
    }
    site["scrape"] = "".join(site["texts"].values())
    assert "tabpipe_labelled_metric_threshold{" in labelled_prom
    assert 'tabpipe_labelled_metric_ceiling{metric="brier"' in labelled_prom


@needs("promtool", debian="prometheus")
def test_promtool_accepts_the_service_scrape_and_the_monitor_textfiles(site: dict) -> None:
    if "texts" not in site:
        pytest.skip("needs the monitor test's scrape")
    for name, text in site["texts"].items():
        checked = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
        assert checked.returncode == 0, f"{name}: {checked.stdout}{checked.stderr}"


def exported(site: dict) -> set[str]:
    if "scrape" not in site:
        pytest.skip("needs the monitor test's scrape")
    return set(re.findall(r"^([a-zA-Z_:][\w:]*)", site["scrape"], flags=re.M))


def names_in(expr: str) -> set[str]:
    promql_parser.parse(expr)  # raises on invalid PromQL
    return set(re.findall(r"\b((?:tabpipe|bentoml)_\w+)", expr))


def test_alert_rules_are_valid_and_name_only_exported_metrics(site: dict) -> None:
    rules = yaml.safe_load((ROOT / "monitoring/alerts.yml").read_text())
    seen = exported(site)
    alerts = [rule for group in rules["groups"] for rule in group["rules"]]
    assert {"TabpipeFeatureDrift", "TabpipePredictionDrift", "TabpipeServerErrors", "TabpipeHighLatency"} <= {
        r["alert"] for r in alerts
    }
    for rule in alerts:
        assert rule["labels"]["severity"] in ("warning", "critical") and rule["annotations"]["summary"]
        assert re.fullmatch(r"\d+[smh]", rule["for"])
        missing = names_in(rule["expr"]) - seen
        assert not missing, f"{rule['alert']} uses metrics nothing exports: {missing}"


def test_dashboard_queries_are_valid_and_name_only_exported_metrics(site: dict) -> None:
    dashboard = json.loads((ROOT / "monitoring/grafana-dashboard.json").read_text())
    seen = exported(site)
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert len(exprs) >= 10 and len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    for expr in exprs:
        assert not names_in(expr) - seen, expr
