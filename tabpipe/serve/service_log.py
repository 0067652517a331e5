"""The service's log for operators: a client's mistake is one WARNING line, a server error keeps its
traceback, and every line can be JSON for a log shipper.

BentoML logs every refused request as an ERROR with the whole pydantic traceback ("Exception on
/predict [POST]", about 24 lines). The filter here rewrites those records in place when the
request was the client's fault (a 4xx): one line with BentoML's request id (the response's
X-BentoML-Request-ID header), the status and the fields named. 5xx records pass untouched.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any, Literal

LogFormat = Literal["text", "json"]
ENV = "TABPIPE_LOG_FORMAT"
BENTOML_EXCEPTIONS = "bentoml._internal.server.http_app"  # where BentoML's log_exception logs
GUARD = "tabpipe.service"
MAX_FIELDS = 5


def client_status(error: BaseException | None) -> int | None:
    """The 4xx status BentoML answers for `error`, or None when the error is the server's."""
    from pydantic import ValidationError

    if isinstance(error, ValidationError):
        return 400
    code = getattr(getattr(error, "error_code", None), "value", None)
    return code if isinstance(code, int) and 400 <= code < 500 else None


def fields(error: BaseException) -> list[str]:
    """What the client got wrong: `rows.0.petal_width: Input should be a valid number`, at most five."""
    from pydantic import ValidationError

    if not isinstance(error, ValidationError):
        return [" ".join(str(error).split())[:200]]
    found = [
        f"{'.'.join(str(part) for part in problem['loc']) or 'body'}: {problem['msg']}"
        for problem in error.errors(include_url=False, include_input=False)
    ]
    more = len(found) - MAX_FIELDS
    return found[:MAX_FIELDS] + ([f"and {more} more"] if more > 0 else [])


def request_id() -> str | None:
    """BentoML's id of the request being served, formatted as its X-BentoML-Request-ID header."""
    from bentoml._internal.context import trace_context

    found = trace_context.request_id
    return None if found is None else format(found, "016x")


MESSAGE = "client error %d on %s %s (request %s): %s"


def client_error(status: int, path: str, method: str, problems: list[str]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The one line of a refused request: its format's arguments, and the fields a JSON line carries."""
    found = request_id()
    fields_ = {"status": status, "path": path, "method": method, "request_id": found, "fields": problems}
    return (status, method, path, found or "-", "; ".join(problems)), fields_


def refused(status: int, path: str, method: str, problem: str) -> None:
    """Log a request the service refused before BentoML saw it (the request guard's 401, 413 and 415)."""
    args, extra = client_error(status, path, method, [problem])
    logging.getLogger(GUARD).warning(MESSAGE, *args, extra={"tabpipe": extra})


class ClientErrors(logging.Filter):
    """Rewrites BentoML's "Exception on <path> [<method>]" record of a 4xx into one WARNING line."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        status = client_status(error)
        if status is not None and record.msg == "Exception on %s [%s]" and isinstance(record.args, tuple):
            path, method = (str(part) for part in record.args)
            record.args, record.tabpipe = client_error(status, path, method, fields(error))
            record.msg, record.levelno, record.levelname = MESSAGE, logging.WARNING, "WARNING"
            record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the request's fields, a traceback if any."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **getattr(record, "tabpipe", {}),
        }
        if record.exc_info:
            line["traceback"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def choose(configured: LogFormat, environ: dict[str, str]) -> LogFormat:
    """TABPIPE_LOG_FORMAT, else `serve.log_format`; anything else is refused by name."""
    value = environ.get(ENV, configured)
    if value not in ("text", "json"):
        raise ValueError(f"{ENV}={value!r}: expected text or json")
    return value  # type: ignore[return-value]


def install(log_format: LogFormat) -> None:
    """In a serving worker, after BentoML configured logging: quiet client errors, and JSON if asked."""
    logger = logging.getLogger(BENTOML_EXCEPTIONS)
    if not any(isinstance(existing, ClientErrors) for existing in logger.filters):
        logger.addFilter(ClientErrors())
    if log_format == "json":
        for name in (None, "bentoml"):
            for handler in logging.getLogger(name).handlers:
                handler.setFormatter(JsonFormatter())
