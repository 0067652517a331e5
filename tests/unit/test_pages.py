"""The service's ASGI layers in-process, in front of a stand-in for BentoML's app: /health, the docs
page and docs.json (tabpipe/serve/pages.py), and the request guard's refusals, the API token's
included (tabpipe/serve/guard.py). The real `bentoml serve` behind them is tested in
tests/integration/test_service.py."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tabpipe.serve import token
from tabpipe.serve.guard import RequestGuard

IDENTITY = {"name": "tabpipe-iris", "version": "abc"}
SPEC = {
    "openapi": "3.0.2",
    "info": {"title": "tabpipe", "description": "![badge](https://img.shields.io/x)"},
    "paths": {"/predict": {"post": {"operationId": "predict"}}, "/health": {"get": {}}},
}


class Downstream:
    """What BentoML's app would answer: /readyz with `ready`, docs.json with SPEC, anything else 200."""

    def __init__(self, ready: int = 200) -> None:
        self.ready = ready
        self.seen: list[tuple[str, bytes]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = b""
        if scope["path"] not in ("/readyz", "/docs.json"):
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
        self.seen.append((scope["path"], body))
        status, payload = {"/readyz": (self.ready, b""), "/docs.json": (200, json.dumps(SPEC).encode())}.get(
            scope["path"], (200, b"{}")
        )
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": payload})


class Counter:
    """Counts by status, as the service's Prometheus counter does."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.status = ""

    def labels(self, status: str) -> Counter:
        self.status = status
        return self

    def inc(self) -> None:
        self.counts[self.status] = self.counts.get(self.status, 0) + 1


def exchange(
    app: Any, path: str, method: str = "GET", body: list[bytes] | None = None, **headers: str
) -> tuple[dict[str, Any], bytes]:
    """Run one request through `app`; its response's start (status, headers) and body."""
    chunks = list(body or [b""])
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        chunk = chunks.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(chunks)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()],
    }
    asyncio.run(app(scope, receive, send))
    return sent[0], b"".join(m.get("body", b"") for m in sent[1:])


def front(downstream: Downstream, token: bytes | None = None) -> RequestGuard:
    """The service's one layer in front of `downstream`, guarding /predict and /explain."""
    paths = ("/predict", "/explain")
    return RequestGuard(downstream, paths=paths, max_body_bytes=100, rejected=Counter(), identity=IDENTITY, token=token)


def call(app: Any, path: str, method: str = "GET", body: list[bytes] | None = None, **headers: str) -> tuple:
    """Run one request through `app`; (status, body)."""
    start, answer = exchange(app, path, method, body, **headers)
    return start["status"], answer


def test_with_a_token_the_spec_declares_the_bearer_scheme_on_the_guarded_routes_only() -> None:
    _, body = call(front(Downstream(), token=b"s3cr3t"), "/docs.json")
    spec = json.loads(body)
    assert spec["components"]["securitySchemes"] == {"bearer": {"type": "http", "scheme": "bearer"}}
    assert spec["paths"]["/predict"]["post"]["security"] == [{"bearer": []}]
    assert "security" not in spec["paths"]["/health"]["get"] and "Bearer <token>" in spec["info"]["description"]


@pytest.mark.parametrize(("ready", "status"), [(200, 200), (503, 503)])
def test_health_answers_the_model_and_what_readyz_says(ready: int, status: int) -> None:
    answered, body = call(front(Downstream(ready)), "/health")
    assert answered == status and json.loads(body) == {**IDENTITY, "ready": ready == 200}


def test_the_docs_page_and_spec_name_no_third_party() -> None:
    pages = front(Downstream())
    status, page = call(pages, "/")
    assert status == 200 and b"swagger-ui" in page and b"googletagmanager" not in page
    status, spec = call(pages, "/docs.json")
    described = json.loads(spec)["info"]["description"]
    assert status == 200 and "shields.io" not in described and "`tabpipe-iris` version `abc`" in described
    assert "components" not in json.loads(spec) and "Bearer" not in described  # an open service
    downstream = Downstream()
    assert call(front(downstream), "/other", "POST", [b"{}"]) == (200, b"{}")
    assert call(front(downstream), "/health", "POST", [b"{}"]) == (200, b"{}")  # pages are GETs
    assert downstream.seen == [("/other", b"{}"), ("/health", b"{}")]  # everything else passes through untouched


def test_the_guard_refuses_and_counts_what_is_not_json_or_too_large() -> None:
    rejected = Counter()
    downstream = Downstream()
    guard = RequestGuard(downstream, paths=("/predict",), max_body_bytes=10, rejected=rejected, identity=IDENTITY)
    assert call(guard, "/predict", "POST", [b"x"], content_type="text/plain")[0] == 415
    status, body = call(guard, "/predict", "POST", [b"{}" * 20], content_length="40")
    assert status == 413 and "over 10 bytes" in json.loads(body)["error"]
    assert call(guard, "/predict", "POST", [b"[1,", b"2,3,4,5,", b"6]"])[0] == 413  # chunked, no length
    assert call(guard, "/predict", "POST", [b"[1,", b"2]"]) == (200, b"{}")  # replayed whole
    assert call(guard, "/predict", "POST", [b"[3,", b"4]"], content_length="5") == (200, b"{}")  # passed on
    assert call(guard, "/predict", "POST", [b"{}"], content_type="application/json; charset=utf-8")[0] == 200
    assert downstream.seen == [("/predict", b"[1,2]"), ("/predict", b"[3,4]"), ("/predict", b"{}")]
    assert rejected.counts == {"415": 1, "413": 2}


def test_with_a_token_the_guard_answers_only_its_bearer_and_reads_no_body_first(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """401 naming the problem, with a challenge, before the content type or the body is looked at;
    the counter and one log line without the token; the right token passes, other paths stay open."""
    rejected, downstream = Counter(), Downstream()
    paths = ("/predict", "/model")
    guard = RequestGuard(
        downstream, paths=paths, max_body_bytes=10, rejected=rejected, identity=IDENTITY, token=b"s3cr3t"
    )
    large = [b"x" * 100]  # over max_body_bytes and not JSON: refused for the token, so it was never read
    sent = [
        ({}, token.MISSING, b"Bearer"),
        ({"authorization": "Basic czNjcjN0"}, token.NOT_BEARER, b"Bearer"),
        ({"authorization": "Bearer "}, token.NOT_BEARER, b"Bearer"),
        ({"authorization": "Bearer s3cr3"}, token.WRONG, b'Bearer error="invalid_token"'),
        ({"authorization": "Bearer s3cr3t-and-more"}, token.WRONG, b'Bearer error="invalid_token"'),
    ]
    with caplog.at_level("WARNING", logger="tabpipe.service"):
        for headers, problem, challenge in sent:
            start, body = exchange(guard, "/predict", "POST", large, content_type="text/plain", **headers)
            assert start["status"] == 401 and json.loads(body) == {"error": problem}
            assert dict(start["headers"])[b"www-authenticate"] == challenge and b"s3cr3" not in body
    assert downstream.seen == [] and rejected.counts == {"401": len(sent)}
    lines = [record.getMessage() for record in caplog.records]
    assert lines[-1] == f"client error 401 on POST /predict (request -): {token.WRONG}"
    assert len(lines) == len(sent) and not [line for line in lines if "s3cr3" in line]
    for case in ("Bearer s3cr3t", "bearer  s3cr3t "):  # the scheme is case-insensitive (RFC 7235)
        assert call(guard, "/model", "POST", [b"{}"], authorization=case) == (200, b"{}")
    assert call(guard, "/predict", "POST", [b"x"], authorization="Bearer s3cr3t", content_type="text/plain")[0] == 415
    for path in ("/health", "/metrics", "/readyz", "/livez", "/", "/docs.json"):
        assert call(guard, path)[0] == 200  # open: not the guard's to refuse
    assert rejected.counts == {"401": len(sent), "415": 1}


def test_without_a_token_the_guard_lets_every_request_through_as_before() -> None:
    downstream = Downstream()
    guard = RequestGuard(downstream, paths=("/predict",), max_body_bytes=10, rejected=Counter(), identity=IDENTITY)
    assert call(guard, "/predict", "POST", [b"{}"]) == (200, b"{}")
    assert call(guard, "/predict", "POST", [b"{}"], authorization="Bearer anything") == (200, b"{}")
