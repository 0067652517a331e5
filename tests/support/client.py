"""The service as a client meets it: requests to a running one, and the row model it validates them with."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from tabpipe.data.schema import Schema


def post(url: str, body: bytes | dict, path: str = "/predict") -> tuple[int, dict]:
    """POST JSON to a running service; (status, parsed answer), 4xx and 5xx included."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(f"{url}{path}", data=data, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def get(url: str, path: str) -> tuple[int, str]:
    """GET from a running service; (status, body text)."""
    with urllib.request.urlopen(f"{url}{path}", timeout=30) as answer:
        return answer.status, answer.read().decode()


def row_validator(schema: Schema, policy: str) -> Any:
    """The service's row model as BentoML applies it (a TypedDict, so through a TypeAdapter)."""
    from pydantic import TypeAdapter

    from tabpipe.serve import request

    return TypeAdapter(request.row_model(schema, policy))  # type: ignore[arg-type]
