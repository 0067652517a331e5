"""Webhook notifications: the messages' content, and delivery to a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tabpipe.notify import webhook
from tests.support.webhook import HANG, Receiver, webhook_receiver

SECRET_PATH = "/services/T000/B000/s3cr3tT0ken"
FLAGS = {"min_roc_auc": False, "compiled_labels": True, "champion_not_worse": False, "passed": False}
FAILURES = [
    "gate: min_roc_auc: roc_auc 0.9012 is below the minimum 0.9500",
    "gate: champion_not_worse: f1_macro 0.9100 is worse than the champion's 0.9500 by more than the tolerance 0.01",
]


def as_slack(line: str) -> str:
    """How a line must appear in a message: on one line, with mrkdwn's three special characters escaped."""
    return " ".join(line.splitlines()).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def block_texts(payload: dict[str, Any]) -> list[str]:
    return [block["text"]["text"] for block in payload["blocks"]]


# --- messages -----------------------------------------------------------------------------------


def test_a_failed_gate_names_each_failing_rule_and_says_why() -> None:
    payload = webhook.gate_failed("tabpipe-iris", "iris", FAILURES, FLAGS)
    first = payload["text"].splitlines()[0]
    assert "tabpipe-iris" in first and "iris" in first
    assert "2 rules failed (min_roc_auc, champion_not_worse)" in first
    assert "compiled_labels" not in payload["text"] and "passed" not in first
    for line in FAILURES:
        assert f"• {line}" in payload["text"]
        assert line in "\n".join(block_texts(payload))
    assert all(block["type"] == "section" and block["text"]["type"] == "mrkdwn" for block in payload["blocks"])


def test_a_new_champion_shows_each_metric_against_the_previous_one() -> None:
    metrics = {"roc_auc": 0.99, "f1_macro": 0.95, "log_loss": 0.1}
    payload = webhook.new_champion("tabpipe-iris", "3", metrics, {"roc_auc": 0.98, "f1_macro": 0.96}, "2")
    lines = payload["text"].splitlines()
    assert lines[0] == "New champion: tabpipe-iris version 3, replacing version 2"
    assert lines[1:] == [
        "• roc_auc: 0.9900 (was 0.9800, +0.0100)",
        "• f1_macro: 0.9500 (was 0.9600, -0.0100)",
        "• log_loss: 0.1000 (no previous value)",
    ]
    assert "*New champion: tabpipe-iris version 3" in block_texts(payload)[0]


def test_the_first_champion_says_so_and_compares_nothing() -> None:
    payload = webhook.new_champion("tabpipe-iris", "1", {"roc_auc": 0.99}, None, None)
    assert payload["text"].splitlines() == [
        "New champion: tabpipe-iris version 1, the first champion of this lineage",
        "• roc_auc: 0.9900",
    ]


def test_retrain_advice_gives_the_window_and_every_reason() -> None:
    reasons = ["drift: 3 of 4 features drifted (75%), above 50%", "f1_macro: 0.8000 on labelled traffic"]
    payload = webhook.retrain_advised("tabpipe-iris:3", 1200, reasons, 0.75)
    assert payload["text"].splitlines() == [
        "Retrain advised for tabpipe-iris:3: 1200 rows of traffic, drift share 75.0%",
        *(f"• {reason}" for reason in reasons),
    ]


def test_text_from_the_data_cannot_mention_link_or_break_the_list() -> None:
    reason = "column <!channel> & <http://evil.example|click>\nsecond line"
    payload = webhook.retrain_advised("m", 1, [reason], 0.0)
    assert "<" not in payload["text"] and "<" not in json.dumps(payload["blocks"])
    assert payload["text"].splitlines()[1] == (
        "• column &lt;!channel&gt; &amp; &lt;http://evil.example|click&gt; second line"
    )


def test_a_long_message_is_split_into_blocks_slack_accepts() -> None:
    failures = [f"gate: rule_{i}: " + "x" * 500 for i in range(100)] + ["y" * 5000]
    payload = webhook.gate_failed("m", "d", failures, {"rule_0": False})
    texts = block_texts(payload)
    assert all(0 < len(text) <= webhook.BLOCK_CHARS for text in texts)
    shown = "\n".join(texts[1:]).splitlines()
    assert shown[:-1] == [f"• {line}" for line in failures[:-1]]  # each whole, in order, none lost
    assert shown[-1] == "• " + "y" * (webhook.BLOCK_CHARS - 3) + "…"
    assert "• " + "y" * 5000 in payload["text"]


def test_a_huge_message_keeps_to_slacks_block_count() -> None:
    failures = [f"gate: rule_{i}: " + "x" * 500 for i in range(400)]
    payload = webhook.gate_failed("m", "d", failures, {f"rule_{i}": False for i in range(400)})
    texts = block_texts(payload)
    assert len(texts) == webhook.MAX_BLOCKS and texts[-1] == "… (the rest is in the message text)"
    assert all(len(text) <= webhook.BLOCK_CHARS for text in texts)
    assert all(f"• {line}" in payload["text"] for line in failures)


lines = st.lists(st.text(max_size=80), max_size=8)


@given(
    lines,
    st.dictionaries(st.from_regex(r"[a-z][a-z_]{0,15}", fullmatch=True), st.booleans(), max_size=6),
    lines,
    st.integers(0, 10**9),
    st.floats(0, 1),
)
def test_every_failure_and_reason_reaches_the_text_and_the_payload_is_json(
    failures: list[str], flags: dict[str, bool], reasons: list[str], rows: int, share: float
) -> None:
    for payload, items in (
        (webhook.gate_failed("tabpipe-iris", "iris", failures, flags), failures),
        (webhook.retrain_advised("tabpipe-iris:1", rows, reasons, share), reasons),
    ):
        assert json.loads(json.dumps(payload, allow_nan=False)) == payload
        body = payload["text"].splitlines()
        assert body[1:] == [f"• {as_slack(item)}" for item in items]
        assert len(body) == 1 + len(items)
    first = webhook.gate_failed("m", "d", failures, flags)["text"].splitlines()[0]
    assert all(name in first for name, ok in flags.items() if not ok and name != "passed")


# --- delivery -----------------------------------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with webhook_receiver(SECRET_PATH) as state:
        yield state


@pytest.fixture
def warned(caplog: pytest.LogCaptureFixture) -> Callable[[], list[str]]:
    """The notify logger's warning lines so far."""
    caplog.set_level(logging.WARNING, logger="notify")
    return lambda: [r.getMessage() for r in caplog.records if r.name == "notify" and r.levelno >= logging.WARNING]


PAYLOAD = webhook.retrain_advised("tabpipe-iris:3", 10, ["drift: everything moved"], 1.0)


def send(url: str | None, waits: list[float] | None = None, **options: Any) -> str:
    environ = {} if url is None else {webhook.ENV: url}
    return webhook.send(PAYLOAD, environ, sleep=(waits if waits is not None else []).append, **options)


def assert_one_secret_free_line(warned: Callable[[], list[str]], receiver: Receiver, expected: str) -> None:
    assert warned() == [expected]
    assert "s3cr3t" not in expected and receiver.url not in expected and "\n" not in expected


def test_no_url_sends_nothing(receiver: Receiver, warned: Callable[[], list[str]]) -> None:
    assert send(None) == "not configured"
    assert send("") == "not configured"
    assert send("   ") == "not configured"
    assert receiver.received == [] and warned() == []


def test_delivered_first_time_as_json(receiver: Receiver, warned: Callable[[], list[str]]) -> None:
    waits: list[float] = []
    assert send(receiver.url, waits) == "sent"
    assert receiver.received == [{"path": SECRET_PATH, "content_type": "application/json", "body": PAYLOAD}]
    assert waits == [] and warned() == []


def test_a_struggling_webhook_is_tried_again_with_growing_pauses(
    receiver: Receiver, warned: Callable[[], list[str]]
) -> None:
    receiver.script = [503, 503, 200]
    waits: list[float] = []
    assert send(receiver.url, waits, attempts=3, backoff=0.5) == "sent"
    assert len(receiver.received) == 3 and all(r["body"] == PAYLOAD for r in receiver.received)
    assert waits == [0.5, 1.0] and warned() == []


def test_a_webhook_always_failing_is_one_warning_after_exactly_attempts_tries(
    receiver: Receiver, warned: Callable[[], list[str]]
) -> None:
    receiver.script = [500]
    waits: list[float] = []
    assert send(receiver.url, waits, attempts=4, backoff=2.0) == "failed"
    assert len(receiver.received) == 4
    assert waits == [2.0, 4.0, webhook.MAX_WAIT]
    assert_one_secret_free_line(warned, receiver, "webhook failed after 4 attempts: HTTP 500 Internal Server Error")


def test_a_rejected_message_is_not_sent_again(receiver: Receiver, warned: Callable[[], list[str]]) -> None:
    receiver.script = [(400, {}, "invalid_payload")]
    waits: list[float] = []
    assert send(receiver.url, waits, attempts=3) == "failed"
    assert len(receiver.received) == 1 and waits == []
    expected = "webhook failed after 1 attempt: HTTP 400 Bad Request: invalid_payload"
    assert_one_secret_free_line(warned, receiver, expected)


def test_an_error_page_quoting_the_path_is_not_logged(receiver: Receiver, warned: Callable[[], list[str]]) -> None:
    receiver.script = [(404, {}, "The requested URL {path} was not found on this server.")]
    assert send(receiver.url) == "failed"
    assert_one_secret_free_line(warned, receiver, "webhook failed after 1 attempt: HTTP 404 Not Found")


def test_rate_limited_waits_as_long_as_asked_but_no_longer_than_max_wait(
    receiver: Receiver, warned: Callable[[], list[str]]
) -> None:
    receiver.script = [(429, {"Retry-After": "0"}, ""), (429, {"Retry-After": "3600"}, ""), 200]
    waits: list[float] = []
    assert send(receiver.url, waits, attempts=3, backoff=1.0) == "sent"
    assert len(receiver.received) == 3 and waits == [0.0, webhook.MAX_WAIT] and warned() == []


@pytest.mark.parametrize(
    ("retry_after", "wait"),
    [("2", 2.0), ("1.5", 1.5), ("-5", 0.0), ("Wed, 21 Oct 2015 07:28:00 GMT", 0.25), ("soon", 0.25)],
)
def test_a_numeric_retry_after_sets_the_pause_anything_else_the_backoff(
    receiver: Receiver, retry_after: str, wait: float
) -> None:
    receiver.script = [(503, {"Retry-After": retry_after}, ""), 200]
    waits: list[float] = []
    assert send(receiver.url, waits, backoff=0.25) == "sent"
    assert waits == [wait]


def test_a_redirect_is_not_followed(receiver: Receiver, warned: Callable[[], list[str]]) -> None:
    receiver.script = [(302, {"Location": "/elsewhere"}, "")]
    assert send(receiver.url) == "failed"
    assert [r["path"] for r in receiver.received] == [SECRET_PATH]
    assert_one_secret_free_line(warned, receiver, "webhook failed after 1 attempt: HTTP 302 Found")


def test_a_silent_webhook_times_out_and_is_tried_again(receiver: Receiver, warned: Callable[[], list[str]]) -> None:
    receiver.script = [HANG]
    assert send(receiver.url, attempts=2, timeout=0.2) == "failed"
    assert len(receiver.received) == 2
    [line] = warned()
    assert line.startswith("webhook failed after 2 attempts: unreachable (") and "timed out" in line


def test_a_webhook_that_is_down_fails_quickly_in_one_line(warned: Callable[[], list[str]]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}{SECRET_PATH}"
    waits: list[float] = []
    started = time.perf_counter()
    assert send(url, waits, attempts=3) == "failed"
    assert time.perf_counter() - started < 3.0
    assert waits == [0.5, 1.0]
    [line] = warned()
    assert line.startswith("webhook failed after 3 attempts: unreachable (") and "refused" in line.lower()
    assert str(port) not in line and "s3cr3t" not in line


@pytest.mark.parametrize(
    "url", ["ftp://hooks.example.org/s3cr3t", "hooks.slack.com/services/s3cr3t", "http://", "http://host:s3cr3t/x"]
)
def test_a_url_that_is_not_http_sends_nothing_and_says_so_once(
    url: str, receiver: Receiver, warned: Callable[[], list[str]]
) -> None:
    assert send(url) == "failed"
    assert receiver.received == []
    assert warned() == [f"{webhook.ENV} is not an http(s) URL; nothing sent"]


def test_a_url_http_cannot_send_fails_without_raising(receiver: Receiver, warned: Callable[[], list[str]]) -> None:
    assert send(receiver.url + "/é") == "failed"
    assert receiver.received == []
    assert_one_secret_free_line(warned, receiver, "webhook failed after 1 attempt: unusable URL (UnicodeEncodeError)")
