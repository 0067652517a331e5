"""The prediction log: every row the service answers, kept in SQLite so the monitor can read traffic back.

SQLite in WAL mode gives what the log needs with nothing to run: each request's rows go in one
transaction (all or none, never interleaved with another request's), several worker processes
may append at once (they queue on the database lock), a reader never blocks the writers, and a
committed row survives a crash or restart of the service.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from tabpipe.core.errors import PipelineError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

ENV = "TABPIPE_PREDICTION_LOG"
SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS predictions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    logged_at REAL NOT NULL,
    request_id TEXT NOT NULL,
    row INTEGER NOT NULL,
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    features TEXT NOT NULL,
    label TEXT NOT NULL,
    probabilities TEXT NOT NULL,
    unseen TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS predictions_request ON predictions (request_id);
"""


def location(configured: str | None, environ: dict[str, str]) -> Path | None:
    """Where the service logs: TABPIPE_PREDICTION_LOG, else `serve.prediction_log`; empty turns logging off."""
    value = environ.get(ENV, configured or "")
    return Path(value) if value.strip() else None


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
            _migrate(connection)
            return connection
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                connection.close()
                raise
            time.sleep(0.05)


def _migrate(connection: sqlite3.Connection) -> None:
    """Give a log written before values outside the schema were flagged its `unseen` column.

    Workers opening an old log together may both try; the loser finds the column already there.
    """
    columns = {row[1] for row in connection.execute("PRAGMA table_info(predictions)")}
    if "unseen" in columns:
        return
    try:
        connection.execute("ALTER TABLE predictions ADD COLUMN unseen TEXT NOT NULL DEFAULT '{}'")
    except sqlite3.OperationalError as error:
        if "duplicate column" not in str(error):
            raise


class PredictionLog:
    """An append-only writer, shared by the threads of one process (BentoML runs sync APIs in a pool)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._connection = connect(path)
        self._lock = threading.Lock()

    def append(
        self,
        records: list[dict[str, Any]],
        labels: np.ndarray,
        proba: np.ndarray,
        classes: list[str],
        model: dict[str, str],
        unseen: list[dict[str, str]] | None = None,
    ) -> str:
        """Write one request's rows in one transaction; returns the request id they share.

        `unseen` holds each row's values outside the schema's limits ({column: kind}, see
        tabpipe.serve.contract); rows without any are logged with `{}`.
        """
        request_id = uuid.uuid4().hex
        now = time.time()
        name, version = model["name"], model["version"]
        flags = unseen if unseen is not None else [{}] * len(records)
        rows = [
            (
                now,
                request_id,
                index,
                name,
                version,
                orjson.dumps(record).decode(),
                str(label),
                orjson.dumps(dict(zip(classes, p, strict=True))).decode(),
                orjson.dumps(flag).decode(),
            )
            for index, (record, label, p, flag) in enumerate(zip(records, labels, proba.tolist(), flags, strict=True))
        ]
        with self._lock:
            self._connection.execute("BEGIN IMMEDIATE")
            try:
                self._connection.executemany(
                    "INSERT INTO predictions (logged_at, request_id, row, model, version, features, label,"
                    " probabilities, unseen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
                self._connection.execute("COMMIT")
            except BaseException:
                self._connection.execute("ROLLBACK")
                raise
        return request_id

    def close(self) -> None:
        with self._lock:
            self._connection.close()


def read(path: Path, *, after_id: int = 0, last: int | None = None, until_id: int | None = None) -> pd.DataFrame:
    """Logged rows with id > after_id (and <= until_id), or only the `last` ones, oldest first.

    One column per feature, then `label` and `proba_<class>` per class, plus the log's own
    columns (`id`, `logged_at`, `request_id`, `row`, `model`, `version`, and `unseen`: each row's
    values outside the schema's limits as JSON, `{}` for rows logged before they were flagged).
    """
    import pandas as pd

    if not path.is_file():
        raise PipelineError(f"{path}: prediction log not found (is the service logging there?)")
    query = "SELECT * FROM predictions WHERE id > ?"
    args: list[Any] = [after_id]
    if until_id is not None:
        query += " AND id <= ?"
        args.append(until_id)
    if last is not None:
        query = f"SELECT * FROM ({query} ORDER BY id DESC LIMIT ?)"
        args.append(int(last))
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as connection:
            frame = pd.read_sql_query(f"{query} ORDER BY id", connection, params=args)
    except (sqlite3.DatabaseError, pd.errors.DatabaseError) as error:
        raise PipelineError(f"{path}: not a readable prediction log ({error})") from None
    features = pd.DataFrame.from_records([json.loads(f) for f in frame["features"]], index=frame.index)
    proba = pd.DataFrame.from_records([json.loads(p) for p in frame["probabilities"]], index=frame.index)
    proba.columns = [f"proba_{c}" for c in proba.columns]
    log_columns = frame.drop(columns=["features", "probabilities"])
    if "unseen" not in log_columns.columns:  # a log no service of this version has opened yet (read-only here)
        log_columns["unseen"] = "{}"
    return pd.concat([features, log_columns, proba], axis=1)


def last_id(path: Path) -> int:
    """The newest row's id (0 for an empty or missing log): a bookmark for reading what comes next."""
    if not path.is_file():
        return 0
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as connection:
        return int(connection.execute("SELECT COALESCE(MAX(id), 0) FROM predictions").fetchone()[0])
