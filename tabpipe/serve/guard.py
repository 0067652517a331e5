"""The service's one ASGI layer. On the API routes: refuse a request without the API token when one is
configured (401), non-JSON bodies (415) and oversized ones (413, chunked or not), and count every
rejected request; the token is compared before any of the body is read. Elsewhere: answer the
operators' pages (tabpipe/serve/pages.py), and pass everything else to BentoML untouched.

One layer, not one per concern: each layer is another call on every request's way in and out.

Validation failures happen inside BentoML before our API code runs, so counting 4xx answers here
is the one place that sees all of them.
"""

from __future__ import annotations

import json
from typing import Any

from tabpipe.serve import service_log
from tabpipe.serve.pages import OperatorPages
from tabpipe.serve.token import refusal

Scope = dict[str, Any]


class RequestGuard:
    """Guards `paths`; with `token` set, they answer only `Authorization: Bearer <token>`. The pages
    show `identity`, the served model's name and version."""

    def __init__(
        self,
        app: Any,
        *,
        paths: tuple[str, ...],
        max_body_bytes: int,
        rejected: Any,
        identity: dict[str, str],
        token: bytes | None = None,
    ) -> None:
        self.app = app
        self.paths = paths
        self.max_body_bytes = max_body_bytes
        self.rejected = rejected
        self.token = token
        self.pages = OperatorPages(identity, guarded=paths if token else ())

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] not in self.paths:
            if not await self.pages.answer(self.app, scope, receive, send):
                await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        if self.token is not None and (refused := refusal(headers.get(b"authorization"), self.token)):
            problem, challenge = refused
            await self._refuse(scope, send, 401, problem, ((b"www-authenticate", challenge),))
            return
        media = headers.get(b"content-type", b"application/json").split(b";")[0].strip().lower()
        if media != b"application/json":  # the service parses JSON and nothing else (no forms, no pickles)
            wrong = media.decode("latin-1")
            await self._refuse(scope, send, 415, f"content-type must be application/json, not {wrong}")
            return
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
            await self._refuse(scope, send, 413, f"request body over {self.max_body_bytes} bytes")
            return

        async def counting_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and 400 <= message["status"] < 500:
                self.rejected.labels(status=str(message["status"])).inc()
            await send(message)

        if length is not None:  # the server delivers no more than the length it checked: pass the body on
            await self.app(scope, receive, counting_send)
            return
        # A chunked body has no length to check: read it here, counting, and refuse at the limit,
        # so no request makes the service hold more than max_body_bytes of it.
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await self._refuse(scope, send, 413, f"request body over {self.max_body_bytes} bytes")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        pending = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replay() -> dict[str, Any]:
            return pending.pop() if pending else await receive()

        await self.app(scope, replay, counting_send)

    async def _refuse(
        self, scope: Scope, send: Any, status: int, message: str, added: tuple[tuple[bytes, bytes], ...] = ()
    ) -> None:
        self.rejected.labels(status=str(status)).inc()
        service_log.refused(status, scope["path"], scope.get("method", "-"), message)
        body = json.dumps({"error": message}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        headers += added
        if (request_id := service_log.request_id()) is not None:  # as BentoML's own answers carry it
            headers.append((b"x-bentoml-request-id", request_id.encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
