"""The release gate: minimum metrics, slice rules, and the champion rule with a paired significance test.

Pure functions over metrics and predictions; the gate stage does the reading and writing.
Data drift is not a gate rule: validate already fails the pipeline on it, with the same threshold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tabpipe.core.errors import PipelineError
from tabpipe.model import slices
from tabpipe.task.base import classes_of

if TYPE_CHECKING:
    import numpy as np

    from tabpipe.core.settings import ChampionRule, CompiledRule, Gate, GateSlices
    from tabpipe.task.base import Predicted, Task

# What the gate did with a champion it could not compare as always (gate.champion.on_schema_change, when_incomparable).
DONE = {
    "compare": "compared on the columns the champion knows",
    "new_lineage": "shipped as a new lineage, not compared",
    "refuse": "refused",
}
# Metrics where a smaller value is better; every other metric is better when larger.
LOWER_IS_BETTER = {"log_loss", "rmse", "mae", "brier", "ece", "expected_cost"}
BOOTSTRAP_CHUNK = 100  # resamples scored at once: a 100 x rows matrix of weights per model


@dataclass(frozen=True)
class Rule:
    """One gate rule's verdict and the line a person reads when it fails."""

    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class Comparison:
    """Candidate against champion on the same test rows; `difference` > 0 means the candidate is better."""

    metric: str
    candidate: float
    champion: float
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    test: str
    rows: int  # test rows compared: those the champion never trained on
    set_aside: int = 0  # test rows left out because the champion trained on them

    def as_dict(self) -> dict[str, Any]:
        return {k: round(v, 6) if isinstance(v, float) else v for k, v in self.__dict__.items()}


def threshold_rules(metrics: dict[str, Any], minimums: dict[str, float], maximums: dict[str, float]) -> list[Rule]:
    """Each named test metric at or above its minimum (`gate.min`), at or below its maximum (`gate.max`)."""
    rules = []
    for bound, limits in (("min", minimums), ("max", maximums)):
        for name, limit in limits.items():
            if name not in metrics:
                raise PipelineError(f"params.yaml: gate.{bound} names metric '{name}', which evaluate does not report")
            value, limit = float(metrics[name]), float(limit)
            passed = value >= limit if bound == "min" else value <= limit
            side = "below the minimum" if bound == "min" else "above the maximum"
            rules.append(Rule(f"{bound}_{name}", passed, f"{name} {value:.4f} is {side} {limit:.4f}"))
    return rules


def slice_rules(found: dict[str, Any], rules: GateSlices) -> list[Rule]:
    """Every slice large enough to judge at or above each floor (`gate.slices.min`), and each column's
    difference at or below its cap (`gate.slices.max_difference`: a fairness difference of
    metrics/slices.json, or any slice metric's gap between its best and worst slice)."""
    if not (rules.min or rules.max_difference):
        return []
    if not found:
        raise PipelineError("params.yaml: gate.slices has rules, but evaluate.slices names no column")
    out = []
    for column, entry in found.items():
        reported = {metric for figures in entry["slices"].values() for metric in figures}
        gated = {name: figures for name, figures in entry["slices"].items() if figures["gated"]}
        for metric, floor in rules.min.items():
            if metric not in reported:
                raise PipelineError(f"params.yaml: gate.slices.min names '{metric}', which slices of {column} lack")
            low = [(name, figures[metric]) for name, figures in gated.items() if figures.get(metric, floor) < floor]
            detail = "; ".join(
                f"column {column}, slice {name}: {metric} {value:.4f} is below the minimum {floor:.4f}"
                for name, value in low
            )
            out.append(Rule(f"slices_{column}_min_{metric}", not low, detail))
        for name, cap in rules.max_difference.items():
            if name in slices.DIFFERENCES:
                value = entry.get(name)
            elif name in reported:
                values = [figures[name] for figures in gated.values() if name in figures]
                value = max(values) - min(values) if len(values) > 1 else None
            else:
                raise PipelineError(
                    f"params.yaml: gate.slices.max_difference names '{name}', which slices of {column} lack"
                )
            passed = value is None or value <= cap
            detail = (
                f"column {column}: {name} {value if value is None else round(value, 4)} is above the maximum {cap:.4f}"
            )
            out.append(Rule(f"slices_{column}_max_{name}", passed, detail))
    return out


def compiled_rules(agreement: dict[str, Any], rule: CompiledRule) -> list[Rule]:
    """The served model must answer as the trained pipeline does (metrics/compile.json)."""
    if "max_relative_difference" in agreement:  # a regressor's values
        relative = float(agreement["max_relative_difference"])
        return [
            Rule(
                "compiled_values",
                relative <= rule.max_relative_difference,
                f"the served {agreement['runtime']} model's values differ from the pipeline's by up to {relative:.3g}"
                f" of their spread, above {rule.max_relative_difference:.3g}",
            )
        ]
    labels, difference = float(agreement["label_agreement"]), float(agreement["max_probability_difference"])
    return [
        Rule(
            "compiled_labels",
            labels >= rule.min_label_agreement,
            f"the served {agreement['runtime']} model gives the pipeline's label on {labels:.4%} of test rows, "
            f"below {rule.min_label_agreement:.4%}",
        ),
        Rule(
            "compiled_probabilities",
            difference <= rule.max_probability_difference,
            f"the served {agreement['runtime']} model's probabilities differ from the pipeline's by up to "
            f"{difference:.3g}, above {rule.max_probability_difference:.3g}",
        ),
    ]


def interval_rules(metrics: dict[str, Any], tolerance: float) -> list[Rule]:
    """A regressor's intervals cover the share of test rows they were built for, within `tolerance`."""
    if "interval_level" not in metrics:
        return []
    level, coverage = float(metrics["interval_level"]), float(metrics["interval_coverage"])
    return [
        Rule(
            "interval_coverage",
            abs(coverage - level) <= tolerance,
            f"the {level:.0%} intervals cover {coverage:.2%} of test rows, further than {tolerance} from their level"
            " (gate.regression.interval_tolerance)",
        )
    ]


def champion_rules(
    comparison: Comparison | None, *, tolerance: float, require_improvement: bool, alpha: float
) -> list[Rule]:
    """Not worse than the champion beyond `tolerance`; optionally significantly better.

    With no champion (first release) or the champion itself as candidate, both rules pass.
    """
    if comparison is None:
        return [Rule("champion_not_worse", True, ""), Rule("champion_significant", True, "")]
    worse = Rule(
        "champion_not_worse",
        comparison.difference >= -tolerance,
        f"{comparison.metric} {comparison.candidate:.4f} is worse than the champion's {comparison.champion:.4f} "
        f"by more than the tolerance {tolerance} ({rows_line(comparison)})",
    )
    significant = Rule(
        "champion_significant",
        not require_improvement or comparison.p_value < alpha,
        f"{comparison.metric} gain over the champion ({comparison.difference:+.4f}) is not significant "
        f"({comparison.test} p={comparison.p_value:.3f}, need < {alpha})",
    )
    return [worse, significant]


def compare(
    metric: str,
    y: np.ndarray,
    candidate: Predicted,
    champion: Predicted,
    task: Task,
    *,
    test: str,
    rounds: int,
    seed: int,
    alpha: float,
) -> Comparison:
    """Compare two models' test predictions, paired by row, on `metric` as their task scores it.

    bootstrap: resample rows with replacement, recompute the metric for both models on the same
    sample; the p-value is the share of samples where the candidate is not better.
    mcnemar: exact one-sided test on the rows only one of the two models classifies correctly.
    """
    import numpy as np

    if test not in task.paired_tests:
        raise PipelineError(f"params.yaml: gate.champion.test is {test}, which compares labels; use bootstrap")

    def one(predicted: Predicted) -> float:
        return task.score(metric, y, predicted)

    def resampled(predicted: Predicted, rows: np.ndarray) -> np.ndarray:
        return task.sample_scores(metric, y, predicted, rows)

    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    cand, champ = one(candidate), one(champion)
    rng = np.random.default_rng(seed)
    diffs = []
    for start in range(0, rounds, BOOTSTRAP_CHUNK):
        rows = rng.integers(0, len(y), (min(BOOTSTRAP_CHUNK, rounds - start), len(y)))
        diffs.append(sign * (resampled(candidate, rows) - resampled(champion, rows)))
    defined = np.concatenate(diffs)
    defined = defined[~np.isnan(defined)]  # resamples holding one class have no ROC AUC
    low, high = np.quantile(defined, [alpha / 2, 1 - alpha / 2])
    p_value = float((defined <= 0).mean()) if test == "bootstrap" else mcnemar(y, candidate.labels, champion.labels)
    return Comparison(metric, cand, champ, sign * (cand - champ), float(low), float(high), p_value, test, len(y))


def mcnemar(y: np.ndarray, candidate: np.ndarray, champion: np.ndarray) -> float:
    """One-sided exact McNemar p-value for 'the candidate classifies more rows correctly' (given their labels)."""
    from scipy.stats import binomtest

    right_candidate = candidate == y
    right_champion = champion == y
    only_candidate = int((right_candidate & ~right_champion).sum())
    only_champion = int((~right_candidate & right_champion).sum())
    if only_candidate + only_champion == 0:
        return 1.0
    return float(binomtest(only_candidate, only_candidate + only_champion, 0.5, alternative="greater").pvalue)


def rows_line(comparison: Comparison) -> str:
    """How many test rows the comparison used, and how many it set aside because the champion trained on them."""
    return (
        f"on {comparison.rows} test rows the champion never trained on; "
        f"{comparison.set_aside} set aside because it trained on them"
    )


def verdict(rules: list[Rule]) -> tuple[dict[str, bool], list[str]]:
    """The flat gate.json (passed + one key per rule) and one line per failed rule."""
    flags = {rule.name: rule.passed for rule in rules}
    flags["passed"] = all(flags.values())
    return flags, [f"gate: {rule.name}: {rule.detail}" for rule in rules if not rule.passed]


@dataclass(frozen=True)
class SchemaChange:
    """How the data the champion was trained on differs from the candidate's: columns and classes."""

    champion_columns: list[str]
    added: list[str]
    removed: list[str]
    champion_classes: list[str]
    classes: list[str]

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed) or self.champion_classes != self.classes

    @property
    def comparable(self) -> bool:
        """The champion can score this test set: every column it needs is here, and it predicts the same classes."""
        return not self.removed and self.champion_classes == self.classes

    def describe(self) -> str:
        parts = [f"columns added {self.added}"] if self.added else []
        parts += [f"columns removed {self.removed}"] if self.removed else []
        if self.champion_classes != self.classes:
            parts.append(f"classes {self.champion_classes} became {self.classes}")
        return ", ".join(parts)


def schema_change(champion: Any, columns: list[str], classes: list[str]) -> SchemaChange:
    """Compare the champion's fitted inputs and classes (scikit-learn records both) with the candidate's."""
    before = [str(c) for c in getattr(champion, "feature_names_in_", columns)]
    return SchemaChange(
        champion_columns=before,
        added=[c for c in columns if c not in before],
        removed=[c for c in before if c not in columns],
        champion_classes=classes_of(champion),
        classes=list(classes),
    )


def compare_models(
    candidate: Any,
    champion: Any,
    x: Any,
    y: np.ndarray,
    rule: ChampionRule,
    seed: int,
    *,
    unseen: np.ndarray,
    task: Task,
) -> Comparison:
    """Predict the test rows the champion never trained on (`unseen`) with both models and compare them on
    `rule.metric`. The champion sees only the columns it was trained on (a candidate may have more)."""
    from dataclasses import replace

    set_aside = int(len(y) - unseen.sum())
    x, y = x[unseen], y[unseen]
    classes = classes_of(candidate)
    if classes_of(champion) != classes:
        raise PipelineError(
            f"gate: the champion predicts classes {classes_of(champion)}, the candidate {classes}: not comparable"
        )
    known = [str(c) for c in getattr(champion, "feature_names_in_", x.columns)]
    ours = task.predict(candidate, x)
    compared = compare(
        rule.metric,
        y,
        ours,
        task.judged_like(task.predict(champion, x[known]), ours),
        task,
        test=rule.test,
        rounds=rule.rounds,
        seed=seed,
        alpha=rule.alpha,
    )
    return replace(compared, set_aside=set_aside)


def unseen_rows(
    seen: np.ndarray | None, y: np.ndarray, classes: list[str], min_rows: int
) -> tuple[np.ndarray | None, str]:
    """(the test rows the champion never trained on, as a mask; or None and why they cannot be compared).

    A champion must be scored on rows it never saw: scored on its own training rows it looks better
    than it is and blocks an honest candidate. Too few unseen rows (`gate.champion.min_rows`), or a
    class none of them holds, leave nothing fair to compare on."""
    if seen is None:
        return None, "the champion carries no fingerprint of its training rows, so no test row is known to be new to it"
    unseen = ~seen
    count = int(unseen.sum())
    if count < min_rows:
        return None, (
            f"only {count} of {len(y)} test rows are new to the champion ({len(y) - count} set aside because it "
            f"trained on them; gate.champion.min_rows is {min_rows})"
        )
    absent = [c for c in classes if c not in set(y[unseen])]
    if absent:
        return None, f"none of the {count} test rows new to the champion is of class '{absent[0]}'"
    return unseen, ""


@dataclass(frozen=True)
class Decision:
    """The gate's answer: gate.json's flags, one line per failed rule, and the champion comparison."""

    flags: dict[str, bool]
    failures: list[str]
    comparison: Comparison | None
    schema_note: str | None = None


def decide(
    settings: Gate,
    *,
    metrics: dict[str, Any],
    sliced: dict[str, Any],
    agreement: dict[str, Any],
    candidate: Any,
    champion: Any | None,
    x: Any,
    y: np.ndarray,
    seed: int,
    seen: np.ndarray | None,
    task: Task,
) -> Decision:
    """Apply every rule: the thresholds, the compiled model's agreement, a regressor's interval
    coverage, then (when a different champion serves) the champion comparison, on the test rows the
    champion never trained on (`seen`: those it did, None when it cannot tell). `settings` are the
    task's (Gate.for_task)."""
    champion, note, refused = schema_policy(candidate, champion, x, settings.champion)
    comparison = None
    if champion is not None:
        unseen, reason = unseen_rows(seen, y, classes_of(candidate), settings.champion.min_rows)
        if unseen is None:
            action = settings.champion.when_incomparable
            note = "; ".join(filter(None, [note, f"{reason}: {DONE[action]}"]))
            refused = action == "refuse"
        else:
            comparison = compare_models(candidate, champion, x, y, settings.champion, seed, unseen=unseen, task=task)
    rules = [
        Rule("schema_accepted", not refused, note or ""),
        *threshold_rules(metrics, settings.min, settings.max),
        *slice_rules(sliced, settings.slices),
        *compiled_rules(agreement, settings.compiled),
        *interval_rules(metrics, settings.regression.interval_tolerance),
        *champion_rules(
            comparison,
            tolerance=settings.champion.tolerance,
            require_improvement=settings.champion.require_improvement,
            alpha=settings.champion.alpha,
        ),
    ]
    flags, failures = verdict(rules)
    return Decision(flags, failures, comparison, note)


def schema_policy(
    candidate: Any, champion: Any | None, x: Any, rule: ChampionRule
) -> tuple[Any | None, str | None, bool]:
    """(the champion to compare with, or None; a line saying what changed and what the gate did; refused).

    A dataset's columns or classes may change between champion and candidate: `on_schema_change` and
    `when_incomparable` say whether to compare anyway, ship as a new lineage (no comparison), or refuse."""
    if champion is None:
        return None, None, False
    change = schema_change(champion, [str(c) for c in x.columns], classes_of(candidate))
    if not change.changed:
        return champion, None, False
    action = rule.on_schema_change
    if action == "compare" and not change.comparable:
        action = rule.when_incomparable
        reason = "; the champion cannot score this test set"
    else:
        reason = ""
    note = f"the champion was trained on other data ({change.describe()}){reason}: {DONE[action]}"
    return (champion if action == "compare" else None), note, action == "refuse"
