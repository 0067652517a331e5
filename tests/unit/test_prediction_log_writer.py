"""The prediction log's pipe: frames survive any split into reads, a writer logs what a synchronous
log would, and a partial frame at the pipe's end (a request never answered) is dropped."""

import itertools
import os
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tabpipe.core.errors import PipelineError
from tabpipe.serve import prediction_log, prediction_log_writer
from tests.unit.test_prediction_log import CLASSES, MODEL, assert_whole_requests, request

LOG_COLUMNS = ["request_id", "row", "model", "version", "x", "c", "z", "label", "proba_no", "proba_yes", "unseen"]


def framed(n: int) -> bytes:
    records, labels, proba = request(1 + n % 4, n)
    return prediction_log_writer.frame(
        prediction_log.answer(f"r{n}", records, labels, proba, CLASSES, MODEL, [{}] * len(records))
    )


@given(count=st.integers(0, 6), cuts=st.lists(st.integers(0, 4000), max_size=8))
def test_frames_come_back_whole_however_the_bytes_are_split(count: int, cuts: list[int]) -> None:
    stream = b"".join(framed(n) for n in range(count))
    bounds = sorted({0, len(stream), *(c for c in cuts if c < len(stream))})
    buffer, frames = bytearray(), []
    for start, end in itertools.pairwise(bounds):
        buffer += stream[start:end]
        frames += prediction_log_writer.unframe(buffer)
    assert [f[2] for f in frames] == [f"r{n}" for n in range(count)] and buffer == b""
    again = [prediction_log_writer.unframe(bytearray(framed(n)))[0] for n in range(count)]
    assert [f[:1] + f[2:] for f in frames] == [f[:1] + f[2:] for f in again]  # all but the time


def test_the_writer_logs_what_the_synchronous_log_would_and_drops_a_partial_frame(tmp_path: Path) -> None:
    direct = prediction_log.PredictionLog(tmp_path / "direct.db")
    read_end, write_end = os.pipe()
    frames = []
    for n in range(5):
        records, labels, proba = request(1 + n, n)
        flags = [{"x": "above_range"} if i == 0 else {} for i in range(len(records))]
        request_id = direct.append(prediction_log.new(records, labels, proba, CLASSES, MODEL, flags))
        frames.append(
            prediction_log_writer.frame(
                prediction_log.answer(request_id, records, labels, proba, CLASSES, MODEL, flags)
            )
        )
    unanswered = framed(99)
    os.write(write_end, b"".join(frames) + unanswered[: len(unanswered) // 2])
    os.close(write_end)
    said = WrittenTo()
    prediction_log_writer.serve(tmp_path / "piped.db", read_end, said)
    assert said.text == prediction_log_writer.READY
    piped, expected = prediction_log.read(tmp_path / "piped.db"), prediction_log.read(tmp_path / "direct.db")
    assert len(piped) == 1 + 2 + 3 + 4 + 5 and "r99" not in set(piped["request_id"])
    assert piped[LOG_COLUMNS].equals(expected[LOG_COLUMNS])
    assert_whole_requests(piped)


class WrittenTo:
    def __init__(self) -> None:
        self.text = b""

    def write(self, data: bytes) -> None:
        self.text += data

    def flush(self) -> None:
        pass


def test_a_worker_threads_share_one_writer_process_and_close_commits_everything(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    restarts: list[int | None] = []
    pipe = prediction_log_writer.LogPipe(path, restarts.append)

    def part(first: int) -> None:
        for n in range(first, first + 25):
            records, labels, proba = request(1 + n % 7, n)
            pipe.append(prediction_log.new(records, labels, proba, CLASSES, MODEL, [{}] * len(records)))

    threads = [threading.Thread(target=part, args=(i * 25,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    pipe.close()
    logged = prediction_log.read(path)
    assert logged["request_id"].nunique() == 100 and len(logged) == sum(1 + n % 7 for n in range(100))
    assert_whole_requests(logged)
    assert restarts == []


def test_a_writer_that_cannot_open_the_log_fails_the_worker_at_startup(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(PipelineError, match=r"prediction log .*/file/log.db: FileExistsError"):
        prediction_log_writer.LogPipe(tmp_path / "file" / "log.db", print)


def test_waiting_for_rows_that_never_come_says_how_many_did(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    prediction_log.PredictionLog(path).append(prediction_log.new(*request(2, 0), CLASSES, MODEL))
    prediction_log.wait(path, 2)
    with pytest.raises(PipelineError, match=r"log.db: 2 of 3 answered rows logged after 0 s"):
        prediction_log.wait(path, 3, timeout=0.1)
    assert prediction_log.last_id(path) == 2
