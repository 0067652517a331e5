"""Hypothesis-generated requests against a real `bentoml serve`: never a 5xx, every 4xx says what is wrong.

The served models are small adult ones, one per candidate family (a regressor on california), so
payloads meet numeric, categorical and nullable fields. The default suite sends 300 payloads to
logistic regression and to the regressor; `pytest -m slow tests/integration/test_fuzz.py` sends 300
to each other family and 10,000 more to every family.
"""

from __future__ import annotations

import http.client
import json
import math
import pickle
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.servers import Served

pytestmark = pytest.mark.integration


class Client:
    """One keep-alive connection, reopened when the server closes it."""

    def __init__(self, url: str, path: str = "/predict") -> None:
        self.netloc, self.path = urllib.parse.urlsplit(url).netloc, path
        self.connection = http.client.HTTPConnection(self.netloc, timeout=30)

    def post(self, body: bytes, content_type: str) -> tuple[int, bytes]:
        for attempt in (1, 2):
            try:
                self.connection.request("POST", self.path, body, {"content-type": content_type})
                answer = self.connection.getresponse()
                return answer.status, answer.read()
            except (ConnectionError, http.client.HTTPException):
                self.connection.close()
                self.connection = http.client.HTTPConnection(self.netloc, timeout=30)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


JUNK = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def value_for(feature: dict) -> st.SearchStrategy[Any]:
    if feature["kind"] == "numeric":
        good = st.floats(feature["minimum"], feature["maximum"], allow_nan=False)
    else:
        good = st.sampled_from(feature["categories"])
    return st.one_of(good, st.none(), JUNK) if feature.get("nullable") else st.one_of(good, good, JUNK)


@st.composite
def row(draw: st.DrawFn, features: list[dict]) -> dict[str, Any]:
    values = {f["name"]: draw(value_for(f)) for f in features}
    for name in draw(st.lists(st.sampled_from([f["name"] for f in features]), max_size=2)):
        values.pop(name, None)  # missing fields
    values.update(draw(st.dictionaries(st.text(max_size=10), JUNK, max_size=1)))  # unknown fields
    return values


@st.composite
def request(draw: st.DrawFn, features: list[dict]) -> tuple[bytes, str, int | None]:
    """(body, content type, rows) of one payload: mostly near-valid JSON, some junk, some raw bytes."""
    kind = draw(st.sampled_from(["rows", "rows", "rows", "junk", "bytes", "pickle"]))
    if kind == "rows":
        rows = draw(st.lists(row(features), max_size=25))
        return json.dumps({"rows": rows}).encode(), "application/json", len(rows)
    if kind == "junk":
        return json.dumps(draw(JUNK)).encode(), draw(st.sampled_from(["application/json", "text/plain"])), None
    if kind == "pickle":
        return pickle.dumps(draw(JUNK)), "application/octet-stream", None
    return draw(st.binary(max_size=300)), draw(st.sampled_from(["application/json", "multipart/form-data"])), None


def check(client: Client, body: bytes, content_type: str, rows: int | None) -> None:
    status, raw = client.post(body, content_type)
    assert status < 500, (status, raw[:300], body[:300])
    answer = json.loads(raw)
    if status == 200 and client.path == "/explain":  # every row explained, adding up
        assert rows is not None and len(answer["explanations"]) == rows
        for each in answer["explanations"]:
            assert math.isfinite(each["output"]), each
            assert abs(each["base"] + sum(each["contributions"].values()) - each["output"]) <= 1e-6, each
        return
    if status == 200:
        assert rows is not None and len(answer["predictions"]) == rows
        for prediction in answer["predictions"]:
            if "value" in prediction:  # a regressor: a finite value inside its interval
                low, high = prediction["interval"]
                assert math.isfinite(prediction["value"]) and low <= prediction["value"] <= high, prediction
            else:
                assert math.isclose(sum(prediction["probabilities"].values()), 1.0, rel_tol=1e-9)
        return
    assert 400 <= status < 500
    if "error" in answer:
        assert answer["error"]
    else:
        assert answer["detail"] and all(problem.get("msg") for problem in answer["detail"]), answer


def fuzz(service: Served, examples: int, derandomize: bool, path: str = "/predict") -> None:
    client = Client(service.url, path)

    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=derandomize,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(request(service.features))
    def one(payload: tuple[bytes, str, int | None]) -> None:
        check(client, *payload)

    one()


def test_three_hundred_generated_requests_get_no_5xx(served_family: Served) -> None:
    fuzz(served_family, 300, derandomize=True)


def test_a_hundred_generated_explain_requests_get_no_5xx_and_every_answer_adds_up(served_family: Served) -> None:
    fuzz(served_family, 100, derandomize=True, path="/explain")


@pytest.mark.slow
def test_ten_thousand_random_requests_get_no_5xx(served_family: Served) -> None:
    fuzz(served_family, 10_000, derandomize=False)


def test_a_pickle_is_never_unpickled(served_family: Served, tmp_path: Path) -> None:
    marker = tmp_path / "unpickled"

    class Exploit:
        def __reduce__(self) -> tuple:
            return (Path.touch, (marker,))

    client = Client(served_family.url)
    for content_type in ("application/octet-stream", "application/python-pickle", "application/json"):
        status, _ = client.post(pickle.dumps(Exploit()), content_type)
        assert 400 <= status < 500
    assert not marker.exists()


def test_a_chunked_body_over_the_limit_is_refused_with_413(served_family: Served) -> None:
    netloc = urllib.parse.urlsplit(served_family.url).netloc
    connection = http.client.HTTPConnection(netloc, timeout=30)
    chunks = (b'{"rows": [' + b" " * 10_000 for _ in range(5))  # 50 kB, no Content-Length
    connection.request("POST", "/predict", chunks, {"content-type": "application/json"}, encode_chunked=True)
    answer = connection.getresponse()
    assert answer.status == 413 and b"over 20000 bytes" in answer.read()
