"""The pages operators open: GET /health, and the docs page without a third party (answered by the
service's one ASGI layer, tabpipe/serve/guard.py).

`/health` answers the model's name and version and whether the service is ready, 200 or 503. It asks
BentoML's own /readyz inside the worker, so there is one notion of ready; /livez, /readyz and
/healthz stay BentoML's.

BentoML's docs page (Swagger UI at `/`) embeds Google Tag Manager, and the OpenAPI description it
renders (docs.json) shows badges from shields.io, readthedocs.org and badgen.net, so a browser
opening a self-hosted service's docs calls out. This serves the same page without the tag manager
and docs.json with a description of its own; the rest (the Swagger bundle, its CSS) comes from the
service itself.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

Scope = dict[str, Any]
TAG_MANAGER = re.compile(r"<!-- Google Tag Manager.*?<!-- End Google Tag Manager[^>]*-->", re.DOTALL)


def docs_page() -> bytes:
    """BentoML's Swagger UI page with its Google Tag Manager blocks taken out."""
    import _bentoml_impl.server

    page = (Path(_bentoml_impl.server.__file__).parent / "main-openapi.html").read_text()
    return TAG_MANAGER.sub("", page).encode()


async def respond(send: Any, status: int, body: bytes, media: str) -> None:
    headers = [(b"content-type", media.encode()), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def description(identity: dict[str, str], guarded: bool) -> str:
    """The docs page's description: what serves, where the operator's endpoints are, who may ask."""
    who = " The API needs `Authorization: Bearer <token>` (Authorize, above)." if guarded else ""
    return (
        f"tabpipe serving model `{identity['name']}` version `{identity['version']}`. "
        'POST /predict with `{"rows": [...]}`, POST /explain with the same body for exact per-column '
        "contributions; GET /health for the model and its readiness, /metrics for Prometheus; POST /model "
        f"for the schema and the gated metrics.{who}"
    )


def secured(spec: dict[str, Any], routes: tuple[str, ...]) -> dict[str, Any]:
    """`spec` declaring a bearer scheme for `routes` (the ones the token guards), so the docs page's
    Authorize button sends the token with "Try it out"."""
    spec.setdefault("components", {}).setdefault("securitySchemes", {})["bearer"] = {"type": "http", "scheme": "bearer"}
    for route in routes:
        for operation in spec.get("paths", {}).get(route, {}).values():
            if isinstance(operation, dict):
                operation["security"] = [{"bearer": []}]
    return spec


async def captured(app: Any, scope: Scope, receive: Any) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Run `app` on a request and keep its whole answer: status, headers, body."""
    start: dict[str, Any] = {}
    chunks: list[bytes] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return start.get("status", 500), list(start.get("headers", [])), b"".join(chunks)


class OperatorPages:
    """`guarded`: the routes a configured token guards (none: the service is open)."""

    def __init__(self, identity: dict[str, str], guarded: tuple[str, ...] = ()) -> None:
        self.identity, self.guarded = identity, guarded
        self.page = docs_page()

    async def answer(self, app: Any, scope: Scope, receive: Any, send: Any) -> bool:
        """Answer the request if it is a page's (asking `app`, BentoML's, what it needs); False if not."""
        if scope.get("method") != "GET":
            return False
        if scope["path"] == "/health":
            ready = await self._ready(app, scope)
            body = json.dumps({**self.identity, "ready": ready}).encode()
            await respond(send, 200 if ready else 503, body, "application/json")
        elif scope["path"] == "/":
            await respond(send, 200, self.page, "text/html; charset=utf-8")
        elif scope["path"] == "/docs.json":
            await self._spec(app, scope, receive, send)
        else:
            return False
        return True

    async def _spec(self, app: Any, scope: Scope, receive: Any, send: Any) -> None:
        """BentoML's OpenAPI document, its description (badges from three third parties) replaced, and
        the token's scheme declared when one is configured."""
        status, _, body = await captured(app, scope, receive)
        if status == 200:
            spec = json.loads(body)
            spec.setdefault("info", {})["description"] = description(self.identity, bool(self.guarded))
            body = json.dumps(secured(spec, self.guarded) if self.guarded else spec).encode()
        await respond(send, status, body, "application/json")

    async def _ready(self, app: Any, scope: Scope) -> bool:
        """What BentoML's /readyz answers for this worker."""
        probe = {**scope, "path": "/readyz", "raw_path": b"/readyz", "method": "GET", "query_string": b""}
        answered: list[int] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                answered.append(message["status"])

        await app(probe, receive, send)
        return answered == [200]
