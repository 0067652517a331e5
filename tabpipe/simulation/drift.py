"""Drift simulation: serve a model, replay "future" batches through it, monitor, and retrain through the pipeline.

    tabpipe simulate employment     # train on 2015; replay 2016, 2017, 2018; retrain when advised
    tabpipe simulate adult          # iid, shifted-age and category-shifted batches

It works in a scratch copy of the project (its own git repository, MLflow store, BentoML store
and prediction log), so the workspace and its registry are left alone. A retrain is
`dvc exp run -S data.years=[...]` in that copy: the whole pipeline, gate included; the service is
restarted on whatever model the gate let through. Writes <out>/<scenario>.csv, .md and .png.
Every line `dvc exp run` and the monitor print is passed through as it comes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from tabpipe.core.errors import PipelineError

BIN = Path(sys.executable).parent
CHUNK = 1000
# A quicker model search than params.yaml's: the loop retrains several times.
CANDIDATES = {
    "boosting": {
        "estimator": "hist_gradient_boosting",
        "fixed": {"max_iter": 200, "early_stopping": False},
        "grid": {"learning_rate": [0.1]},
    }
}
SCENARIOS = {
    "employment": {"data.dataset": "employment", "data.years": [2015], "data.fraction": 1.0},
    "adult": {"data.dataset": "adult", "data.fraction": 0.5},
}


def say(message: str) -> None:
    print(f"simulation: {message}", file=sys.stderr, flush=True)


def stream(args: list[str], repo: Path, environ: dict[str, str]) -> tuple[int, list[str]]:
    """Run a command, passing each output line on as it comes (indented); its exit status and lines."""
    lines = []
    with subprocess.Popen(
        args, cwd=repo, env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            print(f"  | {line.rstrip()}", file=sys.stderr, flush=True)
            lines.append(line.rstrip())
    return process.returncode, lines


def pipeline(repo: Path, environ: dict[str, str], years: list[int] | None = None) -> tuple[bool, str]:
    """`dvc exp run` (the whole pipeline, gate included); (passed, first error line)."""
    args = [str(BIN / "dvc"), "exp", "run"]
    if years:
        args += ["-S", f"data.years={json.dumps(years)}"]
    say(" ".join(["dvc", *args[1:]]))
    code, lines = stream(args, repo, environ)
    errors = [line for line in lines if line.startswith("error:")]
    if code != 0 and not errors:
        raise RuntimeError("dvc exp run failed:\n" + "\n".join(lines[-40:]))
    return code == 0, errors[0] if errors else ""


def replay(url: str, batch: Any, features: list[str], target: str) -> Any:
    """Post the batch through the service; returns the labels keyed as the log keys them."""
    import pandas as pd

    labels = []
    for start in range(0, len(batch), CHUNK):
        part = batch.iloc[start : start + CHUNK]
        rows = part[features].astype(object).where(part[features].notna(), None).to_dict(orient="records")
        request = urllib.request.Request(
            f"{url}/predict", data=json.dumps({"rows": rows}).encode(), headers={"content-type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=120) as answer:
            request_id = json.loads(answer.read())["request_id"]
        labels += [{"request_id": request_id, "row": i, target: y} for i, y in enumerate(part[target])]
    return pd.DataFrame(labels)


def monitor(repo: Path, environ: dict[str, str], after_id: int, labels: Path) -> dict[str, Any]:
    code, lines = stream(
        [sys.executable, "-m", "tabpipe", "monitor", "--after-id", str(after_id), "--labels", str(labels)],
        repo,
        environ,
    )
    if code not in (0, 3):
        raise RuntimeError("monitor failed:\n" + "\n".join(lines[-20:]))
    return json.loads((repo / "reports/monitor/drift.json").read_text())


def batches(scenario: str, repo: Path, fraction: float, seed: int) -> list[tuple[str, Any]]:
    """(name, frame) per batch: later survey years, or adult's held-out rows with drift injected."""
    import pandas as pd

    from tabpipe.core import settings
    from tabpipe.core.layout import paths
    from tabpipe.data import datasets

    if scenario == "employment":
        data = settings.read(repo / "params.yaml").section(settings.Data)
        everything = data.model_copy(update={"dataset": "employment", "years": []})
        frame = datasets.load(everything, repo, paths(repo)["data"]["raw"], seed=seed).frame
        return [
            (str(year), frame[frame["year"] == year].sample(frac=fraction, random_state=seed))
            for year in (2016, 2017, 2018)
        ]
    test = pd.read_parquet(repo / "data/prepared/test.parquet")
    iid, aged, shifted = (test.iloc[i::3].copy() for i in range(3))
    aged["age"] = (aged["age"] + 8).clip(upper=90)
    husbands = shifted.index[shifted["relationship"] == "Husband"]
    shifted.loc[husbands[: int(len(husbands) * 0.6)], "relationship"] = "Unmarried"
    shifted["hours-per-week"] = (shifted["hours-per-week"] * 1.25).clip(upper=99).round()
    return [("iid", iid), ("age +8", aged), ("relationship, hours", shifted)]


def simulate(
    root: Path, scenario: str, workdir: Path, overrides: dict[str, Any], limit: int | None = None
) -> list[dict[str, Any]]:
    from tabpipe.sandbox import project, servers
    from tabpipe.serve import prediction_log

    environ = project.environment(workdir, BIN, TABPIPE_PREDICTION_LOG=str(workdir / "predictions.db"))
    repo = project.copy_project(root, workdir / "repo", environ)
    base = {**SCENARIOS[scenario], "train.candidates": CANDIDATES, "train.cv_folds": 3, **overrides}
    project.set_params(repo, base)
    subprocess.run(["git", "commit", "-qam", f"simulation: {scenario}"], cwd=repo, env=environ, check=True)
    say(f"{scenario}: training the first model in {repo}")
    passed, error = pipeline(repo, environ)
    if not passed:
        raise RuntimeError(f"the first model did not pass the gate: {error}")
    schema = json.loads((repo / "data/prepared/schema.json").read_text())
    features, target = [f["name"] for f in schema["features"]], schema["target"]
    params = yaml.safe_load((repo / "params.yaml").read_text())
    fraction, seed = float(params["data"]["fraction"]), int(params["base"]["seed"])
    years = list(params["data"].get("years") or [])
    log = Path(environ["TABPIPE_PREDICTION_LOG"])
    table = []
    for name, batch in batches(scenario, repo, fraction, seed)[:limit]:
        started = time.monotonic()
        say(f"batch {name}: serving the champion and replaying {len(batch):,} rows")
        serving = json.loads((repo / "models/serving.json").read_text())
        with servers.bentoml_serve(repo, BIN, environ) as url:
            mark = prediction_log.last_id(log)
            labels = replay(url, batch, features, target)
            prediction_log.wait(log, len(labels), after_id=mark)  # the service's writer commits just after answering
        labels.to_csv(workdir / "labels.csv", index=False)
        say(f"batch {name}: monitoring")
        found = monitor(repo, environ, mark, workdir / "labels.csv")
        row = {
            "batch": name,
            "rows": found["rows"],
            "model": serving["tag"].split(":", 1)[1][:8],
            "drift_share": found["drift_share"],
            "drifted": ", ".join(f for f, drifted in _drifted(found, repo).items() if drifted) or "-",
            "prediction_drift": found["prediction_drift"],
            "accuracy": found["labelled"].get("accuracy"),
            "roc_auc": found["labelled"].get("roc_auc"),
            "retrain_advised": bool(found["retrain"]),
            "reasons": "; ".join(found["reasons"]) or "-",
            "retrained": "-",
            "new_test_accuracy": None,
            "new_test_roc_auc": None,
        }
        if found["retrain"] and scenario == "employment":
            years = sorted({*years, int(name)})
            say(f"batch {name}: retraining on years {years[0]}-{years[-1]}")
            passed, error = pipeline(repo, environ, years)
            evaluation = json.loads((repo / "metrics/evaluate.json").read_text())
            row["retrained"] = f"years {years[0]}-{years[-1]}: " + ("gate passed" if passed else f"refused ({error})")
            row["new_test_accuracy"], row["new_test_roc_auc"] = evaluation["accuracy"], evaluation["roc_auc"]
        row["seconds"] = round(time.monotonic() - started, 1)
        table.append(row)
        print(json.dumps(row), file=sys.stderr)
    return table


def _drifted(found: dict[str, Any], repo: Path) -> dict[str, bool]:
    """Which features the monitor flagged (p-value below, or distance at or above, the threshold)."""
    settings = yaml.safe_load((repo / "params.yaml").read_text())["monitor"]["drift"]
    kinds = {f["name"]: f["kind"] for f in json.loads((repo / "data/prepared/schema.json").read_text())["features"]}
    return {
        name: score < settings["num_threshold"] if kinds[name] == "numeric" else score >= settings["cat_threshold"]
        for name, score in found["feature_drift"].items()
    }


def plot(table: list[dict[str, Any]], title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [row["batch"] for row in table]
    x = range(len(table))
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    top.bar(x, [row["drift_share"] for row in table], color="tab:orange", label="drifted share of features")
    top.plot(x, [row["prediction_drift"] for row in table], "k^-", label="prediction drift (JS distance)")
    for i, row in enumerate(table):
        if row["retrain_advised"]:
            top.annotate("retrain advised", (i, row["drift_share"]), ha="center", va="bottom", color="tab:red")
    top.set_ylim(0, 1.3 * max(max(row["drift_share"], row["prediction_drift"]) for row in table) or 0.1)
    top.set_ylabel("drift")
    top.legend(loc="upper left", fontsize=8)
    bottom.plot(x, [row["roc_auc"] for row in table], "o-", label="served model, ROC AUC on the batch")
    bottom.plot(x, [row["accuracy"] for row in table], "s-", label="served model, accuracy on the batch")
    retrained = [(i, row) for i, row in enumerate(table) if row["new_test_roc_auc"] is not None]
    if retrained:
        bottom.plot(
            [i for i, _ in retrained],
            [r["new_test_roc_auc"] for _, r in retrained],
            "r*",
            markersize=14,
            label="retrained model, test ROC AUC",
        )
    bottom.set_ylabel("metric")
    bottom.set_xticks(list(x), names)
    bottom.legend(loc="lower left", fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def markdown(table: list[dict[str, Any]]) -> str:
    columns = list(table[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join("" if row[c] is None else str(row[c]) for c in columns) + " |" for row in table]
    return "\n".join(lines) + "\n"


def run(
    root: Path, scenario: str, out: Path, workdir: Path | None, overrides: dict[str, Any], limit: int | None = None
) -> None:
    """Simulate in a scratch copy of the project at `root`; writes the table, its markdown and its chart to `out`."""
    import pandas as pd

    if scenario not in SCENARIOS:
        raise PipelineError(f"simulate: unknown scenario {scenario!r}; choose from {', '.join(sorted(SCENARIOS))}")
    with tempfile.TemporaryDirectory(prefix="tabpipe-simulation-") as temporary:
        folder = workdir or Path(temporary)
        folder.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        try:
            table = simulate(root, scenario, folder.resolve(), overrides, limit)
        except RuntimeError as error:
            raise PipelineError(f"simulation: {error}") from error
    out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(table).to_csv(out / f"{scenario}.csv", index=False)
    (out / f"{scenario}.md").write_text(markdown(table))
    plot(table, f"Drift simulation: {scenario}", out / f"{scenario}.png")
    say(f"{scenario} in {time.monotonic() - started:.0f} s; see {out}")
