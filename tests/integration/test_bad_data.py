"""A corpus of broken inputs through the real stage entry points: each ends in one clear line, never a traceback.

Every case runs `stages.<name>.main` under `tabpipe.core.stage.run`, as `python -m stages.<name>` does: any
exception other than a PipelineError would escape and fail the test. Then a dvc-level check that
a failed stage leaves the last good outputs recoverable with `dvc checkout`.
"""

from __future__ import annotations

import hashlib
import importlib
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tabpipe.core import stage as entry
from tests.support.commands import dvc, stage_argv
from tests.support.projects import make_project, set_params

CSV = "data/raw/user.csv"
IRIS = "data/raw/iris.csv"


def good(rows: int = 80) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "age": rng.integers(18, 90, rows).astype(float),
            "income": rng.normal(50_000, 10_000, rows).round(2),
            "city": rng.choice(["north", "south", "east"], rows),
            "label": np.where(np.arange(rows) % 2 == 0, "yes", "no"),
        }
    )


def iris(rows: int = 150) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame(
        {
            "sepal_length": rng.uniform(4.5, 7.5, rows).round(1),
            "sepal_width": rng.uniform(2.2, 4.2, rows).round(1),
            "petal_length": rng.uniform(1.1, 6.5, rows).round(1),
            "petal_width": rng.uniform(0.2, 2.4, rows).round(1),
            "species": np.array(["setosa", "versicolor", "virginica"])[np.arange(rows) % 3],
        }
    )


def text(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def changed(frame: pd.DataFrame, column: str, rows: slice | list[int], value: object) -> pd.DataFrame:
    frame = frame.astype({column: object}) if not isinstance(value, float) else frame.copy()
    frame.loc[rows, column] = value
    return frame


# (case, file to write, its bytes, params to set, the stage that must refuse, words the line must contain)
CASES: list[tuple[str, str, bytes | None, dict, str, list[str]]] = [
    ("empty file", CSV, b"", {}, "ingest", [CSV, "file is empty"]),
    ("header only", CSV, b"age,income,city,label\n", {}, "ingest", [CSV, "header but no rows"]),
    ("semicolons", CSV, text(good()).replace(b",", b";"), {}, "ingest", [CSV, "'label'", "comma-separated"]),
    ("latin-1", CSV, text(good()).replace(b"north", "Nörth".encode("latin-1")), {}, "ingest", [CSV, "not UTF-8"]),
    ("binary", CSV, bytes(range(256)) * 40, {}, "ingest", [CSV]),
    ("ragged row", CSV, text(good()) + b"1,2,north,yes,extra,more\n", {}, "ingest", [CSV, "cannot be parsed"]),
    ("missing target", CSV, text(good().drop(columns="label")), {}, "ingest", [CSV, "'label'", "missing"]),
    ("one class", CSV, text(good().assign(label="yes")), {}, "ingest", [CSV, "'label'", "one value (yes)"]),
    ("duplicated header", CSV, b"age,age,city,label\n" + b"1,2,north,yes\n" * 40, {}, "ingest", [CSV, "'age'"]),
    (
        "text in forced number",
        CSV,
        text(changed(good(), "age", [3], "old")),
        {"data.column_types": {"age": "numeric"}},
        "ingest",
        [CSV, "'age'"],
    ),
    ("missing file", CSV, None, {}, "ingest", [CSV, "not found"]),
    ("single-row class", CSV, text(changed(good(), "label", [5], "maybe")), {}, "ingest", ["'label'", "'maybe'"]),
    ("too few rows per class", CSV, text(good(24)), {}, "validate", ["'label'", "fewer than"]),
    (
        "missing share",
        CSV,
        text(changed(good(), "income", slice(0, 40), float("nan"))),
        {},
        "validate",
        ["'income'", "missing"],
    ),
    (
        "mostly missing",
        CSV,
        text(changed(good(), "city", slice(10, None), "")),
        {},
        "validate",
        ["'city'", "missing", "validate.max_missing_share", "data.exclude"],
    ),
    ("duplicate rows", CSV, text(pd.concat([good(40)] * 3, ignore_index=True)), {}, "validate", ["duplicate"]),
    (
        "iris unknown label",
        IRIS,
        text(changed(iris(), "species", [4], "rose")),
        {"data.dataset": "iris"},
        "ingest",
        [IRIS, "'species'", "rose"],
    ),
    (
        "iris out of range",
        IRIS,
        text(changed(iris(), "petal_length", [2], -3.0)),
        {"data.dataset": "iris"},
        "validate",
        ["'petal_length'", "-3"],
    ),
    (
        "iris missing column",
        IRIS,
        text(iris().drop(columns="sepal_width")),
        {"data.dataset": "iris"},
        "ingest",
        [IRIS, "'sepal_width'", "missing"],
    ),
    (
        "iris extra column",
        IRIS,
        text(iris().assign(colour="red")),
        {"data.dataset": "iris"},
        "ingest",
        [IRIS, "'colour'"],
    ),
    (
        "iris text in numbers",
        IRIS,
        text(changed(iris(), "sepal_length", [1], "five")),
        {"data.dataset": "iris"},
        "ingest",
        [IRIS, "'sepal_length'"],
    ),
    (
        "iris infinity",
        IRIS,
        text(changed(iris(), "sepal_width", [0], float("inf"))),
        {"data.dataset": "iris"},
        "validate",
        ["'sepal_width'", "infinite"],
    ),
    (
        "iris huge value",
        IRIS,
        text(changed(iris(), "sepal_length", [0], "1e400")),
        {"data.dataset": "iris"},
        "validate",
        ["'sepal_length'", "infinite"],
    ),
    (
        "iris missing target value",
        IRIS,
        text(changed(iris(), "species", [7], "")),
        {"data.dataset": "iris"},
        "ingest",
        [IRIS, "'species'"],
    ),
    ("unknown dataset", None, None, {"data.dataset": "wine"}, "ingest", ["data.dataset", "wine"]),
    ("no path", None, None, {"data.path": ""}, "ingest", ["data.path"]),
    ("bad test size", CSV, text(good()), {"data.test_size": 1.5}, "ingest", ["data.test_size"]),
    ("bad fraction", CSV, text(good()), {"data.fraction": 0}, "ingest", ["data.fraction"]),
    ("tiny fraction", CSV, text(good()), {"data.fraction": 0.01}, "ingest", ["data.fraction"]),
    (
        "override names no column",
        CSV,
        text(good()),
        {"data.column_types": {"height": "numeric"}},
        "ingest",
        ["'height'"],
    ),
    (
        "override kind unknown",
        CSV,
        text(good()),
        {"data.column_types": {"age": "text"}},
        "ingest",
        ["data.column_types.age", "'text'"],
    ),
    ("bad year", None, None, {"data.dataset": "employment", "data.years": [1999]}, "ingest", ["data.years", "1999"]),
    ("validate without prepared data", None, None, {}, "validate", ["data/prepared/schema.json", "not found"]),
]


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One project for the whole corpus; each case starts again from its original params.yaml."""
    project = make_project(tmp_path_factory.mktemp("bad") / "repo")
    (project.parent / "params.orig").write_text((project / "params.yaml").read_text())
    return project


def run(stage: str, repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """main() under tabpipe.core.stage.run, in the project folder; returns its stderr lines (it must exit 1)."""
    monkeypatch.chdir(repo)
    monkeypatch.setattr(sys, "argv", stage_argv(stage))
    with pytest.raises(SystemExit) as exit_:
        entry.run(importlib.import_module(f"stages.{stage}").main)
    assert exit_.value.code == 1
    return capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize(("case", "file", "content", "params", "stage", "words"), CASES, ids=[c[0] for c in CASES])
def test_broken_input_is_one_clear_line(
    repo: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    case: str,
    file: str | None,
    content: bytes | None,
    params: dict,
    stage: str,
    words: list[str],
) -> None:
    (repo / "params.yaml").write_text((repo.parent / "params.orig").read_text())
    for path in (repo / CSV, repo / IRIS):
        path.unlink(missing_ok=True)
    if file and content is not None:
        (repo / file).write_bytes(content)
    set_params(repo, **{"data.dataset": "csv", "data.path": CSV, "data.target": "label", **params})
    if stage == "validate" and case != "validate without prepared data":
        monkeypatch.chdir(repo)
        monkeypatch.setattr(sys, "argv", stage_argv("ingest"))
        entry.run(importlib.import_module("stages.ingest").main)  # ingest accepts it; validate must not
    elif case == "validate without prepared data":
        for prepared in (repo / "data/prepared").glob("*"):
            prepared.unlink()
    capsys.readouterr()
    lines = run(stage, repo, monkeypatch, capsys)
    problems = [line for line in lines if line.startswith("error:")]
    assert problems, lines
    assert not any("Traceback" in line for line in lines)
    assert any(all(word in line for word in words) for line in problems), problems


def test_whitespace_variants_of_a_label_are_one_class(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = good().astype({"label": object})
    frame.loc[::4, "label"] = " yes "
    (repo / "params.yaml").write_text((repo.parent / "params.orig").read_text())
    (repo / CSV).write_bytes(text(frame))
    set_params(repo, **{"data.dataset": "csv", "data.path": CSV, "data.target": "label"})
    monkeypatch.chdir(repo)
    monkeypatch.setattr(sys, "argv", stage_argv("ingest"))
    entry.run(importlib.import_module("stages.ingest").main)
    classes = pd.read_json(repo / "data/prepared/schema.json", typ="series")["classes"]
    assert sorted(classes) == ["no", "yes"]


def digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.mark.integration
def test_a_failed_stage_loses_nothing_dvc_checkout_restores_the_last_good_outputs(tmp_path: Path) -> None:
    project = make_project(tmp_path / "repo")
    (project / IRIS).write_bytes(text(iris()))
    set_params(project, **{"data.dataset": "iris"})
    dvc("repro", "validate", cwd=project)
    before = digest(project / "data/prepared")
    (project / IRIS).write_bytes(text(changed(iris(), "species", [4], "rose")))
    failed = dvc("repro", "validate", cwd=project, check=False)
    assert failed.returncode != 0 and "error: data/raw/iris.csv: column 'species'" in failed.stderr
    assert not any(p.suffix == ".parquet" for p in (project / "data/prepared").rglob("*"))  # DVC removed them
    dvc("checkout", "ingest", cwd=project)
    assert digest(project / "data/prepared") == before
