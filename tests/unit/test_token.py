"""The API token (tabpipe/serve/token.py): read from the environment or a file, what a request's
Authorization says, the open service's start line. The guard applying it is in test_pages.py; the
real `bentoml serve` in tests/integration/test_service.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tabpipe.core.errors import PipelineError
from tabpipe.serve import token

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
