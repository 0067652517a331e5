"""Pipeline benchmark: `dvc repro` from clean, no-op and after one parameter change, beside a bare one-process script.

    tabpipe bench pipeline                                   # iris, adult, employment (about 30 min)
    tabpipe bench pipeline --datasets iris --scaling ""      # a quick run
    tabpipe bench pipeline --scaling employment --fractions 0.125,0.25,0.5,1

Each run is in a scratch copy of the project with the default params.yaml (only data.dataset and
data.fraction set). Every stage command is wrapped so that its wall time and peak resident memory
(the largest process, loky workers included) are recorded. Results go to --out (JSON) and stdout.
"""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from tabpipe.core import files
from tabpipe.core.errors import PipelineError
from tabpipe.sandbox import scratch

BIN = Path(sys.executable).parent
WRAPPER = '''"""Run a stage command; record its wall time and the peak RSS of its largest process."""
import json, resource, subprocess, sys, time
stage, command = sys.argv[1], sys.argv[2]
started = time.perf_counter()
code = subprocess.call(command, shell=True)
peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
with open(".bench-stages.jsonl", "a") as out:
    out.write(json.dumps({"stage": stage, "seconds": time.perf_counter() - started, "peak_mb": peak_kb / 1024}) + "\\n")
sys.exit(code)
'''


def prepare(repo: Path, values: dict[str, Any], environ: dict[str, str]) -> None:
    """Set params, wrap every stage command with the recorder, and commit (DVC needs a commit)."""
    scratch.set_params(repo, values)
    (repo / "bench_stage.py").write_text(WRAPPER)
    pipeline = yaml.safe_load((repo / "dvc.yaml").read_text())
    for name, stage in pipeline["stages"].items():
        stage["cmd"] = f"python bench_stage.py {name} {json.dumps(stage['cmd'])}"
    (repo / "dvc.yaml").write_text(yaml.safe_dump(pipeline, sort_keys=False))
    (repo / ".gitignore").write_text((repo / ".gitignore").read_text() + "/.bench-stages.jsonl\n")
    for args in (["git", "add", "-A"], ["git", "commit", "-qm", "bench"]):
        subprocess.run(args, cwd=repo, env=environ, check=True, capture_output=True)


def timed(args: list[str], repo: Path, environ: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run(args, cwd=repo, env=environ, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{result.stderr[-2000:]}")
    return seconds, result.stdout


def stages(repo: Path) -> list[dict[str, Any]]:
    path = repo / ".bench-stages.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    path.unlink(missing_ok=True)
    return [{**r, "seconds": round(r["seconds"], 2), "peak_mb": round(r["peak_mb"])} for r in rows]


def run_dataset(root: Path, dataset: str, fraction: float, workdir: Path, bare: bool) -> dict[str, Any]:
    import pandas as pd

    environ = scratch.environment(workdir / f"{dataset}-{fraction}", BIN)
    repo = scratch.copy_project(root, workdir / f"{dataset}-{fraction}" / "repo", environ)
    prepare(repo, {"data.dataset": dataset, "data.fraction": fraction}, environ)
    dvc = str(BIN / "dvc")
    full, _ = timed([dvc, "repro"], repo, environ)
    full_stages = stages(repo)
    noop = statistics.median(timed([dvc, "repro"], repo, environ)[0] for _ in range(3))
    stages(repo)
    scratch.set_params(repo, {"evaluate.importance_repeats": 3})
    change, output = timed([dvc, "repro"], repo, environ)
    rows = json.loads((repo / "data/prepared/source.json").read_text())
    result = {
        "dataset": dataset,
        "fraction": fraction,
        "source": rows["source"],
        "train_rows": len(pd.read_parquet(repo / "data/prepared/train.parquet")),
        "full_repro_s": round(full, 1),
        "noop_repro_s": round(noop, 2),
        "one_param_change_s": round(change, 1),
        "one_param_change_stages": re.findall(r"Running stage '(\w+)'", output),
        "stages": full_stages,
    }
    if bare:
        subprocess.run(["git", "checkout", "-q", "params.yaml"], cwd=repo, env=environ, check=True)
        seconds, _ = timed(
            [
                sys.executable,
                "-m",
                "tabpipe",
                "bench",
                "bare",
                "--params",
                str(repo / "params.yaml"),
                "--root",
                str(repo),
            ],
            repo,
            environ,
        )
        result["bare_s"] = round(seconds, 1)
        result["ratio"] = round(full / seconds, 2)
    print(json.dumps(result), file=sys.stderr)
    return result


def tables(results: list[dict[str, Any]], scaling: list[dict[str, Any]]) -> str:
    lines = [
        "| dataset | train rows | dvc repro (clean) s | bare script s | ratio | no-op repro s"
        " | one-param change s (stages) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['dataset']} | {r['train_rows']} | {r['full_repro_s']} | {r.get('bare_s', '-')} |"
            f" {r.get('ratio', '-')} | {r['noop_repro_s']} | {r['one_param_change_s']}"
            f" ({', '.join(r['one_param_change_stages'])}) |"
        )
    lines += ["", "| dataset | stage | seconds | peak MB |", "|---|---|---|---|"]
    for r in results:
        lines += [f"| {r['dataset']} | {s['stage']} | {s['seconds']} | {s['peak_mb']} |" for s in r["stages"]]
    if scaling:
        names = [s["stage"] for s in scaling[0]["stages"]]
        lines += [
            "",
            "| fraction | train rows | " + " | ".join(f"{n} MB" for n in names) + " |",
            "|---|---|" + "---|" * len(names),
        ]
        for r in scaling:
            peaks = {s["stage"]: s["peak_mb"] for s in r["stages"]}
            lines.append(
                f"| {r['fraction']} | {r['train_rows']} | " + " | ".join(str(peaks.get(n, "-")) for n in names) + " |"
            )
    return "\n".join(lines) + "\n"


def plot_scaling(scaling: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4))
    for stage in [s["stage"] for s in scaling[0]["stages"]]:
        points = [(r["train_rows"], s["peak_mb"]) for r in scaling for s in r["stages"] if s["stage"] == stage]
        axis.plot(*zip(*points, strict=True), "o-", label=stage)
    axis.set_xlabel("training rows (employment)")
    axis.set_ylabel("peak resident memory, MB")
    axis.set_xlim(left=0)
    axis.set_ylim(bottom=0)
    axis.legend(fontsize=8)
    axis.set_title("Peak memory per stage against rows")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def run(root: Path, datasets: list[str], scaling: str, fractions: list[float], out: Path) -> str:
    """Every dataset beside the bare script, then the scaling runs; writes `out` (and its chart), returns tables."""
    results, scaled = [], []
    with tempfile.TemporaryDirectory(prefix="tabpipe-bench-") as temporary:
        workdir = Path(temporary)
        try:
            for dataset in datasets:
                results.append(run_dataset(root, dataset, 1.0, workdir, bare=True))
            for fraction in fractions if scaling else []:
                done = [r for r in results if r["dataset"] == scaling and fraction == 1.0]
                scaled.append(done[0] if done else run_dataset(root, scaling, fraction, workdir, bare=False))
        except RuntimeError as error:
            raise PipelineError(f"bench: {error}") from error
    files.write_json(out, {"datasets": results, "scaling": scaled})
    if scaled:
        plot_scaling(scaled, out.with_name("memory_scaling.png"))
    return tables(results, scaled)
