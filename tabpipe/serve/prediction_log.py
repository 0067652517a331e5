"""The prediction log: every row the service answers, kept in SQLite so the monitor can read traffic back.

SQLite in WAL mode gives what the log needs with nothing to run: several processes may append at
once (they queue on the database lock), a reader never blocks the writers, and a committed answer
survives a crash or restart of the service.

One table row holds one answered request: its rows' features, labels, outputs and flags as JSON
arrays, written as the service encoded them. A row per answered row cost about 6 ms per 1,000 rows
to insert, one per request 1.6 ms (bench/results/HISTORY.md, Serving). Rows are still numbered one by one:
a request's rows have the ids first_row + 1 .. first_row + rows, so windows and bookmarks
(`after_id`, `last_id`) count rows. A log written by earlier versions (a `predictions` table, one
row per row) is read as is, and new answers are numbered after its rows.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson

from tabpipe.core.errors import PipelineError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

ENV = "TABPIPE_PREDICTION_LOG"
SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS answers (
    id INTEGER PRIMARY KEY,
    first_row INTEGER NOT NULL,
    rows INTEGER NOT NULL,
    logged_at REAL NOT NULL,
    request_id TEXT NOT NULL,
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    names TEXT NOT NULL,
    features BLOB NOT NULL,
    labels BLOB NOT NULL,
    outputs BLOB NOT NULL,
    unseen BLOB NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS answers_first_row ON answers (first_row);
"""
INSERT_SQL = (
    "INSERT INTO answers (first_row, rows, logged_at, request_id, model, version, names, features, labels,"
    " outputs, unseen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


class Answer(NamedTuple):
    """One answered request as an `answers` row without its first_row: what a worker hands the writer."""

    rows: int
    logged_at: float
    request_id: str
    model: str
    version: str
    names: str
    features: bytes
    labels: bytes
    outputs: bytes
    unseen: bytes


def location(configured: str | None, environ: dict[str, str]) -> Path | None:
    """Where the service logs: TABPIPE_PREDICTION_LOG, else `serve.prediction_log`; empty turns logging off."""
    value = environ.get(ENV, configured or "")
    return Path(value) if value.strip() else None


def answer(
    request_id: str,
    records: list[dict[str, Any]],
    labels: np.ndarray,
    outputs: np.ndarray,
    names: list[str],
    model: dict[str, str],
    flags: list[dict[str, str]],
) -> Answer:
    """One request's rows as the log keeps them: `outputs` has a column per name (the classes'
    probabilities, or an interval's lower and upper end); `flags` each row's values outside the
    schema's limits ({column: kind}, see tabpipe.serve.unseen)."""
    return Answer(
        len(records),
        time.time(),
        request_id,
        model["name"],
        model["version"],
        orjson.dumps(names).decode(),
        orjson.dumps(records),
        orjson.dumps(labels.tolist()),
        orjson.dumps(outputs, option=orjson.OPT_SERIALIZE_NUMPY),
        orjson.dumps(flags),
    )


def new(
    records: list[dict[str, Any]],
    labels: np.ndarray,
    outputs: np.ndarray,
    names: list[str],
    model: dict[str, str],
    flags: list[dict[str, str]] | None = None,
) -> Answer:
    """A just-answered request under a new request id (rows without flags get `{}`); `answer`'s parameters
    in `answer`'s order, without the request id."""
    return answer(uuid.uuid4().hex, records, labels, outputs, names, model, flags or [{}] * len(records))


def connect(path: Path, timeout: float = 30.0) -> sqlite3.Connection:
    """Open (creating if needed) the log. Workers starting together race to switch a new database
    to WAL, and SQLite answers that race with "locked" at once, not after its busy timeout: retry."""
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, timeout=timeout, check_same_thread=False, isolation_level=None)
    deadline = time.monotonic() + timeout
    while True:
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.executescript(SCHEMA_SQL)
            return connection
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                connection.close()
                raise
            time.sleep(0.05)


class PredictionLog:
    """An append-only writer. The service's is the writer process behind tabpipe.serve.prediction_log_writer."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._connection = connect(path)
        self._lock = threading.Lock()  # a connection is shared by the threads of one process
        self._legacy_rows = _legacy_last_id(self._connection, _tables(self._connection))

    def append(self, one: Answer) -> str:
        """Write one request's rows now; returns the request id they share."""
        self.insert([one])
        return one.request_id

    def insert(self, answers: list[Answer]) -> None:
        """Write answered requests in one transaction (all or none), numbering their rows after the last."""
        with self._lock:
            self._connection.execute("BEGIN IMMEDIATE")
            try:
                first = _answers_last_id(self._connection)
                first = self._legacy_rows if first is None else first
                batch = []
                for one in answers:
                    batch.append((first, *one))
                    first += one[0]
                self._connection.executemany(INSERT_SQL, batch)
                self._connection.execute("COMMIT")
            except BaseException:
                self._connection.execute("ROLLBACK")
                raise

    def close(self) -> None:
        with self._lock:
            self._connection.close()


def _tables(connection: sqlite3.Connection) -> set[str]:
    return {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _answers_last_id(connection: sqlite3.Connection) -> int | None:
    last = connection.execute("SELECT first_row + rows FROM answers ORDER BY id DESC LIMIT 1").fetchone()
    return None if last is None else int(last[0])


def _legacy_last_id(connection: sqlite3.Connection, tables: set[str]) -> int:
    if "predictions" not in tables:
        return 0
    return int(connection.execute("SELECT COALESCE(MAX(id), 0) FROM predictions").fetchone()[0])


@contextlib.contextmanager
def _reading(path: Path) -> Any:
    """The log opened read-only, with the tables it has; a file that is not one is a PipelineError."""
    if not path.is_file():
        raise PipelineError(f"{path}: prediction log not found (is the service logging there?)")
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as connection:
            tables = _tables(connection)
            if not tables & {"answers", "predictions"}:
                raise sqlite3.DatabaseError("no answers table")
            yield connection, tables
    except sqlite3.DatabaseError as error:
        raise PipelineError(f"{path}: not a readable prediction log ({error})") from None


def _last_id(connection: sqlite3.Connection, tables: set[str]) -> int:
    last = _answers_last_id(connection) if "answers" in tables else None
    return _legacy_last_id(connection, tables) if last is None else last


def last_id(path: Path) -> int:
    """The newest row's id (0 for an empty or missing log): a bookmark for reading what comes next."""
    if not path.is_file():
        return 0
    with _reading(path) as (connection, tables):
        return _last_id(connection, tables)


def wait(path: Path, rows: int, after_id: int = 0, timeout: float = 30.0) -> None:
    """Return once `rows` rows past `after_id` are logged. The service's writer commits a moment after
    the answers go out (tabpipe.serve.prediction_log_writer), so a reader that has just been answered waits here."""
    deadline = time.monotonic() + timeout
    while (logged := last_id(path) - after_id) < rows:
        if time.monotonic() > deadline:
            raise PipelineError(f"{path}: {logged} of {rows} answered rows logged after {timeout:.0f} s")
        time.sleep(0.02)


def read(path: Path, *, after_id: int = 0, last: int | None = None, until_id: int | None = None) -> pd.DataFrame:
    """Logged rows with id > after_id (and <= until_id), or only the `last` ones, oldest first.

    One column per feature, then the log's own columns (`id`, `logged_at`, `request_id`, `row`,
    `model`, `version`, `label`, and `unseen`: the row's values outside the schema's limits as
    JSON), then `proba_<name>` per output (a class, or an interval's `lower` and `upper`).
    """
    import pandas as pd

    with _reading(path) as (connection, tables):
        upper = _last_id(connection, tables) if until_id is None else until_id
        lower = after_id if last is None else max(after_id, upper - int(last))
        rows = _legacy_rows(connection, tables, lower, upper) + _answer_rows(connection, tables, lower, upper)
    columns = ["id", "logged_at", "request_id", "row", "model", "version", "label", "unseen"]
    log_columns = pd.DataFrame([r[:8] for r in rows], columns=columns)
    features = pd.DataFrame.from_records([r[8] for r in rows], index=log_columns.index)
    outputs = pd.DataFrame.from_records([r[9] for r in rows], index=log_columns.index)
    outputs.columns = [f"proba_{c}" for c in outputs.columns]
    return pd.concat([features, log_columns, outputs], axis=1)


def _answer_rows(connection: sqlite3.Connection, tables: set[str], lower: int, upper: int) -> list[tuple[Any, ...]]:
    """Rows lower < id <= upper of the `answers` table, one tuple per answered row."""
    if "answers" not in tables:
        return []
    found = connection.execute(
        "SELECT first_row, logged_at, request_id, model, version, names, features, labels, outputs, unseen"
        " FROM answers WHERE first_row >= (SELECT COALESCE(MAX(first_row), 0) FROM answers WHERE first_row <= ?)"
        " AND first_row < ? ORDER BY first_row",
        (lower, upper),
    )
    rows = []
    for first, logged_at, request_id, model, version, names, features, labels, outputs, unseen in found:
        keys = orjson.loads(names)
        parts = [orjson.loads(part) for part in (features, labels, outputs, unseen)]
        for index, (record, label, output, flags) in enumerate(zip(*parts, strict=True)):
            row_id = first + index + 1
            if lower < row_id <= upper:
                meta = (row_id, logged_at, request_id, index, model, version, str(label), orjson.dumps(flags).decode())
                rows.append((*meta, record, dict(zip(keys, output, strict=True))))
    return rows


def _legacy_rows(connection: sqlite3.Connection, tables: set[str], lower: int, upper: int) -> list[tuple[Any, ...]]:
    """Rows of a log written one table row per answered row (before the `answers` table)."""
    if "predictions" not in tables:
        return []
    columns = {row[1] for row in connection.execute("PRAGMA table_info(predictions)")}
    unseen = "unseen" if "unseen" in columns else "'{}'"  # logged before values outside the limits were flagged
    found = connection.execute(
        "SELECT id, logged_at, request_id, row, model, version, label, "
        f"{unseen}, features, probabilities FROM predictions WHERE id > ? AND id <= ? ORDER BY id",
        (lower, upper),
    )
    return [(*meta, orjson.loads(features), orjson.loads(outputs)) for *meta, features, outputs in found]
