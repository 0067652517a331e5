"""`tabpipe predict` on a small project of its own: a model fitted on the toy schema, served from a file
the manifest's hash vouches for. Rows answered as the service answers them, rejects, whole-file errors,
and outputs that appear only when complete. The cluster's parts without a cluster: what a worker runs, and
the folders of parts (tests/integration/test_batch_cluster.py runs them on one)."""

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tabpipe.batch import cluster, predict, scoring, writing
from tabpipe.core import settings
from tabpipe.core.errors import PipelineError
from tabpipe.core.files import write_json
from tabpipe.core.hashing import file_sha256
from tabpipe.data.schema import Feature, Schema
from tabpipe.serve import manifest
from tabpipe.task import tasks
from tests.support.client import row_validator
from tests.support.commands import env, tabpipe_command
from tests.support.data import toy_frame
from tests.support.paths import ROOT

# The toy schema with x's limits observed: under serve.unseen "answer" x may be anything finite, and is flagged.
SCHEMA = Schema(
    name="toy",
    features=(
        Feature("x", "numeric", minimum=0.0, maximum=10.0, limits="observed"),
        Feature("z", "numeric", minimum=-5.0, maximum=5.0, nullable=True),
        Feature("c", "categorical", categories=("a", "b", "c")),
    ),
    target="y",
    classes=("no", "yes"),
)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """dvc.yaml, models/served/model.joblib (a scikit-learn pipeline) and models/serving.json naming its hash."""
    import joblib
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    from tabpipe.model import features

    root = tmp_path_factory.mktemp("batch")
    shutil.copy(ROOT / "dvc.yaml", root / "dvc.yaml")
    frame = toy_frame(200)
    featurize = settings.Featurize(numeric_impute="median", scale=True, min_frequency=1)
    model = Pipeline([("pre", features.preprocessor(SCHEMA, featurize)), ("lr", LogisticRegression())])
    model.fit(*features.split_xy(frame, SCHEMA))
    (root / "models/served").mkdir(parents=True)
    joblib.dump(model, root / "models/served/model.joblib")
    serve = settings.read(ROOT / "params.yaml").section(settings.Serve).model_copy(update={"unseen": "answer"})
    built = manifest.build(
        SCHEMA,
        model_file="model.joblib",
        model_sha256=file_sha256(root / "models/served/model.joblib"),
        pipeline_sha256="0" * 64,
        metrics={},
        serve=serve,
    )
    write_json(root / "models/serving.json", built)
    return root


def rows(count: int = 10) -> pd.DataFrame:
    """Valid input rows with an id that is not a feature."""
    return toy_frame(count, seed=1).drop(columns="y").assign(id=[f"id{i}" for i in range(count)])


def run(project: Path, source: Path, output: Path, **options) -> predict.Counts:
    return predict.run(predict.Options(input=source, output=output, project=project, **options))


def served_answer(project: Path, batch: pd.DataFrame) -> list[dict]:
    """What the service's functions answer for these rows sent as JSON (service.py's predict, step by step)."""
    from tabpipe.serve import bento_model, request, unseen

    served = manifest.read(project / "models/serving.json")
    task = tasks.of(SCHEMA.task)
    model = bento_model.load_file(project / "models/served/model.joblib", served.model_sha256, task)
    features = batch[["x", "z", "c"]].astype(object)
    sent = row_validator(SCHEMA, "answer").validate_python  # one row at a time, as a client would send it
    valid = [sent(row) for row in features.where(features.notna(), None).to_dict(orient="records")]
    records = request.records(valid, SCHEMA)
    model_rows, flags = unseen.model_rows(records, SCHEMA)
    body = task.body(request.predict(model, model_rows, SCHEMA, task), served.identity, None)
    return [{**p, "unseen": f} for p, f in zip(body["predictions"], flags, strict=True)]


def test_each_row_is_answered_as_the_service_answers_it(project: Path, tmp_path: Path) -> None:
    batch = rows(30)
    batch.loc[3, "x"] = 25.0  # past the observed range: answered at its end, and flagged
    batch.loc[4, "z"] = np.nan  # nullable: answered
    batch.to_parquet(tmp_path / "in.parquet")
    counts = run(project, tmp_path / "in.parquet", tmp_path / "out.parquet", keep=("id",))
    assert (counts.scored, counts.rejected, counts.flagged) == (30, 0, 1)
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert list(out.columns) == ["id", "row", "label", "proba_no", "proba_yes", "unseen", "model", "version"]
    expected = served_answer(project, batch)
    assert out["label"].tolist() == [p["label"] for p in expected]
    for name in ("no", "yes"):
        assert np.abs(out[f"proba_{name}"].to_numpy() - [p["probabilities"][name] for p in expected]).max() <= 1e-12
    assert [json.loads(u) for u in out["unseen"]] == [p["unseen"] for p in expected]
    assert json.loads(out["unseen"][3]) == {"x": "above_range"}
    assert out["id"].tolist() == batch["id"].tolist() and out["row"].tolist() == list(range(30))
    assert set(out["model"]) == {"tabpipe-toy"} and len(set(out["version"])) == 1
    assert pd.read_parquet(tmp_path / "out.rejects.parquet").empty


def test_a_row_the_service_refuses_is_rejected_with_its_reason(project: Path, tmp_path: Path) -> None:
    batch = rows(8).astype({"x": object, "c": object})
    batch.loc[1, "z"] = 7.0  # declared range
    batch.loc[2, "c"] = "zz"  # declared categories
    batch.loc[5, "x"] = "abc"  # text in a numeric column
    batch.loc[6, "c"] = None  # required
    batch.to_csv(tmp_path / "in.csv", index=False)
    counts = run(project, tmp_path / "in.csv", tmp_path / "out.csv", keep=("id",), chunk_rows=3)
    assert (counts.scored, counts.rejected) == (4, 4)
    rejected = pd.read_csv(tmp_path / "out.rejects.csv")
    assert rejected["row"].tolist() == [1, 2, 5, 6]
    assert rejected["id"].tolist() == ["id1", "id2", "id5", "id6"]
    assert rejected["field"].tolist() == ["z", "c", "x", "c"]
    assert rejected["type"].tolist() == ["less_than_equal", "literal_error", "float_type", "literal_error"]
    assert rejected["message"][2] == "Input should be a valid number"
    assert json.loads(rejected["detail"][0]) == [
        {"field": "z", "type": "less_than_equal", "message": "Input should be less than or equal to 5"}
    ]
    assert pd.read_csv(tmp_path / "out.csv")["row"].tolist() == [0, 3, 4, 7]


def test_csv_parquet_and_a_folder_of_parts_answer_alike(project: Path, tmp_path: Path) -> None:
    batch = rows(25)
    batch.to_csv(tmp_path / "in.csv", index=False)
    batch.to_parquet(tmp_path / "in.parquet")
    (tmp_path / "parts").mkdir()
    for number, start in enumerate(range(0, 25, 10)):
        batch[start : start + 10].to_parquet(tmp_path / "parts" / f"part-{number}.parquet")
    answers = []
    for source in ("in.csv", "in.parquet", "parts"):
        run(project, tmp_path / source, tmp_path / f"{source}.out.parquet", keep=("id",), chunk_rows=7)
        answers.append(pd.read_parquet(tmp_path / f"{source}.out.parquet"))
    for other in answers[1:]:
        pd.testing.assert_frame_equal(answers[0], other, rtol=1e-12)
    assert pq.ParquetFile(tmp_path / "in.parquet.out.parquet").metadata.num_row_groups == 4  # one per chunk


@pytest.mark.parametrize(
    ("name", "write", "message"),
    [
        ("in.parquet", lambda p: rows().drop(columns="c").to_parquet(p), "column 'c': missing"),
        ("in.csv", lambda p: rows().drop(columns="id").to_csv(p, index=False), "column 'id': missing"),
        ("in.txt", lambda p: rows().to_csv(p, index=False), "in.txt: neither CSV"),
        ("in.parquet", lambda p: p.write_bytes(b"PAR1 not really"), "in.parquet: cannot be read as Parquet"),
        ("parts", None, "part-1.parquet: cannot be read as Parquet"),
        ("in.csv", lambda p: p.write_bytes(b"x,z,c,id\n1,2,a,\xff\n"), "not UTF-8 text"),
    ],
)
def test_a_whole_file_problem_is_one_error_and_nothing_written(
    project: Path, tmp_path: Path, name: str, write, message: str
) -> None:
    source = tmp_path / "in" / name
    source.parent.mkdir()
    if write is None:
        source.mkdir()
        rows().to_parquet(source / "part-0.parquet")
        (source / "part-1.parquet").write_bytes(b"truncated")
    else:
        write(source)
    (tmp_path / "out").mkdir()
    with pytest.raises(PipelineError, match=message):
        run(project, source, tmp_path / "out" / "scores.parquet", keep=("id",))
    assert list((tmp_path / "out").iterdir()) == []


def test_a_run_that_fails_midway_leaves_no_output(project: Path, tmp_path: Path) -> None:
    text = rows(50).to_csv(index=False) + '1.0,2.0,"a,b\n'  # an unclosed quote in the last line
    (tmp_path / "in.csv").write_text(text)
    (tmp_path / "out").mkdir()
    with pytest.raises(PipelineError, match="cannot be parsed as CSV"):
        run(project, tmp_path / "in.csv", tmp_path / "out" / "scores.parquet", chunk_rows=10)
    assert list((tmp_path / "out").iterdir()) == []


def test_an_existing_output_is_kept_unless_overwrite(project: Path, tmp_path: Path) -> None:
    rows().to_parquet(tmp_path / "in.parquet")
    (tmp_path / "scores.parquet").write_text("old")
    with pytest.raises(PipelineError, match="exists; pass --overwrite"):
        run(project, tmp_path / "in.parquet", tmp_path / "scores.parquet")
    assert (tmp_path / "scores.parquet").read_text() == "old"
    run(project, tmp_path / "in.parquet", tmp_path / "scores.parquet", overwrite=True)
    assert len(pd.read_parquet(tmp_path / "scores.parquet")) == 10


def test_every_row_rejected_still_writes_both_files_with_their_columns(project: Path, tmp_path: Path) -> None:
    rows(5).assign(c="zz").to_parquet(tmp_path / "in.parquet")
    counts = run(project, tmp_path / "in.parquet", tmp_path / "out.parquet", keep=("id",))
    assert (counts.scored, counts.rejected) == (0, 5)
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert out.empty and {"id", "row", "label", "proba_yes", "unseen", "model"} <= set(out.columns)


VALUE = st.one_of(st.floats(-20, 20), st.none(), st.just("text"))
CATEGORY = st.sampled_from(["a", "b", "c", "zz", None])


@hypothesis_settings(deadline=None)  # a run reads and writes files: no per-example deadline
@given(st.lists(st.tuples(VALUE, VALUE, CATEGORY), min_size=1, max_size=40), st.integers(1, 9))
def test_every_input_row_lands_in_exactly_one_file(project: Path, table: list, chunk: int) -> None:
    batch = pd.DataFrame(table, columns=["x", "z", "c"], dtype=object).assign(id=[str(i) for i in range(len(table))])
    with tempfile.TemporaryDirectory() as folder:
        where = Path(folder)
        batch.to_csv(where / "in.csv", index=False)
        counts = run(project, where / "in.csv", where / "out.parquet", keep=("id",), chunk_rows=chunk)
        scored = pd.read_parquet(where / "out.parquet")
        rejected = pd.read_parquet(writing.rejects_path(where / "out.parquet"))
    assert sorted([*scored["row"], *rejected["row"]]) == list(range(len(table)))
    assert (counts.scored, counts.rejected) == (len(scored), len(rejected))
    assert scored["id"].tolist() == [str(r) for r in scored["row"]]
    valid = row_validator(SCHEMA, "answer")
    for row in rejected["row"]:  # each rejected row is one the service refuses
        x, z, c = table[row]
        with pytest.raises(ValueError):
            valid.validate_python({"x": _sent(x), "z": _sent(z), "c": c})


def _sent(value: object) -> object:
    """A CSV cell read back as a client would send it: a number, text or null (no NaN in JSON)."""
    return None if isinstance(value, float) and np.isnan(value) else value


def test_the_command_prints_one_line_of_counts_or_one_error_line(project: Path, tmp_path: Path) -> None:
    rows(12).assign(c=["a"] * 11 + ["zz"]).to_csv(tmp_path / "in.csv", index=False)
    command = tabpipe_command("predict", str(tmp_path / "in.csv"), "--output", str(tmp_path / "out.parquet"))
    checkout = env(PYTHONPATH=str(ROOT))  # the project folder holds no code: the checkout's runs
    done = subprocess.run(command, cwd=project, env=checkout, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        f"predict: 11 rows scored into {tmp_path / 'out.parquet'}, 1 rejected into "
        f"{tmp_path / 'out.rejects.parquet'}, 0 flagged with values outside the schema's limits"
    )
    assert "rows/s" in done.stderr and "left" in done.stderr
    again = subprocess.run(command, cwd=project, env=checkout, capture_output=True, text=True, check=False)
    assert again.returncode == 1
    assert again.stderr.strip().splitlines()[-1] == (
        f"error: {tmp_path / 'out.parquet'}: exists; pass --overwrite to replace it"
    )


def test_a_killed_run_leaves_no_output(project: Path, tmp_path: Path) -> None:
    """SIGKILL once chunks are being written: the output never appears, only its dot-named temporary files."""
    import os
    import signal
    import time

    rows(1).loc[[0] * 200_000].to_csv(tmp_path / "in.csv", index=False)
    (tmp_path / "out").mkdir()
    output = tmp_path / "out" / "scores.parquet"
    command = tabpipe_command("predict", str(tmp_path / "in.csv"), "--output", str(output), "--chunk-rows", "500")
    process = subprocess.Popen(command, cwd=project, env=env(PYTHONPATH=str(ROOT)), stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not any(p.stat().st_size for p in (tmp_path / "out").glob(".scores.parquet.*.tmp")):
        assert process.poll() is None and time.monotonic() < deadline, "no chunk written before the run ended"
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not output.exists() and not writing.rejects_path(output).exists()
    assert all(p.name.startswith(".") for p in (tmp_path / "out").iterdir())


def test_parts_whose_kept_column_changes_type_stop_the_run(project: Path, tmp_path: Path) -> None:
    (tmp_path / "parts").mkdir()
    rows(4).assign(id=range(4)).to_parquet(tmp_path / "parts/part-0.parquet")
    rows(4).to_parquet(tmp_path / "parts/part-1.parquet")  # ids as text
    (tmp_path / "out").mkdir()
    with pytest.raises(PipelineError, match="differ in type from the first chunk's"):
        run(project, tmp_path / "parts", tmp_path / "out/scores.parquet", keep=("id",))
    assert list((tmp_path / "out").iterdir()) == []


def test_a_worker_builds_the_model_once_from_its_bytes_and_answers_a_chunk_as_one_process_does(project: Path) -> None:
    served = predict.workspace(project)
    blob = served.path.read_bytes()
    job = cluster.Job(served.manifest, served.path.suffix, ("id",))
    cluster.MODELS.clear()  # this process plays a fresh worker
    with pytest.raises(PipelineError, match="the model sent to the worker is not"):
        cluster.model(job, blob + b"tampered")
    assert cluster.MODELS == {}
    assert cluster.model(job, blob) is cluster.model(job, blob)
    assert list(cluster.MODELS) == [served.manifest.model_sha256]

    batch = rows(12).assign(c=["a"] * 9 + ["zz"] * 3)  # three rows the service refuses
    here = scoring.score(
        batch,
        40,
        scoring.scorer(
            cluster.model(job, blob), SCHEMA, tasks.of(SCHEMA.task), "answer", served.manifest.identity, ("id",)
        ),
    )
    there = cluster.score_part(batch, 40, job, blob)
    pd.testing.assert_frame_equal(there.scored, here.scored)
    pd.testing.assert_frame_equal(there.rejected, here.rejected)
    assert there.rejected["row"].tolist() == [49, 50, 51] and there.scored["row"].tolist() == list(range(40, 49))


def test_a_cluster_run_writes_folders_of_parts_that_appear_only_when_complete(tmp_path: Path) -> None:
    output = tmp_path / "out" / "scores.parquet"
    first = pd.DataFrame({"id": [None, None], "row": [0, 1]})  # an id all missing: typed by a later chunk
    later = pd.DataFrame({"id": ["b", "c"], "row": [3, 4]})
    empty = pd.DataFrame({"id": pd.Series(dtype="str"), "row": pd.Series(dtype="int64")})
    with pytest.raises(RuntimeError), writing.outputs(output, parts=True) as out:
        out.scored.write(first)
        raise RuntimeError("a chunk failed")
    assert list((tmp_path / "out").iterdir()) == []

    output.write_text("an old single-file output")
    with writing.outputs(output, parts=True) as out:
        for frame in (first, empty, later):
            out.scored.write(frame)
        out.scored.close(empty)
        out.rejected.close(empty)
        assert not output.is_dir() and not writing.rejects_path(output).exists()
    assert sorted(p.name for p in output.iterdir()) == ["part-000000.parquet", "part-000001.parquet"]
    assert pd.read_parquet(output)["id"].fillna("").tolist() == ["", "", "b", "c"]
    assert pd.read_parquet(writing.rejects_path(output)).columns.tolist() == ["id", "row"]  # no rows, its columns
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["scores.parquet", "scores.rejects.parquet"]


def test_a_csv_output_on_the_cluster_or_a_file_over_a_folder_of_parts_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match="--cluster writes a folder of Parquet parts"):
        writing.check_free(tmp_path / "scores.csv", overwrite=False, parts=True)
    (tmp_path / "scores.parquet").mkdir()
    writing.check_free(tmp_path / "scores.parquet", overwrite=True, parts=True)
    with pytest.raises(PipelineError, match="a folder \\(a --cluster run's parts\\); remove it"):
        writing.check_free(tmp_path / "scores.parquet", overwrite=True)


def scored_window(project: Path, path: Path, identity: dict | None = None):
    """`tabpipe monitor --batch`'s window of a scored output, read as the monitor reads it."""
    from tabpipe.data import datasets
    from tabpipe.monitor import traffic
    from tabpipe.serve import bento_model

    served = manifest.read(project / "models/serving.json")
    model = bento_model.load_file(project / "models/served/model.joblib", served.model_sha256, tasks.of(SCHEMA.task))
    batch = datasets.read_table(path, SCHEMA)
    assert traffic.is_scored(batch.columns)
    return traffic.from_scored(batch, model, SCHEMA, identity or served.identity, str(path))


def test_the_monitor_takes_a_scored_output_s_answers_as_the_served_predictions(project: Path, tmp_path: Path) -> None:
    from tabpipe.data import datasets
    from tabpipe.monitor import assess, traffic

    batch = toy_frame(40, seed=2).assign(id=[f"id{i}" for i in range(40)])
    batch.loc[3, "x"] = 25.0  # past the observed range: flagged
    batch.to_parquet(tmp_path / "in.parquet")
    assert not traffic.is_scored(datasets.read_table(tmp_path / "in.parquet", SCHEMA).columns)
    keep = ("id", "x", "z", "c", "y")
    run(project, tmp_path / "in.parquet", tmp_path / "out.parquet", keep=keep)
    run(project, tmp_path / "in.parquet", tmp_path / "out.csv", keep=keep)
    out = pd.read_parquet(tmp_path / "out.parquet")
    flipped = {"no": "yes", "yes": "no"}
    out.loc[0, "label"] = flipped[out.loc[0, "label"]]  # not what the model says: kept, so never predicted again
    out.to_parquet(tmp_path / "changed.parquet")
    (tmp_path / "parts").mkdir()
    for number, start in enumerate(range(0, 40, 15)):  # as --cluster writes them, read in name order
        out[start : start + 15].to_parquet(tmp_path / "parts" / f"part-{number:06d}.parquet")

    for name in ("changed.parquet", "parts"):
        found = scored_window(project, tmp_path / name)
        assert found.window[assess.PREDICTION].tolist() == out["label"].tolist()
        assert found.window["x"].tolist() == batch["x"].tolist()
        assert found.labelled["truth"].tolist() == batch["y"].tolist()
        assert np.array_equal(found.labelled["predicted"].outputs, out[["proba_no", "proba_yes"]].to_numpy())
        assert found.unseen_summary() == {"unseen_rows": 1, "unseen_values": {"x": {"above_range": 1}}}
    from_csv = scored_window(project, tmp_path / "out.csv")
    assert from_csv.window[assess.PREDICTION].tolist() == pd.read_csv(tmp_path / "out.csv")["label"].tolist()


def test_the_monitor_refuses_a_scored_output_of_another_model_or_without_its_features(
    project: Path, tmp_path: Path
) -> None:
    rows(20).to_parquet(tmp_path / "in.parquet")
    run(project, tmp_path / "in.parquet", tmp_path / "out.parquet", keep=("x", "z", "c"))
    served = manifest.read(project / "models/serving.json").identity
    other = {**served, "version": served["version"] + "0"}
    with pytest.raises(PipelineError, match=f"scored by tabpipe-toy version {served['version']}, but tabpipe-toy"):
        scored_window(project, tmp_path / "out.parquet", other)
    run(project, tmp_path / "in.parquet", tmp_path / "bare.parquet", keep=("x", "c"))
    with pytest.raises(PipelineError, match="column 'z': missing; drift needs the features: score with --keep"):
        scored_window(project, tmp_path / "bare.parquet")


# A regressor's schema with a date: its parts' limits observed, the category open under "answer".
DATED = Schema(
    name="toy",
    features=(
        Feature("x", "numeric", minimum=0.0, maximum=10.0, limits="observed"),
        Feature("z", "numeric", minimum=-5.0, maximum=5.0, nullable=True),
        Feature("c", "categorical", categories=("a", "b", "c"), limits="observed"),
        Feature("d.year", "numeric", minimum=2020.0, maximum=2023.0, limits="observed"),
        Feature("d.month", "numeric", minimum=1.0, maximum=12.0, limits="observed"),
        Feature("d.day", "numeric", minimum=1.0, maximum=31.0, limits="observed"),
        Feature("d.weekday", "numeric", minimum=0.0, maximum=6.0, limits="observed"),
    ),
    target="v",
    classes=(),
    task="regression",
    dates=(("d", "%Y-%m-%d"),),
)


@pytest.fixture(scope="module")
def compiled_scorers(project: Path) -> dict[tuple[str, str], scoring.Scorer]:
    """The project's classifier and a ridge regressor on DATED (with an interval), compiled, under each policy."""
    import joblib
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import Pipeline

    from tabpipe.data import dates
    from tabpipe.model import compiled, conversion, features

    classifier = joblib.load(project / "models/served/model.joblib")
    frame = toy_frame(200)
    when = pd.Series(pd.date_range("2020-01-01", periods=200, freq="5D").strftime("%Y-%m-%d"), dtype="str")
    frame = dates.add_parts(frame.assign(d=when), DATED.dates).assign(v=lambda f: f["x"] - f["z"])
    featurize = settings.Featurize(numeric_impute="median", scale=True, min_frequency=1)
    regressor = Pipeline([("pre", features.preprocessor(DATED, featurize)), ("ridge", Ridge())])
    regressor.fit(*features.split_xy(frame, DATED))
    regressor.interval_ = {"level": 0.9, "halfwidth": 0.5}
    identity = {"name": "tabpipe-toy", "version": "1"}
    out = {}
    for schema, model in ((SCHEMA, classifier), (DATED, regressor)):
        served = compiled.Compiled(conversion.compile_pipeline(model, schema), tasks.of(schema.task))
        for policy in ("answer", "refuse"):
            out[schema.task, policy] = scoring.scorer(served, schema, tasks.of(schema.task), policy, identity, ("id",))
    return out


ODD = st.sampled_from([np.nan, np.inf, -np.inf, 1e308, -1e308, 0.0, -0.0, 10.0, -5.0, 5.0, 25.0])
NUMBER = st.one_of(st.floats(-5, 5), st.floats(-5, 5), st.floats(-20, 20), ODD)
TEXT_NUMBER = st.one_of(NUMBER, st.none(), st.sampled_from(["text", "1.5", True]))
DATE = st.one_of(
    st.dates().map(str),
    st.sampled_from(["2021-03-04", "2019-06-30", "bad", "2021-02-30", " 2021-01-05", "2021-1-5", "", None]),
)


@st.composite
def chunks(draw: st.DrawFn) -> pd.DataFrame:
    """A chunk as a file gives it: each feature column typed (numbers, text with nulls, mixed objects,
    Int64, booleans) or left out, its values valid or invalid in every way the row model knows."""
    rows = draw(st.integers(1, 25))
    columns: dict[str, object] = {"id": [f"id{i}" for i in range(rows)]}
    for name in ("x", "z"):
        kind = draw(st.sampled_from(["float"] * 6 + ["object", "int", "bool", "absent"]))
        if kind == "float":
            columns[name] = draw(st.lists(NUMBER, min_size=rows, max_size=rows))
        elif kind == "object":
            columns[name] = pd.Series(draw(st.lists(TEXT_NUMBER, min_size=rows, max_size=rows)), dtype=object)
        elif kind == "int":
            found = draw(st.lists(st.one_of(st.integers(-8, 12), st.none()), min_size=rows, max_size=rows))
            columns[name] = pd.array(found, dtype="Int64")
        elif kind == "bool":
            columns[name] = draw(st.lists(st.booleans(), min_size=rows, max_size=rows))
    category = st.one_of(st.sampled_from(["a", "b", "c"]), st.sampled_from(["a", "zz", "", " a", None]))
    for name, values in (("c", category), ("d", DATE)):
        kind = draw(st.sampled_from(["str"] * 6 + ["object", "absent"]))
        if kind != "absent":
            columns[name] = pd.Series(draw(st.lists(values, min_size=rows, max_size=rows)), dtype=kind)
    return pd.DataFrame(columns)


@hypothesis_settings(deadline=None, max_examples=150)
@given(chunks(), st.sampled_from(["classification", "regression"]), st.sampled_from(["answer", "refuse"]))
def test_the_columnar_path_writes_what_the_row_path_writes(compiled_scorers: dict, chunk: pd.DataFrame, task, policy):
    scorer = compiled_scorers[task, policy]
    if task == "classification":
        chunk = chunk.drop(columns="d", errors="ignore")  # not a column of the classifier's: left, as any extra
    new = scoring.score(chunk, 7, scorer)
    old = scoring.by_rows(chunk, np.arange(7, 7 + len(chunk)), scorer)
    pd.testing.assert_frame_equal(new.scored, old.scored, check_exact=True)
    pd.testing.assert_frame_equal(new.rejected, old.rejected, check_exact=True)
    assert new.flagged == old.flagged


def test_a_column_the_columnar_check_cannot_judge_sends_its_rows_the_row_way(compiled_scorers: dict) -> None:
    from tabpipe.batch import columnar

    scorer = compiled_scorers["classification", "answer"]
    chunk = rows(6).astype({"x": object})
    chunk.loc[1, "x"] = "abc"  # text in a numeric column: the row model names the problem
    chunk.loc[4, "c"] = "zz"  # an undeclared category: rejected by the row path
    assert not columnar.checked(chunk, SCHEMA, "answer").accepted.any()
    typed = rows(6).assign(c=["a", "b", "c", "a", "zz", "b"])
    assert columnar.checked(typed, SCHEMA, "answer").accepted.tolist() == [True] * 4 + [False, True]
    for batch, rejected in ((chunk, [1, 4]), (typed, [4])):
        found = scoring.score(batch, 0, scorer)
        old = scoring.by_rows(batch, np.arange(len(batch)), scorer)
        assert found.rejected["row"].tolist() == rejected
        pd.testing.assert_frame_equal(found.scored, old.scored, check_exact=True)
        pd.testing.assert_frame_equal(found.rejected, old.rejected, check_exact=True)
