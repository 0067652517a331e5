"""One report comment per pull request, edited on every push (GitHub's REST API, standard library only)."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from tabpipe.core.errors import PipelineError
from tabpipe.report.pr import MARKER

TIMEOUT = 30.0  # seconds per request
MAX_PAGES = 100  # 10,000 comments: far beyond any pull request, but a bound on a server that loops
_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="next"')


def upsert_comment(api_url: str, repo: str, number: int, token: str, body: str) -> tuple[str, int]:
    """Edit the pull request's report comment (the first holding MARKER), or create it when there is none.

    Returns ("edited" | "created", the comment's id). Any failure raises before anything is posted,
    and a failed edit never falls back to posting: the pull request keeps a single report.
    """
    api = api_url.rstrip("/")
    found = find_comment(api, repo, number, token)
    if found is not None:
        request(api, "PATCH", f"{api}/repos/{repo}/issues/comments/{found}", token, {"body": body})
        return "edited", found
    created, _ = request(api, "POST", f"{api}/repos/{repo}/issues/{number}/comments", token, {"body": body})
    return "created", int(created["id"])


def find_comment(api: str, repo: str, number: int, token: str) -> int | None:
    """The id of the first comment holding MARKER, reading every page of the pull request's comments."""
    url: str | None = f"{api}/repos/{repo}/issues/{number}/comments?per_page=100"
    for _ in range(MAX_PAGES):
        if url is None:
            return None
        comments, headers = request(api, "GET", url, token)
        for comment in comments:
            if MARKER in (comment.get("body") or ""):
                return int(comment["id"])
        url = next_page(headers.get("Link"))
    raise PipelineError(f"GitHub API: more than {MAX_PAGES} pages of comments on {repo}#{number}")


def next_page(link: str | None) -> str | None:
    """The rel="next" URL of a Link header, as GitHub paginates."""
    match = _NEXT.search(link or "")
    return match.group(1) if match else None


def request(api: str, method: str, url: str, token: str, payload: Any = None) -> tuple[Any, Any]:
    """One API call: (parsed JSON body, response headers), or a one-line PipelineError.

    The token goes only to the API's own host, even if a Link header points elsewhere.
    """
    if _origin(url) != _origin(api):
        raise PipelineError(f"GitHub API: refusing to send the token to {_origin(url)} (the API is {_origin(api)})")
    data = json.dumps(payload).encode() if payload is not None else None
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
        "User-Agent": "tabpipe-pr-report",
    }
    if data is not None:
        headers["Content-Type"] = "application/json"
    where = f"GitHub API {method} {urllib.parse.urlsplit(url).path}"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data, headers, method=method), timeout=TIMEOUT) as r:
            text, response_headers = r.read().decode("utf-8"), r.headers
    except urllib.error.HTTPError as error:
        raise PipelineError(f"{where}: HTTP {error.code} {error.reason}{_message(error)}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", None) or error
        raise PipelineError(f"{where}: unreachable ({reason})".replace("\n", " ")) from None
    try:
        return (json.loads(text) if text else None), response_headers
    except json.JSONDecodeError:
        raise PipelineError(f"{where}: the answer is not JSON") from None


def _origin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _message(error: urllib.error.HTTPError) -> str:
    """GitHub's own explanation ("Bad credentials", "Body is too long"), when the answer carries one."""
    try:
        message = json.loads(error.read().decode("utf-8")).get("message")
    except (ValueError, AttributeError, OSError):
        return ""
    return f": {message}".replace("\n", " ") if message else ""
