"""Search benchmark: `dvc repro` from clean with the search as it was, and as it is, side by side in one run.

    tabpipe bench search                      # adult (about 8 minutes)
    tabpipe bench search --dataset employment

Each variant runs in its own scratch copy of the project with the default params.yaml and
data.dataset set; only the keys a variant names differ. Absolute times drift 10-20% between
runs on this machine, so the ratio to the first variant, within one run, is what to read.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from tabpipe.bench.pipeline import BIN, prepare, stages, timed
from tabpipe.core import files
from tabpipe.core.errors import PipelineError
from tabpipe.sandbox import project

BEFORE = {  # train.candidates before the search raced them (issue 16): 11 configurations, all on every row
    "logreg": {"estimator": "logistic_regression", "grid": {"C": [0.1, 1.0, 10.0]}},
    "forest": {
        "estimator": "random_forest",
        "fixed": {"n_estimators": 200, "n_jobs": 1},
        "grid": {"max_depth": [10, None], "min_samples_leaf": [1, 5]},
    },
    "boosting": {
        "estimator": "hist_gradient_boosting",
        "fixed": {"max_iter": 300, "early_stopping": False},
        "grid": {"learning_rate": [0.05, 0.1], "max_leaf_nodes": [15, 31]},
    },
}
VARIANTS: dict[str, dict[str, Any]] = {
    "before: grid, old candidates, importance on every test row": {
        "train.search.method": "grid",
        "train.candidates": BEFORE,
        "evaluate.importance_rows": 0,
    },
    "grid: today's candidates, every configuration on every row": {"train.search.method": "grid"},
    "default: successive halving (params.yaml)": {},
}


def run_variant(root: Path, dataset: str, name: str, values: dict[str, Any], workdir: Path) -> dict[str, Any]:
    folder = workdir / str(len(list(workdir.iterdir())))
    environ = project.environment(folder, BIN)
    repo = project.copy_project(root, folder / "repo", environ)
    prepare(repo, {"data.dataset": dataset, **values}, environ)
    seconds, _ = timed([str(BIN / "dvc"), "repro"], repo, environ)
    trained = json.loads((repo / "metrics/train.json").read_text())
    evaluated = json.loads((repo / "metrics/evaluate.json").read_text())
    result = {
        "variant": name,
        "repro_s": round(seconds, 1),
        "stages": stages(repo),
        "winner": trained["winner"],
        "fits": trained.get("fits"),
        "roc_auc": evaluated["roc_auc"],
        "accuracy": evaluated["accuracy"],
    }
    print(json.dumps(result), file=sys.stderr)
    return result


def table(dataset: str, results: list[dict[str, Any]]) -> str:
    base = results[0]["repro_s"]
    lines = [
        f"| {dataset}: variant | dvc repro s | ratio | train s | evaluate s | fits | winner | ROC AUC | accuracy |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        seconds = {s["stage"]: s["seconds"] for s in r["stages"]}
        lines.append(
            f"| {r['variant']} | {r['repro_s']} | {r['repro_s'] / base:.2f} | {seconds.get('train', '-')} |"
            f" {seconds.get('evaluate', '-')} | {r['fits'] if r['fits'] is not None else '-'} | {r['winner']} |"
            f" {r['roc_auc']} | {r['accuracy']} |"
        )
    return "\n".join(lines) + "\n"


def run(root: Path, dataset: str, out: Path) -> str:
    """Every variant from clean, one after another; writes `out` (JSON) and returns the table."""
    with tempfile.TemporaryDirectory(prefix="tabpipe-bench-search-") as temporary:
        try:
            results = [run_variant(root, dataset, name, values, Path(temporary)) for name, values in VARIANTS.items()]
        except RuntimeError as error:
            raise PipelineError(f"bench: {error}") from error
    files.write_json(out, {"dataset": dataset, "variants": results})
    return table(dataset, results)
