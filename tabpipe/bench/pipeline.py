"""Pipeline benchmark: `dvc repro` from clean, no-op, after one parameter change and as an experiment, beside a bare
one-process script.

    tabpipe bench pipeline                                   # iris, adult, employment (about 30 min)
    tabpipe bench pipeline --dataset iris --scaling none     # a quick run
    tabpipe bench pipeline --dataset none --scaling employment --fraction 0.5 --fraction 1
    tabpipe bench pipeline --dataset none --scaling synthetic \
        --out bench/results/pipeline-synthetic.json      # 100,000 to a million rows (about 9 min)

Each run is in a scratch copy of the project with the default params.yaml (only data.dataset and
data.fraction, or data.synthetic.rows, set). Every stage command is wrapped so that its wall time
and peak resident memory are recorded: of its largest process (exact, from the kernel), and of all
its processes together, loky workers included (sampled every 0.1 s). Each stage's fixed cost shows
beside its work: the seconds its processes spent importing (Python's own -X importtime count).
With a bare run, a user's first experiment (`dvc exp run -S`, EXPERIMENT) is timed against the bare
script with the same params, in the same scratch project. Results go to --out (JSON), the scaling
chart beside it (.png), and the tables to stdout.
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
from tabpipe.sandbox import project

BIN = Path(sys.executable).parent
# The experiment timed against the bare script: a search setting, and a gate that lets the result ship.
EXPERIMENT = {"train.cv_folds": 4, "gate.champion.tolerance": 1.0}
WRAPPER = '''"""Run a stage command; record its wall time, its imports' time, and its peak RSS (largest process, tree).

The command runs with PYTHONPROFILEIMPORTTIME: Python reports every import on stderr, its workers' too.
Those lines are summed (top-level imports only: each includes what it imports) and not passed on.
"""
import json, os, re, resource, subprocess, sys, threading, time
import psutil
stage, command = sys.argv[1], sys.argv[2]
IMPORT = re.compile(r"import time:\\s+\\d+ \\|\\s+(\\d+) \\|( +)\\S")
imported = [0]
def relay(stream):
    for line in stream:
        match = IMPORT.match(line)
        if match is None:
            sys.stderr.write(line)
        elif len(match.group(2)) == 3:
            imported[0] += int(match.group(1))
started = time.perf_counter()
child = subprocess.Popen(command, shell=True, stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1"})
reader = threading.Thread(target=relay, args=(child.stderr,))
reader.start()
tree_peak = 0
while child.poll() is None:
    try:
        processes = [psutil.Process(child.pid), *psutil.Process(child.pid).children(recursive=True)]
        total = 0
        for process in processes:
            try:
                total += process.memory_info().rss
            except psutil.Error:
                pass
        tree_peak = max(tree_peak, total)
    except psutil.Error:
        pass
    time.sleep(0.1)
reader.join()
peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
record = {"stage": stage, "seconds": time.perf_counter() - started, "imports_s": imported[0] / 1e6,
          "peak_mb": peak_kb / 1024, "tree_peak_mb": max(tree_peak / 2**20, peak_kb / 1024)}
with open(".bench-stages.jsonl", "a") as out:
    out.write(json.dumps(record) + "\\n")
sys.exit(child.returncode)
'''


def prepare(repo: Path, values: dict[str, Any], environ: dict[str, str]) -> None:
    """Set params, wrap every stage command with the recorder, and commit (DVC needs a commit)."""
    project.set_params(repo, values)
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
    rounded = [{key: round(r[key]) for key in ("peak_mb", "tree_peak_mb")} for r in rows]
    return [
        {**r, **mb, "seconds": round(r["seconds"], 2), "imports_s": round(r["imports_s"], 2)}
        for r, mb in zip(rows, rounded, strict=True)
    ]


def run_dataset(
    root: Path, dataset: str, values: dict[str, Any], workdir: Path, bare: bool, changes: bool = True
) -> dict[str, Any]:
    """`dvc repro` from clean with `values` set; with `changes`, a no-op and a one-parameter repro too."""
    import pyarrow.parquet as pq

    folder = workdir / str(len(list(workdir.iterdir())))
    environ = project.environment(folder, BIN)
    repo = project.copy_project(root, folder / "repo", environ)
    prepare(repo, {"data.dataset": dataset, **values}, environ)
    dvc = str(BIN / "dvc")
    full, _ = timed([dvc, "repro"], repo, environ)
    rows = json.loads((repo / "data/prepared/source.json").read_text())
    trained = json.loads((repo / "metrics/train.json").read_text())
    result = {
        "dataset": dataset,
        **values,
        "source": rows["source"],
        "train_rows": pq.ParquetFile(repo / "data/prepared/train.parquet").metadata.num_rows,
        "full_repro_s": round(full, 1),
        "stages": stages(repo),
        "winner": trained["winner"],
        "searched_rows": max(trained["cv_rows"].values()),
        "roc_auc": json.loads((repo / "metrics/evaluate.json").read_text())["roc_auc"],
    }
    if changes:
        result["noop_repro_s"] = round(statistics.median(timed([dvc, "repro"], repo, environ)[0] for _ in range(3)), 2)
        stages(repo)
        project.set_params(repo, {"evaluate.importance_repeats": 3})
        change, output = timed([dvc, "repro"], repo, environ)
        result["one_param_change_s"] = round(change, 1)
        result["one_param_change_stages"] = re.findall(r"Running stage '(\w+)'", output)
        stages(repo)
    if bare:
        subprocess.run(["git", "checkout", "-q", "params.yaml"], cwd=repo, env=environ, check=True)
        seconds = bare_seconds(repo, environ)
        result["bare_s"] = round(seconds, 1)
        result["ratio"] = round(full / seconds, 2)
    if bare and changes:
        result.update(experiment(repo, environ, dvc))
    print(json.dumps(result), file=sys.stderr)
    return result


def bare_seconds(repo: Path, environ: dict[str, str]) -> float:
    """The bare script's wall time with the workspace's params.yaml, as a user runs it (its own process and imports)."""
    args = [sys.executable, "-m", "tabpipe", "bench", "bare", "--params", "params.yaml", "--root", str(repo)]
    return timed(args, repo, environ)[0]


def experiment(repo: Path, environ: dict[str, str], dvc: str) -> dict[str, Any]:
    """A user's first experiment, `dvc exp run -S` of EXPERIMENT, beside the bare script with the same params.

    The workspace holds the reproduced default params, so the experiment reruns train and what follows it.
    """
    sets = [word for key, value in EXPERIMENT.items() for word in ("-S", f"{key}={value}")]
    seconds, output = timed([dvc, "exp", "run", *sets], repo, environ)
    timed_stages = stages(repo)
    bare = bare_seconds(repo, environ)  # params.yaml now holds the experiment's values
    return {
        "experiment": " ".join(sets),
        "experiment_s": round(seconds, 1),
        "experiment_stages": re.findall(r"Running stage '(\w+)'", output),
        "experiment_bare_s": round(bare, 1),
        "experiment_ratio": round(seconds / bare, 2),
        "experiment_timed_stages": timed_stages,
    }


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
    experiments = [r for r in results if "experiment_s" in r]
    if experiments:
        lines += [
            "",
            "| dataset | experiment | dvc exp run s (stages) | bare script s | ratio |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {r['dataset']} | `dvc exp run {r['experiment']}` | {r['experiment_s']}"
            f" ({', '.join(r['experiment_stages'])}) | {r['experiment_bare_s']} | {r['experiment_ratio']} |"
            for r in experiments
        ]
    lines += [
        "",
        "| dataset | run | stage | seconds | of which imports s | peak MB (largest process) | peak MB (all) |",
    ]
    lines += ["|---|---|---|---|---|---|---|"]
    for r in results:
        for run, timed_stages in (("from clean", r["stages"]), ("experiment", r.get("experiment_timed_stages", []))):
            lines += [
                f"| {r['dataset']} | {run} | {s['stage']} | {s['seconds']} | {s['imports_s']} | {s['peak_mb']}"
                f" | {s['tree_peak_mb']} |"
                for s in timed_stages
            ]
    if scaling:
        names = [s["stage"] for s in scaling[0]["stages"]]
        lines += [
            "",
            f"| {scaling[0]['dataset']}: train rows | dvc repro s | "
            + " | ".join(f"{n} s / MB" for n in names)
            + " | peak MB | searched rows | winner | test ROC AUC |",
            "|---|---|" + "---|" * (len(names) + 4),
        ]
        for r in scaling:
            cells = {s["stage"]: f"{s['seconds']:.0f} / {s['tree_peak_mb']}" for s in r["stages"]}
            peak = max(s["tree_peak_mb"] for s in r["stages"])
            lines.append(
                f"| {r['train_rows']} | {r['full_repro_s']} | "
                + " | ".join(cells.get(n, "-") for n in names)
                + f" | {peak} | {r['searched_rows']} | {r['winner']} | {r['roc_auc']} |"
            )
    return "\n".join(lines) + "\n"


def plot_scaling(scaling: list[dict[str, Any]], path: Path) -> None:
    """Seconds and peak memory (all processes) per stage against training rows, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for stage in [s["stage"] for s in scaling[0]["stages"]]:
        for axis, key in zip(axes, ("seconds", "tree_peak_mb"), strict=True):
            points = [(r["train_rows"], s[key]) for r in scaling for s in r["stages"] if s["stage"] == stage]
            axis.plot(*zip(*points, strict=True), "o-", label=stage)
    for axis, label in zip(axes, ("wall time, s", "peak resident memory, all processes, MB"), strict=True):
        axis.set_xlabel(f"training rows ({scaling[0]['dataset']})")
        axis.set_ylabel(label)
        axis.set_xlim(left=0)
        axis.set_ylim(bottom=0)
    axes[0].legend(fontsize=8)
    figure.suptitle("Time and peak memory per stage against rows")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def run(root: Path, datasets: list[str], scaling: str, sizes: list[float], out: Path) -> str:
    """Every dataset beside the bare script, then the scaling runs; writes `out` (and its chart), returns tables.

    The scaling runs take fractions of the dataset's rows, or for synthetic the rows to generate.
    """
    key = "data.synthetic.rows" if scaling == "synthetic" else "data.fraction"
    results, scaled = [], []
    with tempfile.TemporaryDirectory(prefix="tabpipe-bench-") as temporary:
        workdir = Path(temporary)
        try:
            for dataset in datasets:
                results.append(run_dataset(root, dataset, {}, workdir, bare=True))
            for size in sizes if scaling else []:
                value = int(size) if key == "data.synthetic.rows" else size
                done = [r for r in results if r["dataset"] == scaling and key == "data.fraction" and value == 1.0]
                scaled.append(done[0] if done else run_dataset(root, scaling, {key: value}, workdir, False, False))
        except RuntimeError as error:
            raise PipelineError(f"bench: {error}") from error
    files.write_json(out, {"datasets": results, "scaling": scaled})
    if scaled:
        plot_scaling(scaled, out.with_suffix(".png"))
    return tables(results, scaled)
