"""The pull request's comment, built from data: the gate's verdict, the champion comparison,
validation's drift, params and metrics diffs in `dvc exp diff`'s style, and the plots as PNG.

No I/O here: `collect` runs DVC and reads the files, `github` posts the result.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import PurePosixPath
from typing import Any

from tabpipe.core.errors import PipelineError

# Hidden in the rendered comment; finds the comment again so each push edits it instead of adding one.
MARKER = "<!-- tabpipe-pr-report -->"
# `dvc exp diff`'s conventions: "-" for a value a revision lacks, 5 significant digits for numbers.
MISSING = "-"
NO_DIFF = "diff not supported"
PRECISION = 5
# A plot id ending in one of these names a data file (its stem names the image); any other id is a title.
DATA_SUFFIXES = {".json", ".csv", ".tsv", ".yaml", ".yml"}


def plot_file_name(plot_id: str) -> str:
    """A PNG name safe in any file system and URL: a data file's stem, else the title in lower-case words."""
    path = PurePosixPath(plot_id)
    name = path.stem if path.suffix.lower() in DATA_SUFFIXES else plot_id
    return (re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "plot") + ".png"


def _unique(name: str, taken: set[str]) -> str:
    """Two ids that slug alike (roc.json in two folders) must not overwrite each other's image."""
    stem, candidate, n = name.removesuffix(".png"), name, 1
    while candidate in taken:
        n += 1
        candidate = f"{stem}-{n}.png"
    taken.add(candidate)
    return candidate


def vega_specs(plots_json: Mapping[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(plot id, PNG name, Vega-Lite spec) for each vega plot of `dvc plots diff --json`, in DVC's order.

    Image plots have nothing to render and are left out, and so are plots without a point on either
    side (the other task's: a classification leaves the regression plots empty). The spec must carry
    its data: a --split output holds a placeholder instead, which cannot be rendered.
    """
    specs, taken = [], set()
    for plot_id, entries in (plots_json.get("data") or {}).items():
        for entry in entries:
            if entry.get("type") != "vega":
                continue
            content = entry.get("content")
            values = content.get("data", {}).get("values") if isinstance(content, dict) else None
            if not isinstance(values, list):
                raise PipelineError(f"dvc plots diff: plot '{plot_id}' has no inline data; run it without --split")
            if not values:
                continue
            specs.append((plot_id, _unique(plot_file_name(plot_id), taken), content))
    return specs


def render_plots(plots_json: Mapping[str, Any], *, scale: float = 2.0) -> dict[str, bytes]:
    """PNG name -> PNG bytes, one per plot, so a comment can show the plots without a browser or network.

    Rendering is offline: no spec may fetch a URL.
    """
    import vl_convert  # about 0.5 s on first use: only the report pays for it

    images = {}
    for plot_id, name, spec in vega_specs(plots_json):
        try:
            images[name] = vl_convert.vegalite_to_png(spec, scale=scale, allowed_base_urls=[])
        except ValueError as error:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise PipelineError(f"plot '{plot_id}': Vega-Lite could not render it: {reason}") from None
    return images


def markdown(
    base: str,
    *,
    params_diff: Mapping[str, Any],
    metrics_diff: Mapping[str, Any],
    gate: Mapping[str, Any] | None,
    gate_flags: Mapping[str, Any] | None,
    validation: Mapping[str, Any] | None,
    images: Iterable[str],
    image_prefix: str,
) -> str:
    """The comment body, verdict first: a reviewer reads whether the change may ship before the details.

    `gate` is the gate's report (reports/gate.json), `gate_flags` its committed flags (metrics/gate.json),
    used only when the report is missing. Any input may be missing: the section says so.
    """
    sections = [
        MARKER,
        f"## Pipeline report against `{base}`",
        gate_section(gate, gate_flags),
        champion_section(gate),
        validation_section(validation),
        diff_section("Params", "Param", base, params_diff, value_precision=None),
        diff_section("Metrics", "Metric", base, metrics_diff, value_precision=PRECISION),
        plots_section(images, image_prefix),
    ]
    return "\n\n".join(sections) + "\n"


def gate_section(gate: Mapping[str, Any] | None, gate_flags: Mapping[str, Any] | None) -> str:
    """Passed or failed, and every rule's result, so a failure names its rule."""
    if gate is not None:
        flags, note = gate.get("flags") or {}, ""
    elif gate_flags is not None:
        flags = gate_flags
        note = (
            "\n\nThe gate did not run in this job (its report is missing): these are the committed flags, "
            "which may predate this change."
        )
    else:
        return "### Gate: did not run\n\nNo verdict: the gate never ran, most likely because an earlier stage failed."
    rules = {str(name): bool(ok) for name, ok in sorted(flags.items()) if name != "passed"}
    if not rules:
        return f"### Gate: no rules\n\nThe gate recorded no rules.{note}"
    passed = all(rules.values()) and bool(flags.get("passed", True))
    failing = [name for name, ok in rules.items() if not ok]
    lines = [f"### Gate: {'passed' if passed else 'failed'}"]
    if failing:
        lines += ["", "Failing rules: " + ", ".join(cell(name) for name in failing) + "."]
    lines += ["", *table(["Rule", "Result"], [[name, "pass" if ok else "**fail**"] for name, ok in rules.items()])]
    return "\n".join(lines) + note


def champion_section(gate: Mapping[str, Any] | None) -> str:
    """The candidate against the serving champion on the same rows, with the test's uncertainty."""
    title = "### Champion comparison"
    if gate is None:
        return f"{title}\n\nNot available: the gate did not run."
    comparison, champion = gate.get("comparison"), gate.get("champion")
    if comparison is None:
        if champion is None:
            return f"{title}\n\nNo champion yet: first model of this lineage."
        if gate.get("schema_change"):
            return f"{title}\n\nNot compared with {champion_name(champion)}: {gate['schema_change']}."
        return f"{title}\n\nThe candidate is the champion itself ({champion_name(champion)}): nothing to compare."
    c = comparison
    row = [
        c.get("metric"),
        number(c.get("candidate"), "{:.4f}"),
        number(c.get("champion"), "{:.4f}"),
        number(c.get("difference"), "{:+.4f}"),
        number(c.get("ci_low"), "{:+.4f}"),
        number(c.get("ci_high"), "{:+.4f}"),
        number(c.get("p_value"), "{:.4f}"),
        c.get("test"),
    ]
    header = ["Metric", "Candidate", "Champion", "Difference", "CI low", "CI high", "p-value", "Test"]
    lines = [title, "", *table(header, [row]), "", "A positive difference means the candidate is better."]
    if "rows" in c:
        lines[-1] += (
            f" Compared on the {c['rows']} test rows the champion never trained on;"
            f" {c.get('set_aside', 0)} set aside because it trained on them."
        )
    if champion is not None:
        lines[-1] += f" Champion: {champion_name(champion)}."
    return "\n".join(lines)


def champion_name(champion: Mapping[str, Any]) -> str:
    return f"`{champion.get('name', '?')}` version {champion.get('version', '?')}"


def validation_section(validation: Mapping[str, Any] | None) -> str:
    """Drift between the splits, the number the validate stage fails on."""
    if validation is None:
        return "### Validation: did not run\n\nNo validation metrics: the validate stage never ran."
    verdict = {True: "passed", False: "failed"}.get(validation.get("passed"), "unknown")
    share, drifted = validation.get("drifted_share"), validation.get("drifted_columns")
    share_text = f"{share:.1%}" if is_number(share) else MISSING
    if isinstance(drifted, list | tuple):
        drifted = ", ".join(str(name) for name in drifted) or "none"
    lines = [f"### Validation: {verdict}", "", f"Drift share: {share_text} of columns; drifted columns: {drifted}."]
    if "checks_failed" in validation:
        lines[-1] += f" Failed checks: {validation['checks_failed']}."
    return "\n".join(lines)


def diff_section(title: str, kind: str, base: str, diff: Mapping[str, Any], *, value_precision: int | None) -> str:
    """A diff table as `dvc exp diff` prints it: Path | Param/Metric | base | workspace | Change.

    Unlike DVC, files are sorted (its JSON order varies between runs) and the change is always
    rounded to 5 significant digits (a float subtraction's noise helps no reviewer).
    """
    rows = [
        [
            path,
            name,
            value(change.get("old"), value_precision),
            value(change.get("new"), value_precision),
            value(change.get("diff", NO_DIFF), PRECISION),
        ]
        for path, changes in sorted(diff.items())
        for name, change in sorted(changes.items())
    ]
    if not rows:
        return f"### {title}\n\nNo {title.lower()} changed."
    return "\n".join([f"### {title}", "", *table(["Path", kind, base, "workspace", "Change"], rows)])


def plots_section(images: Iterable[str], image_prefix: str) -> str:
    """Each plot as an image; `image_prefix` is where the PNGs are served from (a folder or a URL)."""
    names = list(images)
    if not names:
        return "### Plots\n\nNo plots."
    return "\n".join(["### Plots", "", *(f"![{PurePosixPath(n).stem}]({image_prefix}{n})" for n in names)])


def value(x: Any, precision: int | None) -> str:
    """`dvc exp diff`'s cell: "-" for missing, floats to `precision` significant digits."""
    if x is None:
        return MISSING
    if isinstance(x, float) and precision:
        return f"{x:.{precision}g}"
    return str(x)


def number(x: Any, fmt: str) -> str:
    return fmt.format(x) if is_number(x) else (MISSING if x is None else str(x))


def is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def cell(x: Any) -> str:
    """Text that stays in its table cell: pipes and backslashes escaped, line breaks made spaces."""
    text = re.sub(r"\r\n|\r|\n", " ", str(x))
    return text.replace("\\", "\\\\").replace("|", "\\|")


def table(header: list[str], rows: Iterable[list[Any]]) -> list[str]:
    """A GitHub-flavoured markdown table, one line per row."""
    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(x) for x in row) + " |" for row in rows]
    return lines
