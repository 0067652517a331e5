"""Slack-compatible webhook messages, and one best-effort POST that never fails the pipeline.

The URL comes from the environment (TABPIPE_WEBHOOK_URL), never from params.yaml: a Slack webhook URL
is a secret, so it is never written to a file or a log line either. With no URL, nothing is sent.
The builders are pure; `send` does the network, retries what may pass, and reports in one line.
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tabpipe.core.settings import Notify

ENV = "TABPIPE_WEBHOOK_URL"
MAX_WAIT = 5.0  # seconds: the longest pause between tries, whatever Retry-After asks
RETRIED = {408, 429}  # answers that may pass on a later try, besides every 5xx
BLOCK_CHARS = 3000  # Slack rejects a section block with more text than this
MAX_BLOCKS = 50  # ... and a message with more blocks than this
_SLACK_ERROR = re.compile(r"[a-z_]{1,64}")  # Slack's error answers ("invalid_payload", "no_service")

log = logging.getLogger("notify")


# --- messages -----------------------------------------------------------------------------------


def gate_failed(model_name: str, dataset: str, failures: list[str], flags: dict[str, bool]) -> dict[str, Any]:
    """The gate refused a model: which rules failed (from gate.json's flags) and each failure's line."""
    failing = [rule for rule, passed in flags.items() if rule != "passed" and not passed]
    rules = ", ".join(failing) if failing else "see below"
    title = f"Gate failed for {model_name} on dataset {dataset}: {_count(len(failing), 'rule')} failed ({rules})"
    return message(title, failures)


def new_champion(
    name: str,
    version: str,
    metrics: dict[str, float],
    previous: dict[str, float] | None,
    previous_version: str | None,
) -> dict[str, Any]:
    """A new version serves: one line per metric with its value, the previous champion's and the difference."""
    if previous is None:
        title = f"New champion: {name} version {version}, the first champion of this lineage"
        return message(title, [f"{metric}: {_number(value)}" for metric, value in metrics.items()])
    replaced = f"version {previous_version}" if previous_version else "the previous champion"
    title = f"New champion: {name} version {version}, replacing {replaced}"
    return message(title, [_delta(metric, value, previous.get(metric)) for metric, value in metrics.items()])


def retrain_advised(model: str, rows: int, reasons: list[str], drift_share: float) -> dict[str, Any]:
    """The monitor advises retraining: the window it judged and every reason it gave."""
    title = f"Retrain advised for {model}: {_count(rows, 'row')} of traffic, drift share {drift_share:.1%}"
    return message(title, reasons)


def message(title: str, lines: Iterable[str]) -> dict[str, Any]:
    """`text` carries everything (it is what notifications and plain receivers show); `blocks` lay it out.

    Every line is flattened to one line and escaped as Slack's mrkdwn asks (&, <, >), so a reason can
    neither break the list nor turn into a link or a mention. Blocks stay within Slack's limits.
    """
    head = _escape(title)
    bullets = [f"• {_escape(line)}" for line in lines]
    blocks = [_section(f"*{head}*"), *(_section(chunk) for chunk in _chunks(bullets))]
    if len(blocks) > MAX_BLOCKS:
        blocks = [*blocks[: MAX_BLOCKS - 1], _section("… (the rest is in the message text)")]
    return {"text": "\n".join([head, *bullets]), "blocks": blocks}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:BLOCK_CHARS]}}


def _chunks(lines: list[str]) -> Iterable[str]:
    """Lines joined into texts of at most BLOCK_CHARS (a longer line is cut in its block, kept in `text`)."""
    chunk = ""
    for line in lines:
        line = line if len(line) <= BLOCK_CHARS else line[: BLOCK_CHARS - 1] + "…"
        if chunk and len(chunk) + 1 + len(line) > BLOCK_CHARS:
            yield chunk
            chunk = ""
        chunk = f"{chunk}\n{line}" if chunk else line
    if chunk:
        yield chunk


def _escape(text: str) -> str:
    one_line = " ".join(str(text).splitlines())
    return one_line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _delta(metric: str, value: Any, before: Any) -> str:
    if before is None:
        return f"{metric}: {_number(value)} (no previous value)"
    if _numeric(value) and _numeric(before):
        return f"{metric}: {_number(value)} (was {_number(before)}, {float(value) - float(before):+.4f})"
    return f"{metric}: {_number(value)} (was {_number(before)})"


def _numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(value: Any) -> str:
    return f"{float(value):.4f}" if _numeric(value) else str(value)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


# --- sending ------------------------------------------------------------------------------------


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A webhook that redirects has moved: following it would turn the POST into a GET and lose the message."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def send(
    payload: dict[str, Any],
    environ: Mapping[str, str],
    *,
    attempts: int = 3,
    backoff: float = 0.5,
    timeout: float = 5.0,
    sleep: Callable[[float], Any] = time.sleep,
) -> str:
    """POST the payload to the webhook in `environ[ENV]`: "sent", "not configured" or "failed"; never raises.

    Connection errors, timeouts, 408, 429 and 5xx are tried again, up to `attempts` tries in all, waiting
    `backoff` seconds, then twice that, ... (or a numeric Retry-After), at most MAX_WAIT each. Other
    answers are final. A failure is one warning line, without the URL: a notification is worth less
    than the run it reports on.
    """
    url = (environ.get(ENV) or "").strip()
    if not url:
        return "not configured"
    if not _is_http(url):
        log.warning("%s is not an http(s) URL; nothing sent", ENV)
        return "failed"
    try:
        data = json.dumps(payload, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as error:
        log.warning("the message is not JSON (%s); nothing sent", error)
        return "failed"
    tries = max(1, attempts)
    for attempt in range(1, tries + 1):
        problem, again, wait = _post(url, data, timeout)
        if problem is None:
            return "sent"
        if not again or attempt == tries:
            break
        sleep(min(MAX_WAIT, backoff * 2 ** (attempt - 1) if wait is None else wait))
    log.warning("webhook failed after %s: %s", _count(attempt, "attempt"), _redact(problem, url))
    return "failed"


def _post(url: str, data: bytes, timeout: float) -> tuple[str | None, bool, float | None]:
    """One try: (None when delivered, else what went wrong; whether to try again; the wait the server asked)."""
    request = urllib.request.Request(
        url, data, {"Content-Type": "application/json", "User-Agent": "tabpipe-notify"}, method="POST"
    )
    try:
        with _opener.open(request, timeout=timeout) as response:
            response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        again = error.code in RETRIED or error.code >= 500
        return f"HTTP {error.code} {error.reason}{_explanation(error)}", again, _retry_after(error.headers)
    except urllib.error.URLError as error:
        return f"unreachable ({error.reason})", True, None
    except (OSError, http.client.HTTPException) as error:  # timeouts, resets, a garbled answer
        return f"unreachable ({error or type(error).__name__})", True, None
    except ValueError as error:  # a URL http.client will not send (a non-ASCII path, say): no try will pass
        return f"unusable URL ({type(error).__name__})", False, None
    if 200 <= status < 300:
        return None, False, None
    return f"HTTP {status}", False, None


def _is_http(url: str) -> bool:
    try:
        parts = urllib.parse.urlsplit(url)
        _ = parts.port  # a port that is not a number raises here
        return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
    except ValueError:
        return False


def _retry_after(headers: Any) -> float | None:
    """A numeric Retry-After in seconds (never negative), or None for a date or nothing."""
    try:
        return max(0.0, float((headers or {}).get("Retry-After", "")))
    except (TypeError, ValueError):
        return None


def _explanation(error: urllib.error.HTTPError) -> str:
    """Slack's one-word reason ("invalid_payload", "no_service"); any other body may echo the secret path."""
    try:
        body = error.read(100).decode("utf-8").strip()
    except (OSError, UnicodeDecodeError, AttributeError):
        return ""
    return f": {body}" if _SLACK_ERROR.fullmatch(body) else ""


def _redact(text: str, url: str) -> str:
    """The line without the URL, its path or its query (where webhooks keep their secret), should it quote them."""
    parts = urllib.parse.urlsplit(url)
    text = text.replace(url, "<webhook>")
    for secret in (parts.path, parts.query):
        if len(secret) > 1:
            text = text.replace(secret, "<redacted>")
    return text


def post(payload: dict[str, Any], settings: Notify, environ: Mapping[str, str]) -> str:
    """`send` with params.yaml's `notify` section: what stages and the monitor call."""
    return send(payload, environ, attempts=settings.attempts, backoff=settings.backoff, timeout=settings.timeout)
