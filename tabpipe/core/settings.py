"""Typed settings, one class per params.yaml section, parsed and checked where an entry point starts.

Every key is required (only a candidate's `fixed` and `grid` may be left out, meaning none):
params.yaml is the one place a value is set, so no code default can disagree with it. A missing,
unknown or ill-typed key, or an unknown section, is one line naming it. Every choice is a Literal
here, the one list the code that acts on it reads (`get_args`), and `read` parses every section,
so a typo stops the first stage that runs, not the stage that uses the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tabpipe.core.catalog import ESTIMATORS
from tabpipe.core.errors import PipelineError
from tabpipe.core.files import read_mapping

DatasetName = Literal["iris", "adult", "employment", "synthetic", "california", "csv"]
Task = Literal["auto", "classification", "regression"]
ColumnKind = Literal["numeric", "categorical"]
Impute = Literal["median", "mean"]
EstimatorName = Literal[tuple(ESTIMATORS)]  # the catalog's names (tabpipe/core/catalog.py), listed once
Metric = Literal[
    "accuracy",
    "balanced_accuracy",
    "precision_macro",
    "recall_macro",
    "f1_macro",
    "roc_auc",
    "log_loss",
    "brier",
    "ece",
]
# A binary decision's metrics, reported when `decision` sets a threshold or costs (tabpipe/task/classification.py).
DecisionMetric = Literal["precision_positive", "recall_positive", "f1_positive", "expected_cost"]
Objective = Literal["argmax", "f1", "balanced_accuracy", "cost"]
RegressionMetric = Literal["rmse", "mae", "r2"]
AnyMetric = Literal[Metric, RegressionMetric, DecisionMetric]
# Metrics that are better when larger, and a regressor's interval coverage: what the monitor bounds
# by how far each may fall (an error metric such as rmse rises instead; bound r2 for a regressor).
Falling = Literal[
    "accuracy", "balanced_accuracy", "precision_macro", "recall_macro", "f1_macro", "roc_auc", "r2", "interval_coverage"
]
# Metrics that are better when smaller: what the monitor bounds by how far each may rise.
Rising = Literal["log_loss", "brier", "ece", "expected_cost", "rmse", "mae"]
PairedTest = Literal["bootstrap", "mcnemar"]
Runtime = Literal["onnx", "auto", "sklearn"]  # what serves: see serve.runtime in params.yaml
# Evidently 0.7's drift tests by the column kind they accept (its stattest registry).
NumericDrift = Literal[
    "anderson",
    "cramer_von_mises",
    "ed",
    "empirical_mmd",
    "es",
    "hellinger",
    "jensenshannon",
    "kl_div",
    "ks",
    "mannw",
    "psi",
    "t_test",
    "wasserstein",
]
CategoricalDrift = Literal[
    "TVD", "chisquare", "fisher_exact", "g_test", "hellinger", "jensenshannon", "kl_div", "psi", "z"
]


# scikit-learn's scorer names (sklearn.metrics.get_scorer_names() of the pinned version; a unit test
# keeps them equal). Importing sklearn.metrics to check a name cost every stage 1-2 s, paid again by
# the gate and package stages of each experiment, which use no scorer.
# fmt: off
SCORERS = frozenset((
    "accuracy", "adjusted_mutual_info_score", "adjusted_rand_score", "average_precision",
    "balanced_accuracy", "completeness_score", "d2_absolute_error_score", "d2_brier_score",
    "d2_log_loss_score", "explained_variance", "f1", "f1_macro", "f1_micro", "f1_samples",
    "f1_weighted", "fowlkes_mallows_score", "homogeneity_score", "jaccard", "jaccard_macro",
    "jaccard_micro", "jaccard_samples", "jaccard_weighted", "matthews_corrcoef", "mutual_info_score",
    "neg_brier_score", "neg_log_loss", "neg_max_error", "neg_mean_absolute_error",
    "neg_mean_absolute_percentage_error", "neg_mean_gamma_deviance", "neg_mean_poisson_deviance",
    "neg_mean_squared_error", "neg_mean_squared_log_error", "neg_median_absolute_error",
    "neg_negative_likelihood_ratio", "neg_root_mean_squared_error", "neg_root_mean_squared_log_error",
    "normalized_mutual_info_score", "positive_likelihood_ratio", "precision", "precision_macro",
    "precision_micro", "precision_samples", "precision_weighted", "r2", "rand_score", "recall",
    "recall_macro", "recall_micro", "recall_samples", "recall_weighted", "roc_auc", "roc_auc_ovo",
    "roc_auc_ovo_weighted", "roc_auc_ovr", "roc_auc_ovr_weighted", "top_k_accuracy", "v_measure_score",
))
# fmt: on


def scorer(name: str) -> str:
    """A scikit-learn scorer's name (`train.scoring`, `evaluate.importance_scoring`), checked against its registry."""
    if name not in SCORERS:
        raise ValueError("is not a scikit-learn scorer (sklearn.metrics.get_scorer_names())")
    return name


Scorer = Annotated[str, AfterValidator(scorer)]
Level = Annotated[float, Field(gt=0, lt=1)]  # a prediction interval's target coverage


class Section(BaseModel):
    """One params.yaml section: strict types, no unknown keys, immutable once parsed."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    key: ClassVar[str] = ""


class Base(Section):
    key: ClassVar[str] = "base"
    seed: int


class ColumnLimits(Section):
    """A CSV column's declared limits (`data.limits.<column>`): enforced like a built-in schema's.

    An absent minimum or maximum is no bound; a categorical column lists its categories.
    """

    minimum: float | None = None
    maximum: float | None = None
    categories: list[str] | None = None
    nullable: bool


class Synthetic(Section):
    """The generated dataset (`data.synthetic`): its size, how learnable its target is, how much is missing."""

    rows: Annotated[int, Field(ge=100)]
    signal: Annotated[float, Field(gt=0)]
    label_noise: Annotated[float, Field(ge=0, lt=1)]
    missing_share: Annotated[float, Field(ge=0, lt=1)]


class Data(Section):
    """`data.key` is `key_columns` here: `key` names every section's params.yaml key."""

    model_config = ConfigDict(**Section.model_config, serialize_by_alias=True)
    key: ClassVar[str] = "data"
    dataset: DatasetName
    task: Task
    test_size: float
    fraction: float
    split: Literal["random", "time"]
    time_column: str
    key_columns: list[str] = Field(alias="key")
    iris_csv: str
    years: list[int]
    path: str
    exclude: list[str]
    name: str
    target: str
    column_types: dict[str, ColumnKind]
    missing_markers: list[str]
    limits: dict[str, ColumnLimits]
    synthetic: Synthetic


class Drift(Section):
    """Per-feature drift tests: the method and threshold for each column kind, and the share that fails."""

    num_method: NumericDrift
    num_threshold: float
    cat_method: CategoricalDrift
    cat_threshold: float
    max_drifted_share: float


class DriftOverride(Section):
    num_method: NumericDrift | None = None
    num_threshold: float | None = None
    cat_method: CategoricalDrift | None = None
    cat_threshold: float | None = None
    max_drifted_share: float | None = None


class ValidateOverride(Section):
    """A dataset's own values for some `validate` keys; unset keys keep the section's value."""

    max_missing_share: float | None = None
    max_duplicate_share: float | None = None
    min_rows_per_class: int | None = None
    drift: DriftOverride | None = None


class Validate(Section):
    key: ClassVar[str] = "validate"
    max_missing_share: float
    max_duplicate_share: float
    min_rows_per_class: int
    sample_rows: Annotated[int, Field(ge=0)]
    drift: Drift
    per_dataset: dict[str, ValidateOverride]

    def for_dataset(self, name: str) -> Validate:
        """These settings with the dataset's overrides (`per_dataset.<name>`) applied on top."""
        override = self.per_dataset.get(name)
        if override is None:
            return self
        changes = override.model_dump(exclude_none=True, exclude={"drift"})
        drift = self.drift
        if override.drift is not None:
            drift = drift.model_copy(update=override.drift.model_dump(exclude_none=True))
        return self.model_copy(update={**changes, "drift": drift})


class Featurize(Section):
    key: ClassVar[str] = "featurize"
    numeric_impute: Impute
    scale: bool
    min_frequency: int


class Candidate(Section):
    """One model family to try: an estimator name, fixed settings and a grid to search."""

    estimator: EstimatorName
    fixed: dict[str, Any] = {}
    grid: dict[str, list[Any]] = {}

    @field_validator("grid")
    @classmethod
    def _non_empty(cls, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
        empty = [key for key, values in grid.items() if not values]
        if empty:
            raise ValueError(f"{empty[0]} must be a non-empty list")
        return grid


class Search(Section):
    """How the candidates' configurations share the training budget (`train.search`)."""

    method: Literal["halving", "grid"]
    factor: Annotated[int, Field(ge=2)]
    min_rows: Annotated[int, Field(ge=1)]
    max_rows: Annotated[int, Field(ge=0)]


def _some(candidates: dict[str, Candidate]) -> dict[str, Candidate]:
    if not candidates:
        raise ValueError("is empty")
    return candidates


Candidates = Annotated[dict[str, Candidate], AfterValidator(_some)]


class Regression(Section):
    """What a regression task searches instead (`train.regression`): its scorer and its regressors."""

    scoring: Scorer
    candidates: Candidates
    interval: Level


class Train(Section):
    key: ClassVar[str] = "train"
    experiment: str
    scoring: Scorer
    cv_folds: int
    n_jobs: int
    class_weight: Literal["none", "balanced"]
    calibration: Literal["none", "sigmoid", "isotonic"]
    search: Search
    candidates: Candidates
    regression: Regression

    def for_task(self, task: str) -> Train:
        """These settings with the task's scorer and candidates (classification's are the section's own)."""
        if task != "regression":
            return self
        return self.model_copy(update={"scoring": self.regression.scoring, "candidates": self.regression.candidates})


class DecisionCost(Section):
    """What each mistake costs, in any one unit; unset (null) leaves expected cost unreported."""

    false_positive: Annotated[float, Field(ge=0)] | None
    false_negative: Annotated[float, Field(ge=0)] | None

    @property
    def set(self) -> bool:
        return self.false_positive is not None and self.false_negative is not None


class Decision(Section):
    """How a binary classifier turns probabilities into its label (docs/training.md, The decision)."""

    key: ClassVar[str] = "decision"
    objective: Objective
    positive_class: str
    cost: DecisionCost

    @model_validator(mode="after")
    def _costs_for_cost(self) -> Decision:
        if self.objective == "cost" and not self.cost.set:
            raise ValueError("objective cost needs cost.false_positive and cost.false_negative")
        return self


class EvaluateRegression(Section):
    importance_scoring: Scorer
    slice_metric: RegressionMetric


class Evaluate(Section):
    key: ClassVar[str] = "evaluate"
    importance_scoring: Scorer
    importance_repeats: int
    importance_rows: int
    slices: list[str]
    slice_bins: Annotated[int, Field(ge=2)]
    min_slice_rows: Annotated[int, Field(ge=1)]
    slice_metric: Metric
    slice_rounds: Annotated[int, Field(ge=10)]
    explain_rows: Annotated[int, Field(ge=0)]
    regression: EvaluateRegression

    def for_task(self, task: str) -> Evaluate:
        """These settings with the task's importance scorer and slices' main metric."""
        if task != "regression":
            return self
        rule = self.regression
        return self.model_copy(
            update={"importance_scoring": rule.importance_scoring, "slice_metric": rule.slice_metric}
        )


class ChampionRule(Section):
    """How a candidate is compared with the serving champion on the same test rows."""

    metric: AnyMetric
    tolerance: float
    test: PairedTest
    rounds: int
    alpha: float
    require_improvement: bool
    on_schema_change: Literal["compare", "new_lineage", "refuse"]
    when_incomparable: Literal["new_lineage", "refuse"]
    min_rows: Annotated[int, Field(ge=1)]  # test rows new to the champion needed to compare at all


class CompiledRule(Section):
    """How closely the served (compiled) model must agree with the trained pipeline on the test set."""

    min_label_agreement: float
    max_probability_difference: float
    max_relative_difference: float  # a regressor's values, relative to their spread


class GateRegression(Section):
    """A regression task's thresholds and champion metric, in place of classification's."""

    min: dict[RegressionMetric, float]
    max: dict[RegressionMetric, float]
    champion_metric: RegressionMetric
    tolerance: float
    interval_tolerance: float  # |interval_coverage - interval_level| at most this


class GateSlices(Section):
    """Rules for every slice large enough to judge (metrics/slices.json): a floor per metric, a cap per
    column on a difference between its slices."""

    min: dict[str, float]
    max_difference: dict[str, float]


class Gate(Section):
    key: ClassVar[str] = "gate"
    registered_model: str
    min: dict[AnyMetric, float]
    max: dict[AnyMetric, float]
    slices: GateSlices
    champion: ChampionRule
    compiled: CompiledRule
    regression: GateRegression

    def for_task(self, task: str) -> Gate:
        """These rules with the task's thresholds and champion metric (classification's are the section's own)."""
        if task != "regression":
            return self
        rule = self.regression
        champion = self.champion.model_copy(update={"metric": rule.champion_metric, "tolerance": rule.tolerance})
        return self.model_copy(update={"min": rule.min, "max": rule.max, "champion": champion})


class Serve(Section):
    key: ClassVar[str] = "serve"
    max_rows: int
    explain_max_rows: Annotated[int, Field(ge=1)]
    max_body_bytes: int
    workers: int
    access_log: bool
    prediction_log: str
    runtime: Runtime
    unseen: Literal["answer", "refuse"]
    log_format: Literal["text", "json"]


class Monitor(Section):
    key: ClassVar[str] = "monitor"
    window: int
    min_rows: int
    drift: Drift
    important_features: int
    prediction_threshold: float
    max_metric_drop: dict[Falling, float]
    max_metric_rise: dict[Rising, float]


class Notify(Section):
    """How hard to try a team's webhook (its URL is a secret: TABPIPE_WEBHOOK_URL, never params)."""

    key: ClassVar[str] = "notify"
    attempts: int
    backoff: float
    timeout: float


S = TypeVar("S", bound=Section)


class Params:
    """params.yaml as read from disk; each section is parsed into its settings class on request."""

    def __init__(self, raw: dict[str, Any], source: str = "params.yaml") -> None:
        self.raw = raw
        self.source = source

    def section(self, kind: type[S]) -> S:
        value = self.raw.get(kind.key)
        if not isinstance(value, dict):
            raise PipelineError(f"{self.source}: missing section '{kind.key}'")
        return parse(kind, value, f"{self.source}: {kind.key}")

    @property
    def seed(self) -> int:
        """base.seed: every random choice in the pipeline derives from it."""
        return self.section(Base).seed


def read(path: str | Path, *, check: bool = True) -> Params:
    """params.yaml with every section it holds checked now: whichever stage runs first reports a typo.

    `check=False` leaves the other sections to whoever reads them: `tabpipe notify` must still
    report a pipeline that failed on a typo elsewhere.
    """
    raw = read_mapping(path, "stage sections")
    known = {kind.key: kind for kind in _sections(Section)}
    unknown = [str(name) for name in raw if name not in known]
    if unknown:
        raise PipelineError("\n".join(f"{path}: {name}: unknown section" for name in unknown))
    params = Params(raw, str(path))
    if not check:
        return params
    problems = []
    for name in raw:
        try:
            params.section(known[name])
        except PipelineError as error:
            problems.append(str(error))
    if problems:
        raise PipelineError("\n".join(problems))
    return params


def _sections(kind: type[Section]) -> list[type[Section]]:
    """Every settings class that is a params.yaml section (has a key)."""
    found = [kind] if kind.key else []
    for sub in kind.__subclasses__():
        found += _sections(sub)
    return found


def parse(kind: type[S], value: dict[str, Any], where: str) -> S:
    """Validate one mapping into `kind`; each problem is a line `<where>.<key>: <what is wrong>`."""
    try:
        return kind.model_validate(value)
    except ValidationError as error:
        raise PipelineError("\n".join(_line(where, e) for e in error.errors())) from None


def _line(where: str, error: Any) -> str:
    key = "".join(f".{part}" for part in error["loc"])
    if error["type"] == "missing":
        return f"{where}{key}: missing"
    if error["type"] == "extra_forbidden":
        return f"{where}{key}: unknown key"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}{key}: {message} (got {error['input']!r})"
