"""Who may ask: the service's API token, read once at start, and what a request's Authorization says.

With a token configured, the service's API routes answer only `Authorization: Bearer <token>`; the
probes, /metrics and the docs page stay open (the request guard applies it: tabpipe/serve/guard.py).
Without one the service is open, as before, and says so once at start.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from pathlib import Path

from tabpipe.core.errors import PipelineError

ENV = "TABPIPE_API_TOKEN"
FILE_ENV = "TABPIPE_API_TOKEN_FILE"  # a file holding it: a container secret, kept out of the environment
MISSING = "missing token: send Authorization: Bearer <token>"
NOT_BEARER = "missing token: Authorization must be Bearer <token>"
WRONG = "wrong token"
CHALLENGE = b"Bearer"
INVALID = b'Bearer error="invalid_token"'  # RFC 6750: a token was sent and is not the one


def configured(environ: Mapping[str, str]) -> bytes | None:
    """The token from TABPIPE_API_TOKEN, or from the file TABPIPE_API_TOKEN_FILE names; None when neither
    is set. An empty variable counts as unset, so compose's `${TABPIPE_API_TOKEN:-}` leaves the service open."""
    value, file = environ.get(ENV, ""), environ.get(FILE_ENV, "")
    if value and file:
        raise PipelineError(f"{ENV} and {FILE_ENV} are both set; set one")
    if file:
        try:
            return checked(Path(file).read_text(encoding="utf-8"), f"{FILE_ENV} {file}")
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
            raise PipelineError(f"{FILE_ENV} {file}: {reason}") from None
    return checked(value, ENV) if value else None


def checked(text: str, source: str) -> bytes:
    """The token without its trailing newline; refused when empty or holding what a header cannot carry."""
    token = text.rstrip()
    if not token:
        raise PipelineError(f"{source}: the token is empty")
    if not all("!" <= character <= "~" for character in token):
        raise PipelineError(f"{source}: the token must be printable ASCII without spaces")
    return token.encode()


def environment(token: bytes | None) -> dict[str, str]:
    """What gives a server `token` (nothing for none): the release's smoke servers get it this way."""
    return {ENV: token.decode()} if token is not None else {}


def refusal(authorization: bytes | None, token: bytes) -> tuple[str, bytes] | None:
    """Why a request's Authorization header does not carry `token`, and the WWW-Authenticate challenge to
    answer with; None when it does. The words never repeat what was sent."""
    if authorization is None:
        return MISSING, CHALLENGE
    scheme, _, sent = authorization.strip().partition(b" ")
    if scheme.lower() != b"bearer" or not sent.strip():
        return NOT_BEARER, CHALLENGE
    if not hmac.compare_digest(sent.strip(), token):  # constant time: no timing hints at the token
        return WRONG, INVALID
    return None


def open_line(paths: Iterable[str]) -> str:
    """The start line of a service without a token."""
    return f"open: no token configured ({ENV} or {FILE_ENV}); {', '.join(paths)} answer anyone who reaches them"
