"""Sustained load on a real `bentoml serve` of every candidate family: no errors, a complete prediction
log, and (soak) no leak.

The default suite runs 10 seconds at concurrency 32 against logistic regression and the regressor
(the other families under `-m slow`) and checks correctness only: speed
and memory depend on how busy the machine is (`tabpipe bench serving` measures them). `pytest -m slow
tests/integration/test_load.py` runs the 5-minute soak per family, which also checks the trend of
the server's memory after warm-up. Load comes from 32 client threads on 127.0.0.1, bounded by time.
"""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
import urllib.parse

import psutil
import pytest

from tabpipe.serve import prediction_log
from tests.support.servers import Served

pytestmark = pytest.mark.integration


def server_rss(url: str) -> int:
    """Resident memory of every process of the server at `url`: its process group (supervisor and workers)."""
    port = urllib.parse.urlsplit(url).port
    listeners = {c.pid for c in psutil.net_connections("tcp") if c.laddr and c.laddr.port == port and c.pid}
    groups = {os.getpgid(pid) for pid in listeners}
    members = [p for p in psutil.process_iter() if _group(p.pid) in groups]
    return sum(p.memory_info().rss for p in members)


def _group(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def hammer(url: str, rows: list[dict], seconds: float, threads: int = 32) -> dict[str, int]:
    """`threads` keep-alive clients posting 1-3 of `rows` each until time is up; counts answers by outcome."""
    netloc, stop = urllib.parse.urlsplit(url).netloc, time.monotonic() + seconds
    counts = {"ok": 0, "rows": 0, "errors": 0}
    lock = threading.Lock()

    def client(index: int) -> None:
        connection = http.client.HTTPConnection(netloc, timeout=30)
        sent = 0
        while time.monotonic() < stop:
            count = 1 + (index + sent) % 3
            sent += 1
            try:
                body = json.dumps({"rows": rows[:count]})
                connection.request("POST", "/predict", body, {"content-type": "application/json"})
                answer = connection.getresponse()
                ok = answer.status == 200 and len(json.loads(answer.read())["predictions"]) == count
            except (OSError, http.client.HTTPException):
                connection.close()
                connection = http.client.HTTPConnection(netloc, timeout=30)
                ok = False
            with lock:
                counts["ok" if ok else "errors"] += 1
                counts["rows"] += count if ok else 0

    workers = [threading.Thread(target=client, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return counts


def load(site: Served, seconds: float) -> dict[str, int]:
    """Hammer the service; every request is answered and every answered row is in the log."""
    before_rows = prediction_log.last_id(site.log)
    counts = hammer(site.url, site.rows, seconds)
    assert counts["errors"] == 0 and counts["ok"] > 0, counts
    prediction_log.wait(site.log, counts["rows"], after_id=before_rows)
    assert prediction_log.last_id(site.log) - before_rows == counts["rows"]
    return counts


def test_ten_seconds_at_concurrency_32(served_family: Served) -> None:
    load(served_family, 10)


def slope(samples: list[float]) -> float:
    """Least-squares growth per sample of a series."""
    n = len(samples)
    mean_x, mean_y = (n - 1) / 2, sum(samples) / n
    covariance = sum((i - mean_x) * (y - mean_y) for i, y in enumerate(samples))
    return covariance / sum((i - mean_x) ** 2 for i in range(n))


def test_slope_of_a_series() -> None:
    assert slope([1.0, 2.0, 3.0, 4.0]) == pytest.approx(1.0)
    assert slope([5.0, 5.0, 5.0]) == 0.0


@pytest.mark.slow
def test_five_minutes_at_concurrency_32_do_not_leak(served_family: Served) -> None:
    """After a minute of warm-up, ten 24-second rounds: the memory trend over them stays under 5%."""
    load(served_family, 60)  # warm-up: imports, caches and allocator pools settle
    samples = []
    for _ in range(10):
        load(served_family, 24)
        samples.append(float(server_rss(served_family.url)))
    growth = slope(samples) * (len(samples) - 1)
    assert growth < 0.05 * samples[0], samples
