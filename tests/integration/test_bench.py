"""Each benchmark runs end to end on a tiny setting and reports what BENCHMARKS.md tabulates (no timings asserted)."""

import json
import subprocess
from pathlib import Path

import pytest

from tests.support.commands import env, needs, tabpipe_command
from tests.support.paths import ROOT
from tests.support.projects import Reproduced

pytestmark = pytest.mark.integration


def bench(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        tabpipe_command("bench", name, *args),
        cwd=ROOT,
        env=env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@needs("wrk", debian="wrk")
def test_serving_benchmark_measures_every_server_the_same_way(tmp_path: Path) -> None:
    out = tmp_path / "serving.json"
    args = ["--duration", "1", "--concurrency", "1", "--concurrency", "2", "--batch", "10", "--model", "boosting"]
    args += ["--fraction", "0.05", "--workers", "1", "--rounds", "1", "--out", str(out)]
    result = bench("serving", *args)
    report = json.loads(out.read_text())
    assert report["settings"]["workers"] == 1 and report["settings"]["rounds"] == 1
    figures = report["results"]["boosting"]
    assert figures["in_process"]["compiled_row_ms"] > 0 and figures["in_process"]["pipeline_row_ms"] > 0
    steps = figures["in_process"]["request_1000_ms"]  # a 1,000-row request's steps in the service
    assert set(steps) == {"validate", "records", "checks", "predict", "answer", "encode", "log", "total"}
    assert all(value > 0 for value in steps.values())
    assert steps["total"] == pytest.approx(sum(value for name, value in steps.items() if name != "total"), abs=1e-3)
    for kind in ("ours", "fastapi", "mlflow", "ceiling", "ceiling_standard"):  # all of them, in turns
        measured = figures[kind]
        for level in ("1", "2"):
            assert measured["single"][level]["rps"] > 0 and measured["single"][level]["errors"] == 0
            assert 0 < measured["single"][level]["p50_ms"] <= measured["single"][level]["p99_ms"]
            rounds = measured["single"][level]["rounds"]
            assert len(rounds) == 1 and min(rounds) <= measured["single"][level]["rps"] <= max(rounds)
        assert measured["batch"]["10"]["errors"] == 0
        assert measured["batch"]["10"]["rows_per_s"] == round(measured["batch"]["10"]["rps"] * 10)
    assert "| boosting | ours |" in result.stdout and "| boosting | mlflow |" in result.stdout
    assert "BentoML ceiling (constant, finished response)" in result.stdout
    assert "| boosting | " in result.stdout.split("c=2: ours / ceiling")[1]  # the ratios, per family


@pytest.mark.slow
def test_pipeline_benchmark_times_repro_and_the_bare_script(tmp_path: Path) -> None:
    """About 100 s (iris pipelines and the bare script), so behind `slow`:
    pytest -m slow tests/integration/test_bench.py"""
    out = tmp_path / "pipeline.json"
    result = bench("pipeline", "--dataset", "iris", "--scaling", "none", "--out", str(out))
    (iris,) = json.loads(out.read_text())["datasets"]
    assert [s["stage"] for s in iris["stages"]] == [
        "ingest",
        "validate",
        "featurize",
        "train",
        "compile",
        "evaluate",
        "gate",
        "package",
    ]
    assert all(s["tree_peak_mb"] >= s["peak_mb"] > 50 for s in iris["stages"])
    # Imports are summed over a stage's processes: train's workers import in parallel with it.
    assert all(s["imports_s"] > 0 for s in iris["stages"])
    assert all(s["imports_s"] < s["seconds"] for s in iris["stages"] if s["stage"] != "train")
    assert iris["experiment_stages"] == ["train", "compile", "evaluate", "gate", "package"]
    assert [s["stage"] for s in iris["experiment_timed_stages"]] == iris["experiment_stages"]
    assert iris["experiment_bare_s"] > 0 and iris["experiment_ratio"] > 0
    assert "| iris | `dvc exp run -S train.cv_folds=4 -S gate.champion.tolerance=1.0` |" in result.stdout
    train_rows = json.loads((ROOT / "metrics/ingest.json").read_text())["train_rows"]  # the default project's
    assert (iris["winner"], iris["searched_rows"]) == ("logreg", train_rows) and 0.5 < iris["roc_auc"] <= 1
    assert iris["one_param_change_stages"] == ["evaluate"] and iris["bare_s"] > 0 and iris["ratio"] > 0
    assert f"| iris | {train_rows} |" in result.stdout


def test_the_batch_ceiling_runs_the_served_graph_on_the_repeated_test_rows(golden: Reproduced) -> None:
    """onnxruntime's own call on the served graph's packed inputs: rows repeated past the test split's
    length, in chunks, with a time to show for it (the project is only read)."""
    from tabpipe.bench import batch

    measured = batch.ceiling(golden.repo, rows=1000, chunk_rows=300)
    assert set(measured) == {"seconds"} and measured["seconds"] > 0
