"""A real webhook for the notification tests: it records what it receives and answers from a script."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.support.servers import http_server

HANG = "hang"  # a scripted answer: say nothing for a second (longer than the test's timeout)


@dataclass
class Receiver:
    """A webhook that records what it receives and answers from a script (its last answer repeats)."""

    script: list[Any] = field(default_factory=lambda: [200])  # status, (status, headers, body) or HANG
    received: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    def answer(self) -> Any:
        return self.script[min(len(self.received), len(self.script)) - 1]


def handler_for(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            data = self.rfile.read(int(self.headers["Content-Length"]))
            receiver.received.append(
                {"path": self.path, "content_type": self.headers["Content-Type"], "body": json.loads(data)}
            )
            answer = receiver.answer()
            if answer == HANG:
                time.sleep(1.0)
                answer = 200
            status, headers, body = answer if isinstance(answer, tuple) else (answer, {}, "ok" if answer < 300 else "")
            text = body.replace("{path}", self.path).encode()
            try:
                self.send_response(status)
                for key, value in {"Content-Length": str(len(text)), **headers}.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(text)
            except OSError:  # the client gave up waiting
                pass

    return Handler


@contextlib.contextmanager
def webhook_receiver(path: str = "/hook") -> Iterator[Receiver]:
    """A real HTTP webhook recording every JSON body posted to it."""
    state = Receiver()
    with http_server(handler_for(state)) as base:
        state.url = f"{base}{path}"
        yield state
