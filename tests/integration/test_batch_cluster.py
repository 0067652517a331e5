"""`tabpipe predict --cluster` on a real Dask cluster (a scheduler, two worker processes, on 127.0.0.1),
with the reproduced project's gated model: the same answers, rejects and counts as one process gives."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from tabpipe.core.scheduler import SCHEDULER
from tabpipe.sandbox.servers import free_port
from tests.support.commands import env, tabpipe_command
from tests.support.projects import Reproduced
from tests.support.servers import executed

pytestmark = pytest.mark.integration


def predict(project: Path, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    """`tabpipe predict ARGS` in the project (read only: the outputs go elsewhere)."""
    command = tabpipe_command("predict", *args)
    return subprocess.run(command, cwd=project, env=env(**extra_env), capture_output=True, text=True, check=False)


def parts(project: Path, folder: Path) -> pd.DataFrame:
    """The project's test split in Parquet parts of 15 rows with an id; two rows hold text in a numeric feature."""
    features = [f["name"] for f in json.loads((project / "models/serving.json").read_text())["schema"]["features"]]
    batch = pd.read_parquet(project / "data/prepared/test.parquet")[features]
    batch = batch.assign(id=[f"id{i}" for i in range(len(batch))])
    batch[features[0]] = batch[features[0]].astype(str)  # numbers as text are read as numbers; "abc" is refused
    batch.loc[[3, 20], features[0]] = "abc"
    folder.mkdir()
    for number, start in enumerate(range(0, len(batch), 15)):
        batch[start : start + 15].to_parquet(folder / f"part-{number}.parquet")
    return batch


def by_row(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path).sort_values("row").reset_index(drop=True)


def test_a_folder_of_parts_scored_on_the_cluster_matches_one_process(
    golden: Reproduced, cluster: str, tmp_path: Path
) -> None:
    project = golden.repo
    batch = parts(project, tmp_path / "in")
    common = [str(tmp_path / "in"), "--keep", "id", "--chunk-rows", "5"]
    before = executed(cluster)
    one = predict(project, *common, "--output", str(tmp_path / "one.parquet"))
    assert one.returncode == 0, one.stderr
    assert executed(cluster) == before  # one process: no task on the cluster

    spread = predict(project, *common, "--output", str(tmp_path / "spread.parquet"), **{SCHEDULER: cluster})
    assert spread.returncode == 0, spread.stderr
    assert f"scoring on the Dask cluster at {cluster}: 2 worker thread(s)" in spread.stderr
    assert spread.stdout == one.stdout.replace(str(tmp_path / "one"), str(tmp_path / "spread"))
    assert " 2 rejected into " in spread.stdout
    counts = {worker: count - before[worker] for worker, count in executed(cluster).items()}
    assert len(counts) == 2 and all(count > 0 for count in counts.values())  # both workers answered chunks
    chunks = sum(-(-len(batch[start : start + 15]) // 5) for start in range(0, len(batch), 15))
    assert sum(counts.values()) == chunks  # one task per chunk of 5 rows

    assert (tmp_path / "spread.parquet").is_dir() and (tmp_path / "spread.rejects.parquet").is_dir()
    pd.testing.assert_frame_equal(by_row(tmp_path / "spread.parquet"), by_row(tmp_path / "one.parquet"))
    pd.testing.assert_frame_equal(by_row(tmp_path / "spread.rejects.parquet"), by_row(tmp_path / "one.rejects.parquet"))
    sha = json.loads((project / "models/serving.json").read_text())["model_sha256"]
    from distributed import Client

    with Client(cluster, timeout=30, set_as_default=False) as client:  # each worker built the model once, by hash
        built = client.run(lambda: sorted(__import__("tabpipe.batch.cluster", fromlist=["MODELS"]).MODELS))
    assert list(built.values()) == [[sha], [sha]]

    again = ["--output", str(tmp_path / "spread.parquet"), "--cluster", cluster]
    kept = predict(project, *common, *again)
    assert kept.returncode == 1
    assert kept.stderr.strip().splitlines()[-1].endswith("spread.parquet: exists; pass --overwrite to replace it")
    assert predict(project, *common, *again, "--overwrite").stdout == spread.stdout


def test_on_the_cluster_a_bad_input_or_an_unreachable_scheduler_is_one_line_and_nothing_written(
    golden: Reproduced, cluster: str, tmp_path: Path
) -> None:
    project = golden.repo
    batch = parts(project, tmp_path / "in")
    (tmp_path / "in" / "part-1.parquet").write_bytes(b"truncated")
    (tmp_path / "short").mkdir()
    batch.drop(columns="id").to_parquet(tmp_path / "short" / "part-0.parquet")
    batch.to_csv(tmp_path / "in.txt", index=False)
    (tmp_path / "out").mkdir()
    output = str(tmp_path / "out" / "scores.parquet")
    unreachable = f"tcp://127.0.0.1:{free_port()}"
    before = executed(cluster)
    cases = [
        ([str(tmp_path / "in"), "--cluster", cluster], "part-1.parquet: cannot be read as Parquet"),
        ([str(tmp_path / "short"), "--cluster", cluster], "column 'id': missing"),
        ([str(tmp_path / "in.txt"), "--cluster", cluster], "in.txt: neither CSV (.csv) nor Parquet"),
        ([str(tmp_path / "in" / "part-0.parquet"), "--cluster", unreachable], f"--cluster {unreachable}: cannot reach"),
    ]
    for args, message in cases:
        done = predict(project, *args, "--keep", "id", "--output", output)
        assert done.returncode == 1
        assert done.stderr.strip().splitlines()[-1].startswith("error: ") and message in done.stderr
        assert "Traceback" not in done.stderr
        assert list((tmp_path / "out").iterdir()) == []
    assert executed(cluster) == before  # stopped before any chunk was sent
