"""The validate stage's decision: schema checks on each split plus drift between them.

The checks see every row (they are cheap and must catch every bad one); the drift tests and the
report gain nothing from all rows of a large split, so they run on a seeded sample of each.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tabpipe.data import checks
from tabpipe.data.drift import DriftResult, load_evidently, measure

if TYPE_CHECKING:
    import pandas as pd

    from tabpipe.core.settings import Drift, Validate
    from tabpipe.data.schema import Schema

log = logging.getLogger("validate")


@dataclass(frozen=True)
class Outcome:
    metrics: dict[str, Any]
    failures: list[str]
    report: Any

    @property
    def passed(self) -> bool:
        return not self.failures


def validate(splits: dict[str, pd.DataFrame], schema: Schema, settings: Validate, *, seed: int) -> Outcome:
    """Check every split against the schema, then measure drift of the last split against the first.

    `splits` maps a file name (used in messages) to its frame; the first is the drift reference.
    Drift and the report use at most `settings.sample_rows` rows of each split, drawn with `seed`.
    """
    limits = settings.for_dataset(schema.name)
    failures: list[str] = []
    for file, frame in splits.items():
        failures += [p.line(file) for p in checks.run_all(frame, schema, limits)]
    names = list(splits)
    reference_name, current_name = names[0], names[-1]
    drift, report, sampled = None, None, {}
    if not failures:
        sampled = {name: sample(frame, limits.sample_rows, seed) for name, frame in splits.items()}
        log.info(sampling_note(splits, sampled))
        drift, report = measure_drift(sampled[reference_name], sampled[current_name], schema, limits.drift)
        failures += drift_failures(drift, limits.drift, current_name)
    metrics = summarise(splits, schema, drift, len(failures))
    metrics |= {f"drift_rows_{_stem(name)}": len(frame) for name, frame in sampled.items()}
    return Outcome(metrics, failures, report)


def measure_drift(
    reference: pd.DataFrame, current: pd.DataFrame, schema: Schema, settings: Drift
) -> tuple[DriftResult, Any]:
    """Drift and the data summary, saying what runs and how long it took: on adult they take seconds."""
    features = len(schema.feature_names)
    log.info("loading Evidently for the drift tests on %d features and the data summary", features)
    started = time.perf_counter()
    load_evidently()
    log.info("Evidently loaded in %.1f s; running them", time.perf_counter() - started)
    started = time.perf_counter()
    result, report = measure(reference, current, schema, settings, summary=True)
    seconds = time.perf_counter() - started
    log.info("drift tests and data summary done in %.1f s: %d of %d features drifted", seconds, result.count, features)
    return result, report


def sample(frame: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    """A seeded sample of `rows` rows; the whole frame when `rows` is 0 or the frame is no larger."""
    if not rows or len(frame) <= rows:
        return frame
    return frame.sample(n=rows, random_state=seed)


def sampling_note(splits: dict[str, pd.DataFrame], sampled: dict[str, pd.DataFrame]) -> str:
    """One line saying how many rows of each split drift and the report saw."""
    counts = " and ".join(f"{len(sampled[name])} of {len(frame)} {_stem(name)} rows" for name, frame in splits.items())
    if all(len(sampled[name]) == len(frame) for name, frame in splits.items()):
        return f"drift and report on all rows: {counts} (validate.sample_rows)"
    return f"drift and report on a seeded sample of {counts} (validate.sample_rows)"


def drift_failures(drift: DriftResult, settings: Drift, file: str) -> list[str]:
    if drift.share <= settings.max_drifted_share:
        return []
    columns = ", ".join(name for name, drifted in drift.drifted.items() if drifted)
    return [
        f"{file}: columns {columns}: drifted share {drift.share:.2f} exceeds "
        f"validate.drift.max_drifted_share {settings.max_drifted_share:.2f}"
    ]


def summarise(
    splits: dict[str, pd.DataFrame], schema: Schema, drift: DriftResult | None, failed: int
) -> dict[str, Any]:
    """Flat scalars for `dvc metrics`; drift figures are absent when the data was too broken to measure."""
    import pandas as pd

    everything = pd.concat(list(splits.values()), ignore_index=True)
    features = [c for c in schema.feature_names if c in everything.columns]
    cells = everything[features].size
    metrics: dict[str, Any] = {f"rows_{_stem(name)}": len(frame) for name, frame in splits.items()}
    metrics["missing_share"] = round(float(everything[features].isna().sum().sum()) / cells, 6) if cells else 0.0
    metrics["duplicate_share"] = round(max(checks.duplicate_share(f) for f in splits.values()), 6)
    if drift is not None:
        metrics["drifted_columns"] = drift.count
        metrics["drifted_share"] = round(drift.share, 6)
        metrics["drift_score"] = {name: round(score, 6) for name, score in drift.scores.items()}
    metrics["checks_failed"] = failed
    metrics["passed"] = failed == 0
    return metrics


def _stem(name: str) -> str:
    return name.rsplit("/", 1)[-1].split(".", 1)[0]
