"""The prediction log: nothing lost or interleaved under concurrent writers, and it outlives its writer."""

import multiprocessing
import sqlite3
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tabpipe.core.errors import PipelineError
from tabpipe.serve import prediction_log

CLASSES = ["no", "yes"]
MODEL = {"name": "tabpipe-toy", "version": "abc"}


def request(size: int, seed: int) -> tuple[list[dict], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    records = [{"x": float(rng.uniform(0, 10)), "c": str(rng.choice(["a", "b"])), "z": None} for _ in range(size)]
    p = rng.uniform(size=size)
    proba = np.column_stack([1 - p, p])
    return records, np.where(p > 0.5, "yes", "no"), proba


def write_many(path: Path, start: int, count: int) -> None:
    log = prediction_log.PredictionLog(path)
    for i in range(start, start + count):
        log.append(prediction_log.new(*request(1 + i % 7, i), CLASSES, MODEL))
    log.close()


def assert_whole_requests(frame) -> None:
    """Each request's rows are one contiguous run of ids, numbered 0..n-1: never interleaved."""
    for _, rows in frame.groupby("request_id"):
        assert rows["row"].tolist() == list(range(len(rows)))
        assert np.all(np.diff(rows["id"].to_numpy()) == 1)


def test_rows_round_trip_with_features_labels_and_probabilities(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    log = prediction_log.PredictionLog(path)
    records, labels, proba = request(5, 0)
    request_id = log.append(prediction_log.new(records, labels, proba, CLASSES, MODEL))
    frame = prediction_log.read(path)
    assert frame["request_id"].unique().tolist() == [request_id]
    assert frame[["x", "c"]].to_dict(orient="records") == [{"x": r["x"], "c": r["c"]} for r in records]
    assert frame["z"].isna().all()
    assert frame["label"].tolist() == labels.tolist()
    np.testing.assert_array_equal(frame[["proba_no", "proba_yes"]].to_numpy(), proba)
    assert set(frame["version"]) == {"abc"} and prediction_log.last_id(path) == 5


def test_concurrent_threads_and_processes_lose_and_interleave_nothing(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    log = prediction_log.PredictionLog(path)
    expected = 0

    def threads_part(first: int) -> None:
        for i in range(first, first + 40):
            log.append(prediction_log.new(*request(1 + i % 7, i), CLASSES, MODEL))

    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=write_many, args=(path, 1000 * k, 40)) for k in (1, 2)]
    threads = [threading.Thread(target=threads_part, args=(100 * k,)) for k in range(6)]
    for worker in [*processes, *threads]:
        worker.start()
    for worker in [*processes, *threads]:
        worker.join()
    assert all(p.exitcode == 0 for p in processes)
    for first in [*(1000 * k for k in (1, 2)), *(100 * k for k in range(6))]:
        expected += sum(1 + i % 7 for i in range(first, first + 40))
    frame = prediction_log.read(path)
    assert len(frame) == expected and frame["request_id"].nunique() == 8 * 40
    assert_whole_requests(frame)


def open_together(path: Path, barrier: Any) -> None:
    barrier.wait()
    write_many(path, 0, 2)


def test_workers_starting_together_all_open_a_new_log(tmp_path: Path) -> None:
    """BentoML starts its workers at once; each creates the log if needed. None may fail on the race."""
    for attempt in range(3):
        path = tmp_path / f"log{attempt}.db"
        context = multiprocessing.get_context("spawn")
        barrier = context.Barrier(4)
        processes = [context.Process(target=open_together, args=(path, barrier)) for _ in range(4)]
        for process in processes:
            process.start()
        for process in processes:
            process.join()
        assert [p.exitcode for p in processes] == [0, 0, 0, 0]
        assert len(prediction_log.read(path)) == 4 * (1 + 2)


def test_the_log_outlives_its_writer_and_windows_read_by_id(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    write_many(path, 0, 10)
    mark = prediction_log.last_id(path)
    write_many(path, 10, 5)  # a restarted service appends to the same file
    after = prediction_log.read(path, after_id=mark)
    assert len(after) == sum(1 + i % 7 for i in range(10, 15)) and after["id"].min() == mark + 1
    assert len(prediction_log.read(path, last=3)) == 3 and prediction_log.read(path, last=3)[
        "id"
    ].max() == prediction_log.last_id(path)
    assert len(prediction_log.read(path, until_id=mark)) == mark


def test_location_comes_from_the_environment_first_and_empty_turns_it_off() -> None:
    assert prediction_log.location("logs/p.db", {}) == Path("logs/p.db")
    assert prediction_log.location("logs/p.db", {prediction_log.ENV: "/x/y.db"}) == Path("/x/y.db")
    assert prediction_log.location("logs/p.db", {prediction_log.ENV: ""}) is None
    assert prediction_log.location("", {}) is None


def test_a_missing_or_foreign_file_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match="prediction log not found"):
        prediction_log.read(tmp_path / "absent.db")
    (tmp_path / "junk.db").write_bytes(b"not a database at all" * 100)
    with pytest.raises(PipelineError, match="not a readable prediction log"):
        prediction_log.read(tmp_path / "junk.db")
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (a)").connection.commit()
    with pytest.raises(PipelineError, match="not a readable prediction log"):
        prediction_log.read(other)


OLD_SCHEMA_SQL = """
CREATE TABLE predictions (
    id INTEGER PRIMARY KEY AUTOINCREMENT, logged_at REAL NOT NULL, request_id TEXT NOT NULL,
    row INTEGER NOT NULL, model TEXT NOT NULL, version TEXT NOT NULL, features TEXT NOT NULL,
    label TEXT NOT NULL, probabilities TEXT NOT NULL
);
INSERT INTO predictions (logged_at, request_id, row, model, version, features, label, probabilities)
VALUES (1.0, 'old', 0, 'tabpipe-toy', 'abc', '{"x": 1.0, "c": "a", "z": null}', 'no', '{"no": 0.9, "yes": 0.1}');
"""


def test_unseen_values_are_flagged_per_row(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    log = prediction_log.PredictionLog(path)
    records, labels, proba = request(3, 0)
    log.append(
        prediction_log.new(
            records, labels, proba, CLASSES, MODEL, [{}, {"x": "above_range", "c": "unseen_category"}, {}]
        )
    )
    log.append(prediction_log.new(records[:1], labels[:1], proba[:1], CLASSES, MODEL))  # a caller that flags nothing
    assert prediction_log.read(path)["unseen"].tolist() == [
        "{}",
        '{"x":"above_range","c":"unseen_category"}',
        "{}",
        "{}",
    ]


def test_a_log_of_earlier_versions_is_read_as_is_and_new_answers_are_numbered_after_it(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as connection:
        connection.executescript(OLD_SCHEMA_SQL)  # one table row per answered row, before flags
    before = prediction_log.read(path)  # the monitor reads read-only
    assert before["unseen"].tolist() == ["{}"] and before["request_id"].tolist() == ["old"]
    assert before[["x", "c", "label", "proba_no"]].to_dict(orient="records") == [
        {"x": 1.0, "c": "a", "label": "no", "proba_no": 0.9}
    ]

    logs = [prediction_log.PredictionLog(path), prediction_log.PredictionLog(path)]  # two workers
    records, labels, proba = request(2, 0)
    logs[1].append(prediction_log.new(records, labels, proba, CLASSES, MODEL, [{"x": "below_range"}, {}]))
    logs[0].append(prediction_log.new(records[:1], labels[:1], proba[:1], CLASSES, MODEL))
    for log in logs:
        log.close()
    after = prediction_log.read(path)
    assert after["id"].tolist() == [1, 2, 3, 4] and prediction_log.last_id(path) == 4
    assert after["request_id"].iloc[0] == "old" and after["row"].tolist() == [0, 0, 1, 0]
    assert after["unseen"].tolist() == ["{}", '{"x":"below_range"}', "{}", "{}"]
    assert prediction_log.read(path, after_id=1, until_id=3)["id"].tolist() == [2, 3]
    assert prediction_log.read(path, last=3)["id"].tolist() == [2, 3, 4]
