"""The pull-request report: what the working tree changes against a base revision, as one GitHub comment.

    tabpipe pr report --base main --out reports/pr     # reports/pr/report.md and reports/pr/plots/*.png
    tabpipe pr comment 42                              # post it to pull request 42, or edit the one posted before

The report carries the gate's verdict with every rule, the champion comparison, validation's drift
share, the params and metrics diffs, and `dvc plots diff` rendered to PNG (offline, vl-convert).
"""

import os
from pathlib import Path

from tabpipe.core.errors import PipelineError
from tabpipe.report import collect, github


def report(base: str, out: Path, image_prefix: str) -> str:
    """Build and write the report of the project in the current directory; returns its markdown."""
    body, images = collect.report(base, Path("."), image_prefix)
    collect.write(out, body, images)
    return body


def comment(api_url: str, repo: str, number: int, body: Path) -> str:
    """Post `body` as the pull request's report comment (GH_TOKEN or GITHUB_TOKEN); says which comment it was."""
    token = os.environ.get("GH_TOKEN") or os.environ.get("GITHUB_TOKEN")
    if not token:
        raise PipelineError("pr comment: set GH_TOKEN (or GITHUB_TOKEN) to a token that may comment on pull requests")
    if not repo:
        raise PipelineError("pr comment: pass --repo owner/name (GitHub Actions sets GITHUB_REPOSITORY)")
    if not body.is_file():
        raise PipelineError(f"{body}: file not found; run `tabpipe pr report` first")
    action, comment_id = github.upsert_comment(api_url, repo, number, token, body.read_text(encoding="utf-8"))
    return f"pr comment: {action} comment {comment_id} on {repo}#{number}"
