"""The release gate: thresholds, data drift, and the champion rule with a paired significance test.

Pure functions over metrics and predictions; the gate stage does the reading and writing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tabpipe.errors import PipelineError

if TYPE_CHECKING:
    import numpy as np

# Metrics where a smaller value is better; every other metric is better when larger.
LOWER_IS_BETTER = {"log_loss"}
TESTS = ("bootstrap", "mcnemar")


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

    def as_dict(self) -> dict[str, Any]:
        return {k: round(v, 6) if isinstance(v, float) else v for k, v in self.__dict__.items()}


def minimum_rules(metrics: dict[str, Any], minimums: dict[str, float]) -> list[Rule]:
    rules = []
    for name, minimum in minimums.items():
        if name not in metrics:
            raise PipelineError(f"params.yaml: gate.min names metric '{name}', which evaluate does not report")
        value = float(metrics[name])
        passed = value >= float(minimum)
        rules.append(Rule(f"min_{name}", passed, f"{name} {value:.4f} is below the minimum {float(minimum):.4f}"))
    return rules


def drift_rule(validation: dict[str, Any], max_share: float) -> Rule:
    share = float(validation.get("drifted_share", 1.0))
    return Rule(
        "max_drifted_share",
        share <= max_share,
        f"drifted feature share {share:.2f} is above the maximum {max_share:.2f}",
    )


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
        f"by more than the tolerance {tolerance}",
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
    candidate: np.ndarray,
    champion: np.ndarray,
    classes: list[str],
    *,
    test: str,
    rounds: int,
    seed: int,
    alpha: float,
) -> Comparison:
    """Compare two models' test probabilities, paired by row.

    bootstrap: resample rows with replacement, recompute the metric for both models on the same
    sample; the p-value is the share of samples where the candidate is not better.
    mcnemar: exact one-sided test on the rows only one of the two models classifies correctly.
    """
    import numpy as np

    from tabpipe.evaluation import score

    if test not in TESTS:
        raise PipelineError(f"params.yaml: gate.champion.test is '{test}', expected one of {', '.join(TESTS)}")
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    cand, champ = score(metric, y, candidate, classes), score(metric, y, champion, classes)
    rng = np.random.default_rng(seed)
    diffs = np.empty(rounds)
    for i in range(rounds):
        rows = rng.integers(0, len(y), len(y))
        diffs[i] = sign * (
            score(metric, y[rows], candidate[rows], classes) - score(metric, y[rows], champion[rows], classes)
        )
    low, high = np.quantile(diffs, [alpha / 2, 1 - alpha / 2])
    p_value = float((diffs <= 0).mean()) if test == "bootstrap" else mcnemar(y, candidate, champion, classes)
    return Comparison(metric, cand, champ, sign * (cand - champ), float(low), float(high), p_value, test)


def mcnemar(y: np.ndarray, candidate: np.ndarray, champion: np.ndarray, classes: list[str]) -> float:
    """One-sided exact McNemar p-value for 'the candidate classifies more rows correctly'."""
    import numpy as np
    from scipy.stats import binomtest

    labels = np.asarray(classes)
    right_candidate = labels[candidate.argmax(axis=1)] == y
    right_champion = labels[champion.argmax(axis=1)] == y
    only_candidate = int((right_candidate & ~right_champion).sum())
    only_champion = int((~right_candidate & right_champion).sum())
    if only_candidate + only_champion == 0:
        return 1.0
    return float(binomtest(only_candidate, only_candidate + only_champion, 0.5, alternative="greater").pvalue)


def verdict(rules: list[Rule]) -> tuple[dict[str, bool], list[str]]:
    """The flat gate.json (passed + one key per rule) and one line per failed rule."""
    flags = {rule.name: rule.passed for rule in rules}
    flags["passed"] = all(flags.values())
    return flags, [f"gate: {rule.name}: {rule.detail}" for rule in rules if not rule.passed]


def compare_models(
    candidate: Any, champion: Any, x: Any, y: np.ndarray, params: dict[str, Any], seed: int
) -> Comparison:
    """Predict the shared test set with both models and compare them on `params['metric']`."""
    from tabpipe.evaluation import METRICS, predict

    metric = params["metric"]
    if metric not in METRICS:
        raise PipelineError(f"params.yaml: gate.champion.metric is '{metric}', expected one of {', '.join(METRICS)}")
    classes = [str(c) for c in candidate.classes_]
    if [str(c) for c in champion.classes_] != classes:
        raise PipelineError(
            f"gate: the champion predicts classes {list(champion.classes_)}, the candidate {classes}: not comparable"
        )
    _, candidate_proba = predict(candidate, x)
    _, champion_proba = predict(champion, x)
    return compare(
        metric,
        y,
        candidate_proba,
        champion_proba,
        classes,
        test=params["test"],
        rounds=int(params["rounds"]),
        seed=seed,
        alpha=float(params["alpha"]),
    )
