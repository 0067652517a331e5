"""The prediction log off the request path: a worker hands each answered request to a writer process.

A worker writing to SQLite itself paid a transaction per request, and waited on the database lock
held by the other worker (bench/results/HISTORY.md, Serving). Here the worker encodes the request as the log
keeps it (prediction_log.answer: a few JSON arrays) and writes that frame to a pipe before the answer goes
out; its own writer process reads whatever has arrived and commits it in one transaction. The
writer keeps up within milliseconds and batches under load.

What a kill -9 can lose (docs/monitoring.md, tested in tests/integration/test_prediction_log_writer.py):
- the worker: nothing it answered. Its frames are in the pipe; the writer reads to the end, commits
  and exits.
- the writer (or the whole container): the frames it had not committed, at most the pipe
  (PIPE_BYTES) and the read it was inserting (READ_BYTES, or one request larger than that). The
  worker finds the pipe broken at its next request, starts a new writer and carries on.

A full pipe makes the worker wait (a slow disk slows answers rather than growing memory).

    python -m tabpipe.serve.prediction_log_writer LOG.db   # the writer: frames on stdin, "ready" on stdout
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import signal
import struct
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from tabpipe.core.errors import PipelineError
from tabpipe.serve import prediction_log

if TYPE_CHECKING:
    from collections.abc import Callable


# A 1,000-row request is about 330 KB: a pipe that holds several lets the worker hand it over in one
# write instead of waiting on the writer for each 64 KiB (Linux's default); 1 MiB is the most an
# unprivileged process may ask for (fs.pipe-max-size).
PIPE_BYTES = 1024 * 1024
READ_BYTES = 256 * 1024
HEADER = struct.Struct("<I")
PARTS = struct.Struct("<4I")  # the sizes of a frame's head, features, labels and outputs
READY = b"ready\n"


def frame(answer: prediction_log.Answer) -> bytes:
    """One answered request as the writer reads it: its length, the lengths of its parts, then the parts.
    The JSON arrays go as the worker encoded them, so the writer parses only the small head."""
    rows, logged_at, request_id, model, version, names, features, labels, outputs, unseen = answer
    head = orjson.dumps([rows, logged_at, request_id, model, version, names])
    sizes = PARTS.pack(len(head), len(features), len(labels), len(outputs))
    body = b"".join([sizes, head, features, labels, outputs, unseen])
    return HEADER.pack(len(body)) + body


def unframe(buffer: bytearray) -> list[prediction_log.Answer]:
    """The complete frames at the front of `buffer`, removed from it; a partial one stays for the next read."""
    answers, start = [], 0
    while len(buffer) - start >= HEADER.size:
        (size,) = HEADER.unpack_from(buffer, start)
        end = start + HEADER.size + size
        if end > len(buffer):
            break
        body = bytes(buffer[start + HEADER.size : end])
        cuts = list(itertools.accumulate(PARTS.unpack_from(body), initial=PARTS.size))
        head, features, labels, outputs = (body[a:b] for a, b in itertools.pairwise(cuts))
        answers.append(prediction_log.Answer(*orjson.loads(head), features, labels, outputs, body[cuts[-1] :]))
        start = end
    del buffer[:start]
    return answers


class LogPipe:
    """A worker's end of the log: frames go to its writer process (shared by the worker's threads)."""

    def __init__(self, path: Path, on_restart: Callable[[int | None], None]) -> None:
        self.path = path
        self._on_restart = on_restart
        self._lock = threading.Lock()
        self._writer = self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        """Start a writer and wait until it has the database open: an unwritable log fails here, at startup."""
        package_root = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
        writer = subprocess.Popen(
            [sys.executable, "-m", "tabpipe.serve.prediction_log_writer", str(self.path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            bufsize=0,
        )
        assert writer.stdin is not None and writer.stdout is not None
        with contextlib.suppress(OSError):  # a lower fs.pipe-max-size: the default pipe, a smaller bound
            fcntl.fcntl(writer.stdin.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        said = writer.stdout.readline()
        if said != READY:
            writer.wait()
            problem = said.decode(errors="replace").strip() or "its writer exited"
            raise PipelineError(f"prediction log {self.path}: {problem}")
        return writer

    def append(self, one: prediction_log.Answer) -> str:
        """Hand one answered request's rows to the writer; returns the request id they share."""
        data = frame(one)
        with self._lock:
            try:
                self._send(data)
            except BrokenPipeError:  # the writer died: what it held is lost; this request goes to a new one
                lost = self._writer.wait()
                self._writer = self._start()
                self._on_restart(lost)
                self._send(data)
        return one.request_id

    def _send(self, data: bytes) -> None:
        assert self._writer.stdin is not None
        view = memoryview(data)
        while view:
            view = view[os.write(self._writer.stdin.fileno(), view) :]

    def close(self) -> None:
        """End the pipe; the writer commits what it holds and exits."""
        with self._lock:
            assert self._writer.stdin is not None
            self._writer.stdin.close()
            self._writer.wait()


def serve(path: Path, source: int, said: Any) -> None:
    """The writer: open the log, say so, then commit each read's frames in one transaction until EOF."""
    try:
        log = prediction_log.PredictionLog(path)
    except Exception as error:  # the worker reports it as its own startup failure
        said.write(f"{type(error).__name__}: {error}\n".encode())
        said.flush()
        raise SystemExit(1) from None
    said.write(READY)
    said.flush()
    buffer = bytearray()
    while chunk := os.read(source, READ_BYTES):
        buffer += chunk
        answers = unframe(buffer)
        if answers:
            log.insert(answers)
    log.close()  # a partial frame left at EOF is a request its worker never answered


def main() -> None:
    # The writer outlives a terminated worker's group long enough to commit: it stops at the pipe's end.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    serve(Path(sys.argv[1]), sys.stdin.fileno(), sys.stdout.buffer)


if __name__ == "__main__":
    main()
