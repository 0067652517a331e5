"""What a kill -9 can lose from the prediction log, against a real `bentoml serve` (one worker).

The worker hands each answered request to its writer process through a pipe (tabpipe.serve.prediction_log_writer).
Stopping the writer (SIGSTOP) holds answered requests in the pipe, so each kill below happens with a
known set of answered, uncommitted requests."""

import json
import os
import threading
import time
import urllib.error
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psutil
import pytest

from tabpipe.serve import prediction_log, prediction_log_writer
from tests.support.client import get, post
from tests.support.commands import dvc, env
from tests.support.projects import Reproduced, copy_reproduced, set_params
from tests.support.servers import serving

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def one_worker(golden: Reproduced, tmp_path_factory: pytest.TempPathFactory) -> Reproduced:
    project = copy_reproduced(golden, tmp_path_factory.mktemp("prediction_log_writer"))
    set_params(project.repo, **{"serve.workers": 1})
    dvc("repro", cwd=project.repo, env=env(BENTOML_HOME=str(project.home)))  # only package reruns
    return project


@pytest.fixture
def served(one_worker: Reproduced, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    log = tmp_path / "predictions.db"
    with serving(one_worker.repo, one_worker.home, **{prediction_log.ENV: str(log)}) as url:
        yield url, log


def writer_of(log: Path) -> psutil.Process:
    """The (one) writer process appending to `log`; its parent is the worker."""
    found = [
        p
        for p in psutil.process_iter(["cmdline"])
        if (p.info["cmdline"] or [])[-2:] == ["tabpipe.serve.prediction_log_writer", str(log)]
    ]
    assert len(found) == 1, found
    return found[0]


LIMIT = 20_000  # one-row requests: the pipe is full after about 3,300


def writing(worker: psutil.Process) -> bool:
    """Whether one of the worker's threads waits in the kernel to write to a full pipe."""
    tasks = Path(f"/proc/{worker.pid}/task")
    return any("pipe_write" in (task / "wchan").read_text() for task in tasks.iterdir())


ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


def answer_one(url: str) -> dict:
    status, answer = post(url, {"rows": [ROW]})
    assert status == 200, answer
    return answer


def logged_ids(log: Path) -> list[str]:
    return prediction_log.read(log)["request_id"].tolist()


def test_a_killed_worker_loses_no_answered_request(served: tuple[str, Path]) -> None:
    url, log = served
    writer = writer_of(log)
    writer.suspend()
    answered = [answer_one(url)["request_id"] for _ in range(20)]  # all 20 wait in the pipe
    assert logged_ids(log) == []
    writer.parent().kill()
    writer.resume()
    writer.wait(timeout=30)  # it read to the pipe's end, committed and left
    assert logged_ids(log) == answered


def test_a_killed_writer_loses_at_most_the_pipe_and_is_replaced(served: tuple[str, Path], one_worker) -> None:
    url, log = served
    first = answer_one(url)["request_id"]
    prediction_log.wait(log, 1)
    writer = writer_of(log)
    writer.suspend()
    answered: list[dict] = []
    enough = threading.Event()

    def one_by_one() -> None:
        while not enough.is_set() and len(answered) < LIMIT:
            answered.append(answer_one(url))

    client = threading.Thread(target=one_by_one, daemon=True)
    client.start()
    deadline = time.monotonic() + 120
    while not writing(writer.parent()) and client.is_alive() and time.monotonic() < deadline:
        time.sleep(0.2)  # until the pipe is full and the worker waits in write(2) for room
    assert writing(writer.parent())
    count = len(answered)  # the client waits for the blocked request's answer: no more arrive
    assert 0 < count < LIMIT
    writer.kill()
    deadline = time.monotonic() + 60
    while len(answered) < count + 10 and client.is_alive() and time.monotonic() < deadline:
        time.sleep(0.1)  # the waiting request goes to a new writer, and the next ones too
    assert len(answered) >= count + 10
    enough.set()
    client.join(timeout=60)
    assert not client.is_alive()
    prediction_log.wait(log, 1 + len(answered) - count)  # the first request, then every one from the waiting one on

    logged = set(logged_ids(log))
    lost = [a for a in answered if a["request_id"] not in logged]
    assert first in logged and lost == answered[:count]  # exactly what sat in the pipe
    sizes = [len(frame_of(a)) for a in lost]
    # No more than the pipe was lost, and the pipe was full: its pages hold whole frames, each page
    # with less than one frame's room left over.
    pages = prediction_log_writer.PIPE_BYTES // os.sysconf("SC_PAGE_SIZE")
    assert prediction_log_writer.PIPE_BYTES - pages * max(sizes) < sum(sizes) <= prediction_log_writer.PIPE_BYTES
    assert writer_of(log).pid != writer.pid
    restarts = [line for line in get(url, "/metrics")[1].splitlines() if line.startswith("tabpipe_prediction_log_wr")]
    assert restarts == ["tabpipe_prediction_log_writer_restarts_total 1.0"]
    said = (one_worker.repo / "serve.log").read_text()
    assert said.count("writer exited (-9), restarted; rows it held are lost") == 1


def frame_of(answer: dict) -> bytes:
    """The frame the worker wrote for a one-row answer (the same sizes: only the id and the time differ)."""
    (prediction,) = answer["predictions"]
    names = list(prediction["probabilities"])
    outputs = np.array([[prediction["probabilities"][n] for n in names]])
    label = np.array([prediction["label"]])
    return prediction_log_writer.frame(
        prediction_log.answer(answer["request_id"], [ROW], label, outputs, names, answer["model"], [{}])
    )


def test_an_unwritable_log_leaves_the_service_up_and_not_ready(one_worker: Reproduced, tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("a file where the log's folder should be")
    with serving(
        one_worker.repo, one_worker.home, ready="/livez", **{prediction_log.ENV: str(blocked / "p.db")}
    ) as url:
        status, body = get_status(url, "/health")
        assert status == 503 and json.loads(body)["ready"] is False
    said = (one_worker.repo / "serve.log").read_text()
    assert "not ready: model" in said and f"prediction log {blocked / 'p.db'}:" in said


def get_status(url: str, path: str) -> tuple[int, str]:
    try:
        return get(url, path)
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
