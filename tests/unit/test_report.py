"""The pull request's report: its markdown, its plots as PNG, and the one comment it keeps on GitHub."""

import json
import re
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tabpipe.core.errors import PipelineError
from tabpipe.report import collect, github, pr
from tests.support.servers import http_server

PASSED_FLAGS = {
    "champion_not_worse": True,
    "champion_significant": True,
    "compiled_labels": True,
    "compiled_probabilities": True,
    "min_f1_macro": True,
    "min_roc_auc": True,
    "passed": True,
}
CHAMPION = {"model_sha256": "f1ba", "model_uri": "models:/tabpipe-iris/1", "name": "tabpipe-iris", "version": "1"}
COMPARISON = {
    "metric": "f1_macro",
    "candidate": 0.973684,
    "champion": 0.947368,
    "difference": 0.026316,
    "ci_low": -0.013158,
    "ci_high": 0.078947,
    "p_value": 0.153,
    "test": "bootstrap",
}
VALIDATION = {"checks_failed": 0, "drifted_columns": 1, "drifted_share": 0.25, "passed": True}
# Shapes as `dvc params diff --json` and `dvc metrics diff --json` print them (DVC 3.67).
PARAMS_DIFF = {
    "params.yaml": {
        "gate.compiled.min_label_agreement": {"old": 0.999, "new": 0.99, "diff": -0.009000000000000008},
        "serve.runtime": {"old": None, "new": "onnx"},
    }
}
METRICS_DIFF = {
    "metrics/evaluate.json": {"roc_auc": {"old": 0.981234567, "new": 0.990123456, "diff": 0.008888889}},
    "metrics/compile.json": {"label_disagreements": {"old": None, "new": 0}},
}


def body(**overrides: Any) -> str:
    inputs: dict[str, Any] = {
        "base": "origin/main",
        "params_diff": PARAMS_DIFF,
        "metrics_diff": METRICS_DIFF,
        "gate": {"flags": PASSED_FLAGS, "champion": CHAMPION, "comparison": COMPARISON},
        "gate_flags": PASSED_FLAGS,
        "validation": VALIDATION,
        "images": ["roc-test-set.png"],
        "image_prefix": "plots/",
    }
    return pr.markdown(**{**inputs, **overrides})


def section(text: str, title: str) -> str:
    """The text of the `### <title>...` section."""
    match = re.search(rf"^### {re.escape(title)}.*?(?=^### |\Z)", text, re.M | re.S)
    assert match, f"no section {title!r} in:\n{text}"
    return match.group(0)


def table_rows(text: str) -> list[list[str]]:
    """The cells of every table row but the delimiter row; lines split on "\\n" only, as markdown does."""
    return [cells(line) for line in text.split("\n") if line.startswith("| ")]


def cells(row: str) -> list[str]:
    """Split a markdown table row as GitHub does (a backslash escapes the next character), unescaped."""
    out, current, chars = [], "", iter(row.strip()[1:-1])
    for char in chars:
        if char == "\\":
            current += next(chars)
        elif char == "|":
            out.append(current.strip())
            current = ""
        else:
            current += char
    return [*out, current.strip()]


# --- markdown ---------------------------------------------------------------------------------


def test_a_failed_gate_says_failed_and_names_each_failing_rule() -> None:
    flags = {**PASSED_FLAGS, "min_roc_auc": False, "compiled_labels": False, "passed": False}
    text = section(body(gate={"flags": flags, "champion": None, "comparison": None}), "Gate")
    assert text.startswith("### Gate: failed")
    assert "Failing rules: compiled_labels, min_roc_auc." in text
    results = dict(table_rows(text))
    assert results.pop("Rule") == "Result"
    assert results == {name: "**fail**" if not ok else "pass" for name, ok in flags.items() if name != "passed"}


def test_a_passing_gate_says_passed_with_every_rule() -> None:
    text = section(body(), "Gate")
    assert text.startswith("### Gate: passed")
    assert "fail" not in text
    for name in PASSED_FLAGS.keys() - {"passed"}:
        assert f"| {name} | pass |" in text


def test_a_rule_failing_while_passed_says_true_is_still_a_failure() -> None:
    text = section(body(gate={"flags": {"min_roc_auc": False, "passed": True}, "comparison": None}), "Gate")
    assert text.startswith("### Gate: failed")


def test_the_comparison_shows_every_number() -> None:
    text = section(body(), "Champion comparison")
    row = table_rows(text)[1]
    assert row == ["f1_macro", "0.9737", "0.9474", "+0.0263", "-0.0132", "+0.0789", "0.1530", "bootstrap"]
    assert "`tabpipe-iris` version 1" in text


def test_no_champion_and_the_champion_itself_are_told_apart() -> None:
    first = section(body(gate={"flags": PASSED_FLAGS, "champion": None, "comparison": None}), "Champion")
    assert "No champion yet: first model of this lineage." in first
    same = section(body(gate={"flags": PASSED_FLAGS, "champion": CHAMPION, "comparison": None}), "Champion")
    assert "the champion itself" in same and "`tabpipe-iris` version 1" in same


def test_the_comparison_says_which_test_rows_it_used_and_an_incomparable_champion_says_why() -> None:
    counted = {**COMPARISON, "rows": 1037, "set_aside": 2627}
    text = section(body(gate={"flags": PASSED_FLAGS, "champion": CHAMPION, "comparison": counted}), "Champion")
    assert "Compared on the 1037 test rows the champion never trained on; 2627 set aside because it trained" in text
    assert "set aside" not in section(body(), "Champion")  # a report written before the rows were counted
    note = "only 3 of 38 test rows are new to the champion (...): shipped as a new lineage, not compared"
    gate = {"flags": PASSED_FLAGS, "champion": CHAMPION, "comparison": None, "schema_change": note}
    skipped = section(body(gate=gate), "Champion")
    assert f"Not compared with `tabpipe-iris` version 1: {note}." in skipped and "champion itself" not in skipped


def test_validation_shows_drift_share_and_drifted_columns() -> None:
    text = section(body(), "Validation")
    assert text.startswith("### Validation: passed")
    assert "Drift share: 25.0% of columns; drifted columns: 1." in text
    failed = section(body(validation={"drifted_share": 0.5, "drifted_columns": 2, "passed": False}), "Validation")
    assert failed.startswith("### Validation: failed") and "50.0%" in failed


def test_diff_tables_are_in_dvc_exp_diffs_style() -> None:
    text = body()
    params = table_rows(section(text, "Params"))
    assert params == [
        ["Path", "Param", "origin/main", "workspace", "Change"],
        ["params.yaml", "gate.compiled.min_label_agreement", "0.999", "0.99", "-0.009"],
        ["params.yaml", "serve.runtime", "-", "onnx", "diff not supported"],
    ]
    metrics = table_rows(section(text, "Metrics"))
    assert metrics == [
        ["Path", "Metric", "origin/main", "workspace", "Change"],
        ["metrics/compile.json", "label_disagreements", "-", "0", "diff not supported"],
        ["metrics/evaluate.json", "roc_auc", "0.98123", "0.99012", "0.0088889"],
    ]


def test_empty_diffs_and_images() -> None:
    text = body(params_diff={}, metrics_diff={}, images=[])
    assert "No params changed." in text and "No metrics changed." in text and "No plots." in text


def test_images_link_under_the_prefix() -> None:
    text = body(images=["roc.png", "confusion-matrix-test-set.png"], image_prefix="https://example.org/r/")
    assert "![roc](https://example.org/r/roc.png)" in text
    assert "![confusion-matrix-test-set](https://example.org/r/confusion-matrix-test-set.png)" in text


def test_a_gate_that_never_ran_is_said_so() -> None:
    text = body(gate=None, gate_flags=None, validation=None)
    assert section(text, "Gate").startswith("### Gate: did not run")
    assert "the gate did not run" in section(text, "Champion comparison")
    assert section(text, "Validation").startswith("### Validation: did not run")


def test_committed_flags_stand_in_for_a_missing_report_with_a_warning() -> None:
    text = section(body(gate=None, gate_flags={**PASSED_FLAGS, "min_f1_macro": False, "passed": False}), "Gate")
    assert text.startswith("### Gate: failed") and "min_f1_macro" in text
    assert "may predate this change" in text


rule_names = st.text(st.characters(codec="ascii", categories=["L", "N"], include_characters="_-."), min_size=1)


@given(
    base=st.text(st.characters(blacklist_categories=["Cc", "Cs"]), max_size=30),
    flags=st.dictionaries(rule_names.filter(lambda n: n != "passed"), st.booleans(), min_size=1, max_size=8),
)
def test_the_marker_comes_first_and_every_rule_is_named(base: str, flags: dict[str, bool]) -> None:
    text = body(base=base, gate={"flags": flags, "champion": None, "comparison": None})
    assert text.startswith(pr.MARKER + "\n")
    assert text.count(pr.MARKER) == 1 or pr.MARKER in base
    gate = section(text, "Gate")
    assert gate.startswith("### Gate: failed" if not all(flags.values()) else "### Gate: passed")
    results = dict(table_rows(gate))
    assert {name: results[name] == "pass" for name in flags} == flags


cell_text = st.text(st.characters(blacklist_categories=["Cc", "Cs"]), max_size=20)


@given(path=cell_text, key=cell_text, old=cell_text | st.integers() | st.none(), new=cell_text | st.booleans())
def test_any_param_text_stays_in_its_cell(path: str, key: str, old: Any, new: Any) -> None:
    text = body(params_diff={path: {key: {"old": old, "new": new}}})
    assert table_rows(section(text, "Params"))[1] == [
        path.strip(),
        key.strip(),
        "-" if old is None else str(old).strip(),
        str(new).strip(),
        pr.NO_DIFF,
    ]


# --- plots --------------------------------------------------------------------------------------


def simple_plot(title: str, x: str, y: str, points: list[tuple[float, float]]) -> list[dict[str, Any]]:
    """One entry of `dvc plots diff --json` (no --split) as DVC 3.67 prints it for the `simple` template."""
    revs = ["workspace", "HEAD"]
    return [
        {
            "type": "vega",
            "revisions": revs,
            "content": {
                "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
                "data": {"values": [{x: a, y: b, "rev": rev} for rev in revs for a, b in points]},
                "title": {"text": title, "anchor": "middle"},
                "params": [{"name": "grid", "select": "interval", "bind": "scales"}],
                "width": 300,
                "height": 300,
                "mark": {"type": "line", "tooltip": {"content": "data"}},
                "encoding": {
                    "x": {"field": x, "type": "quantitative", "title": x},
                    "y": {"field": y, "type": "quantitative", "title": y, "scale": {"zero": False}},
                    "color": {"field": "rev", "scale": {"domain": revs, "range": ["#945dd6", "#13adc7"]}},
                    "strokeDash": {},
                    "tooltip": [{"field": "rev"}, {"field": x}, {"field": y}],
                },
            },
        }
    ]


def confusion_plot(title: str) -> list[dict[str, Any]]:
    """The `confusion` template's entry, trimmed to its facet and rect layer (the part that can break)."""
    rows = [("a", "a"), ("a", "b"), ("b", "b"), ("b", "b")]
    return [
        {
            "type": "vega",
            "revisions": ["workspace", "HEAD"],
            "content": {
                "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
                "data": {
                    "values": [{"actual": a, "predicted": p, "rev": r} for r in ("workspace", "HEAD") for a, p in rows]
                },
                "title": {"text": title, "anchor": "middle"},
                "facet": {"column": {"field": "rev", "sort": []}, "row": {}},
                "params": [{"name": "showValues", "bind": {"input": "checkbox"}}],
                "spec": {
                    "transform": [
                        {"aggregate": [{"op": "count", "as": "xy_count"}], "groupby": ["actual", "predicted"]}
                    ],
                    "encoding": {
                        "x": {"field": "predicted", "type": "nominal", "sort": "ascending", "title": "predicted"},
                        "y": {"field": "actual", "type": "nominal", "sort": "ascending", "title": "actual"},
                    },
                    "layer": [
                        {
                            "mark": "rect",
                            "width": 300,
                            "height": 300,
                            "encoding": {"color": {"field": "xy_count", "type": "quantitative", "title": ""}},
                        }
                    ],
                },
            },
        }
    ]


def test_render_plots_gives_one_png_per_vega_plot_with_safe_names() -> None:
    roc = [(0.0, 0.0), (0.0, 0.9), (0.1, 1.0), (1.0, 1.0)]
    plots = {
        "data": {
            "ROC (test set)": simple_plot("ROC (test set)", "fpr", "tpr", roc),
            "Confusion matrix (test set)": confusion_plot("Confusion matrix (test set)"),
            "metrics/plots/roc.json": simple_plot("metrics/plots/roc.json", "fpr", "tpr", roc),
            "other/roc.json": simple_plot("other/roc.json", "fpr", "tpr", roc),
            "no data at either revision": [],
            "Residuals (the other task's plot, empty)": simple_plot("Residuals", "predicted", "residual", []),
            "photo.png": [{"type": "image", "revisions": ["HEAD"], "url": "photo.png"}],
        },
        "errors": [{"name": "x", "rev": "HEAD", "source": "x.json", "type": "FileNotFoundError", "msg": ""}],
    }
    images = pr.render_plots(plots, scale=1)
    assert list(images) == ["roc-test-set.png", "confusion-matrix-test-set.png", "roc.png", "roc-2.png"]
    for png in images.values():
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000


def test_split_output_cannot_be_rendered() -> None:
    entry = simple_plot("ROC", "fpr", "tpr", [(0, 0)])[0]
    entry["content"]["data"] = {"values": "<DVC_METRIC_DATA>"}
    with pytest.raises(PipelineError, match="no inline data; run it without --split"):
        pr.render_plots({"data": {"ROC": [entry]}})


@given(st.text(max_size=40))
def test_plot_file_names_are_plain_and_safe(plot_id: str) -> None:
    name = pr.plot_file_name(plot_id)
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*\.png", name)


# --- collect ------------------------------------------------------------------------------------


def test_write_puts_the_report_and_only_its_plots(tmp_path: Path) -> None:
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "stale.png").write_bytes(b"old")
    collect.write(tmp_path, "body\n", {"roc.png": b"\x89PNG-roc"})
    assert (tmp_path / "report.md").read_text() == "body\n"
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["roc.png"]
    assert (tmp_path / "plots" / "roc.png").read_bytes() == b"\x89PNG-roc"
    with pytest.raises(PipelineError, match="not a plain file name"):
        collect.write(tmp_path, "x", {"../escape.png": b""})


def test_a_failing_dvc_call_is_one_line_naming_the_command(tmp_path: Path) -> None:
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "empty"], check=True)
    with pytest.raises(PipelineError) as failure:
        collect.params_diff("nope", tmp_path)
    assert str(failure.value) == "dvc params diff nope --json: unknown Git revision 'nope'"


def test_missing_files_read_as_none(tmp_path: Path) -> None:
    assert collect.optional_json(tmp_path / "absent.json") is None
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(PipelineError, match="not valid JSON"):
        collect.optional_json(tmp_path / "bad.json")


# --- github -------------------------------------------------------------------------------------

TOKEN = "t0ken"
REPO = "acme/tabpipe"
PR_NUMBER = 7


@dataclass
class FakeGitHub:
    """The three issue-comment endpoints, in memory, paginated `page_size` at a time."""

    comments: list[dict[str, Any]] = field(default_factory=list)
    page_size: int = 2
    fail: set[str] = field(default_factory=set)  # methods answered with 500
    log: list[tuple[str, str]] = field(default_factory=list)
    next_id: int = 100
    url: str = ""
    link_base: str = ""  # where Link headers point: the server itself unless a test says otherwise

    def add(self, text: str) -> int:
        self.next_id += 1
        self.comments.append({"id": self.next_id, "body": text})
        return self.next_id


def handler_for(hub: FakeGitHub) -> type[BaseHTTPRequestHandler]:
    list_path = f"/repos/{REPO}/issues/{PR_NUMBER}/comments"
    edit_path = re.compile(rf"/repos/{re.escape(REPO)}/issues/comments/(\d+)")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def answer(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, val in (headers or {}).items():
                self.send_header(key, val)
            self.end_headers()
            self.wfile.write(data)

        def payload(self) -> Any:
            return json.loads(self.rfile.read(int(self.headers["Content-Length"])))

        def checked(self) -> bool:
            hub.log.append((self.command, self.path))
            if self.headers["Authorization"] != f"Bearer {TOKEN}":
                self.answer(401, {"message": "Bad credentials"})
                return False
            if self.headers["Accept"] != "application/vnd.github+json":
                self.answer(415, {"message": "Unsupported Accept"})
                return False
            if self.command in hub.fail:
                self.answer(500, {"message": "Server Error"})
                return False
            return True

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if not self.checked():
                return
            if url.path != list_path:
                self.answer(404, {"message": "Not Found"})
                return
            page = int(parse_qs(url.query).get("page", ["1"])[0])
            start = (page - 1) * hub.page_size
            headers = {}
            if start + hub.page_size < len(hub.comments):
                headers["Link"] = f'<{hub.link_base or hub.url}{list_path}?per_page=100&page={page + 1}>; rel="next"'
            self.answer(200, hub.comments[start : start + hub.page_size], headers)

        def do_POST(self) -> None:
            if not self.checked():
                return
            if self.path != list_path:
                self.answer(404, {"message": "Not Found"})
                return
            new = self.payload()["body"]
            self.answer(201, {"id": hub.add(new), "body": new})

        def do_PATCH(self) -> None:
            if not self.checked():
                return
            match = edit_path.fullmatch(self.path)
            comment = next((c for c in hub.comments if match and c["id"] == int(match.group(1))), None)
            if comment is None:
                self.answer(404, {"message": "Not Found"})
                return
            comment["body"] = self.payload()["body"]
            self.answer(200, comment)

    return Handler


@pytest.fixture
def hub() -> Iterator[FakeGitHub]:
    state = FakeGitHub()
    with http_server(handler_for(state)) as base:
        state.url = base
        yield state


def upsert(hub: FakeGitHub, text: str, token: str = TOKEN) -> tuple[str, int]:
    return github.upsert_comment(hub.url + "/", REPO, PR_NUMBER, token, text)


def test_first_push_creates_the_comment_later_pushes_edit_it(hub: FakeGitHub) -> None:
    others = [hub.add(f"review {i}") for i in range(3)]  # two pages before ours
    action, first = upsert(hub, f"{pr.MARKER}\nv1")
    assert action == "created"
    hub.add("another review after the report")  # ours is now on page 2 of 3
    assert upsert(hub, f"{pr.MARKER}\nv2") == ("edited", first)
    assert [c["body"] for c in hub.comments if pr.MARKER in c["body"]] == [f"{pr.MARKER}\nv2"]
    assert [c["body"] for c in hub.comments if c["id"] in others] == ["review 0", "review 1", "review 2"]
    assert sum(1 for method, path in hub.log if method == "GET" and "page=2" in path) == 2


def test_only_the_first_marked_comment_is_edited(hub: FakeGitHub) -> None:
    first, second = hub.add(f"old {pr.MARKER}"), hub.add(f"{pr.MARKER} duplicate")
    assert upsert(hub, f"{pr.MARKER}\nnew") == ("edited", first)
    assert {c["id"]: c["body"] for c in hub.comments} == {first: f"{pr.MARKER}\nnew", second: f"{pr.MARKER} duplicate"}


def test_a_failed_edit_raises_one_line_and_posts_nothing(hub: FakeGitHub) -> None:
    mine = hub.add(f"{pr.MARKER}\nv1")
    hub.fail.add("PATCH")
    with pytest.raises(PipelineError) as failure:
        upsert(hub, f"{pr.MARKER}\nv2")
    assert str(failure.value) == (
        f"GitHub API PATCH /repos/{REPO}/issues/comments/{mine}: HTTP 500 Internal Server Error: Server Error"
    )
    assert [m for m, _ in hub.log] == ["GET", "PATCH"]
    assert hub.comments == [{"id": mine, "body": f"{pr.MARKER}\nv1"}]


def test_a_failed_listing_posts_nothing(hub: FakeGitHub) -> None:
    hub.fail.add("GET")
    with pytest.raises(PipelineError, match="HTTP 500"):
        upsert(hub, pr.MARKER)
    assert [m for m, _ in hub.log] == ["GET"] and hub.comments == []


def test_bad_credentials_are_reported(hub: FakeGitHub) -> None:
    with pytest.raises(PipelineError, match="HTTP 401 Unauthorized: Bad credentials"):
        upsert(hub, pr.MARKER, token="wrong")


def test_a_link_to_another_host_gets_no_token(hub: FakeGitHub) -> None:
    for i in range(3):
        hub.add(f"review {i}")
    hub.link_base = "http://elsewhere.invalid:1"
    with pytest.raises(PipelineError, match=re.escape("refusing to send the token to http://elsewhere.invalid:1")):
        upsert(hub, pr.MARKER)
    assert [m for m, _ in hub.log] == ["GET"]


def test_an_unreachable_api_is_one_line() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(PipelineError, match=r"^GitHub API GET /repos/acme/tabpipe/issues/7/comments: unreachable"):
        github.upsert_comment(f"http://127.0.0.1:{port}", REPO, PR_NUMBER, TOKEN, "x")
