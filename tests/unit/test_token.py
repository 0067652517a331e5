"""The API token (tabpipe/serve/token.py): read from the environment or a file, what a request's
Authorization says, the open service's start line; and the release's smoke test asking with it,
against a real HTTP server on 127.0.0.1 and a stand-in container engine. The guard applying it is in
test_pages.py; the real `bentoml serve` in tests/integration/test_service.py."""

from __future__ import annotations

import json
import re
import stat
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, ClassVar

import pytest

from tabpipe.core.errors import PipelineError
from tabpipe.deploy import image, release
from tabpipe.serve import token
from tests.support.servers import http_server

SECRET = "s3cr3t-T0ken"


def test_the_token_comes_from_the_variable_or_the_file_without_its_newline(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text(f"{SECRET}\n")
    assert token.configured({token.ENV: SECRET}) == SECRET.encode()
    assert token.configured({token.FILE_ENV: str(secret)}) == SECRET.encode()
    assert token.configured({token.ENV: f"{SECRET} \r\n"}) == SECRET.encode()


def test_no_token_or_an_empty_variable_leaves_the_service_open() -> None:
    """compose passes `${TABPIPE_API_TOKEN:-}`: unset on the host, the variable is there and empty."""
    assert token.configured({}) is None
    assert token.configured({token.ENV: "", token.FILE_ENV: ""}) is None


@pytest.mark.parametrize(
    ("environ", "said"),
    [
        ({token.ENV: SECRET, token.FILE_ENV: "token"}, "TABPIPE_API_TOKEN and TABPIPE_API_TOKEN_FILE are both set"),
        ({token.FILE_ENV: "{folder}/empty"}, "TABPIPE_API_TOKEN_FILE {folder}/empty: the token is empty"),
        ({token.FILE_ENV: "{folder}/missing"}, "TABPIPE_API_TOKEN_FILE {folder}/missing: No such file or directory"),
        ({token.FILE_ENV: "{folder}/binary"}, "TABPIPE_API_TOKEN_FILE {folder}/binary: not UTF-8 text"),
        ({token.ENV: " \n"}, "TABPIPE_API_TOKEN: the token is empty"),
        ({token.ENV: f"{SECRET} {SECRET}"}, "TABPIPE_API_TOKEN: the token must be printable ASCII without spaces"),
        ({token.FILE_ENV: "{folder}/two-lines"}, "{folder}/two-lines: the token must be printable ASCII without"),
    ],
)
def test_a_bad_configuration_is_one_line_that_never_shows_the_token(
    tmp_path: Path, environ: dict[str, str], said: str
) -> None:
    (tmp_path / "empty").write_text("\n")
    (tmp_path / "binary").write_bytes(b"\xff\xfe" + SECRET.encode())
    (tmp_path / "two-lines").write_text(f"{SECRET}\n{SECRET}\n")
    with pytest.raises(PipelineError) as raised:
        token.configured({name: value.format(folder=tmp_path) for name, value in environ.items()})
    assert said.format(folder=tmp_path) in str(raised.value)
    assert "\n" not in str(raised.value) and SECRET not in str(raised.value)


def test_a_request_is_refused_as_missing_or_wrong_and_its_words_never_repeat_it() -> None:
    expected = SECRET.encode()
    assert token.refusal(None, expected) == (token.MISSING, b"Bearer")
    for sent in (b"Basic dXNlcjpwYXNz", b"Bearer", b"Bearer   ", b"Token " + expected, expected):
        assert token.refusal(sent, expected) == (token.NOT_BEARER, b"Bearer")
    for sent in (b"Bearer x", b"Bearer " + expected[:-1], b"Bearer " + expected + b"x", b"Bearer " + expected.upper()):
        assert token.refusal(sent, expected) == (token.WRONG, b'Bearer error="invalid_token"')
    for sent in (b"Bearer " + expected, b"bearer " + expected, b"BEARER  " + expected + b" "):
        assert token.refusal(sent, expected) is None


def test_the_open_service_says_so_and_names_what_anyone_may_call() -> None:
    line = token.open_line(("/predict", "/model"))
    assert line.startswith("open: no token configured") and "/predict, /model" in line and "\n" not in line


class Recorder(BaseHTTPRequestHandler):
    """A stand-in /predict: answers one model's empty predictions to `Bearer SECRET` only, and keeps
    every Authorization header it was sent."""

    seen: ClassVar[list[str | None]] = []

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        sent = self.headers["Authorization"]
        Recorder.seen.append(sent)
        status, body = (200, {"model": {}, "predictions": []}) if sent == f"Bearer {SECRET}" else (401, {"error": "x"})
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def test_the_release_smoke_test_asks_with_the_token_when_there_is_one() -> None:
    Recorder.seen = []
    rows = [{"x": 1.0}]
    with http_server(Recorder) as url:
        assert release.ask(url, rows, time.monotonic() + 60, SECRET.encode()) == {"model": {}, "predictions": []}
        with pytest.raises(PipelineError, match=re.escape('/predict answered HTTP 401: {"error": "x"}')):
            release.ask(url, rows, time.monotonic() + 60, None)
    assert Recorder.seen == [f"Bearer {SECRET}", None]


def test_the_release_servers_get_the_token_as_the_variable_however_it_was_given(tmp_path: Path) -> None:
    """A token file's path may be relative to the project; the smoke server runs in another folder."""
    given = {"PATH": "/bin", token.FILE_ENV: "secrets/token"}
    assert release.given_token(given, SECRET.encode()) == {"PATH": "/bin", token.ENV: SECRET}
    assert release.given_token({"PATH": "/bin", token.ENV: SECRET}, None) == {"PATH": "/bin"}
    engine = tmp_path / "engine"  # a stand-in for podman: keeps its arguments and the variable it was given
    engine.write_text(
        f'#!/bin/sh\nprintf "%s\\n" "$@" > {tmp_path}/args\nprintf "%s" "${token.ENV}" > {tmp_path}/env\n'
    )
    engine.chmod(engine.stat().st_mode | stat.S_IXUSR)
    name, url = image.start(str(engine), "tabpipe:test", 3123, secrets=token.environment(SECRET.encode()))
    args = (tmp_path / "args").read_text().splitlines()
    assert (name, url) == ("tabpipe-3123", "http://127.0.0.1:3123")
    assert args[args.index(token.ENV) - 1] == "--env"  # by name only
    assert (tmp_path / "env").read_text() == SECRET and not [arg for arg in args if SECRET in arg]
