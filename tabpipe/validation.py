"""The validate stage's decision: schema checks on each split plus drift between them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tabpipe import checks
from tabpipe.drift import DriftResult, DriftSettings, measure

if TYPE_CHECKING:
    import pandas as pd

    from tabpipe.schema import Schema


@dataclass(frozen=True)
class Outcome:
    metrics: dict[str, Any]
    failures: list[str]
    report: Any

    @property
    def passed(self) -> bool:
        return not self.failures


def thresholds(params: dict[str, Any]) -> checks.Thresholds:
    known = {k: params[k] for k in checks.Thresholds.__dataclass_fields__ if k in params}
    return checks.Thresholds(**known)


def for_dataset(params: dict[str, Any], dataset: str) -> dict[str, Any]:
    """The `validate` params with the dataset's own overrides (`per_dataset.<name>`) applied on top."""
    overrides = (params.get("per_dataset") or {}).get(dataset) or {}
    merged = {**params, **{k: v for k, v in overrides.items() if k != "drift"}}
    merged["drift"] = {**(params.get("drift") or {}), **(overrides.get("drift") or {})}
    return merged


def validate(splits: dict[str, pd.DataFrame], schema: Schema, params: dict[str, Any]) -> Outcome:
    """Check every split against the schema, then measure drift of the last split against the first.

    `splits` maps a file name (used in messages) to its frame; the first is the drift reference.
    """
    params = for_dataset(params, schema.name)
    limits = thresholds(params)
    settings = DriftSettings.from_params(params.get("drift") or {})
    failures: list[str] = []
    for file, frame in splits.items():
        failures += [p.line(file) for p in checks.frame(frame, schema, limits)]
    names = list(splits)
    reference_name, current_name = names[0], names[-1]
    drift, report = None, None
    if not failures:
        drift, report = measure(splits[reference_name], splits[current_name], schema, settings, summary=True)
        failures += drift_failures(drift, settings, current_name)
    return Outcome(summarise(splits, schema, drift, len(failures)), failures, report)


def drift_failures(drift: DriftResult, settings: DriftSettings, file: str) -> list[str]:
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
