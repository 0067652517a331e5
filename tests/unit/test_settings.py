"""params.yaml parsed into typed settings: every section parses, and every mistake is one line naming its key."""

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from tabpipe.core import settings
from tabpipe.core.errors import PipelineError
from tests.support.paths import ROOT

PARAMS = settings.read(ROOT / "params.yaml")
SECTIONS = [
    settings.Base,
    settings.Data,
    settings.Validate,
    settings.Featurize,
    settings.Train,
    settings.Decision,
    settings.Evaluate,
    settings.Gate,
    settings.Serve,
    settings.Monitor,
    settings.Notify,
]
BY_KEY = {kind.key: kind for kind in SECTIONS}


def edited(dotted: str, value: Any = ...) -> settings.Params:
    """params.yaml's content with one key set to `value` (removed when no value is given)."""
    raw = copy.deepcopy(PARAMS.raw)
    *path, last = dotted.split(".")
    parent = raw
    for key in path:
        parent = parent[key]
    if value is ...:
        del parent[last]
    else:
        parent[last] = value
    return settings.Params(raw)


def error_of(params: settings.Params, section: str) -> str:
    with pytest.raises(PipelineError) as error:
        params.section(BY_KEY[section])
    return str(error.value)


def test_every_section_of_params_yaml_parses_with_nothing_lost() -> None:
    assert set(BY_KEY) == set(PARAMS.raw), "a params.yaml section without settings class (or the reverse)"
    for kind in SECTIONS:
        parsed = PARAMS.section(kind)
        assert isinstance(parsed, kind)
        assert parsed.model_dump(exclude_unset=True) == PARAMS.raw[kind.key], kind.key
    assert PARAMS.seed == PARAMS.raw["base"]["seed"]


@pytest.mark.parametrize(
    "dotted",
    [
        *(f"{kind.key}.{key}" for kind in SECTIONS for key in PARAMS.raw[kind.key]),
        "validate.drift.num_method",
        "monitor.drift.max_drifted_share",
        "gate.champion.alpha",
        "train.candidates.logreg.estimator",
    ],
)
def test_a_missing_key_is_one_line_naming_it(dotted: str) -> None:
    assert error_of(edited(dotted), dotted.split(".")[0]) == f"params.yaml: {dotted}: missing"


@pytest.mark.parametrize(
    "dotted",
    [
        "train.cv_fold",
        "base.sead",
        "validate.drift.num_treshold",
        "validate.per_dataset.employment.max_duplicates",
        "gate.champion.rouns",
    ],
)
def test_an_unknown_key_is_one_line_naming_it(dotted: str) -> None:
    assert error_of(edited(dotted, 1), dotted.split(".")[0]) == f"params.yaml: {dotted}: unknown key"


@pytest.mark.parametrize(
    ("dotted", "value", "named"),
    [
        ("train.cv_folds", "5", "train.cv_folds"),
        ("train.cv_folds", 5.0, "train.cv_folds"),
        ("featurize.scale", "yes", "featurize.scale"),
        ("data.years", [2015.5], "data.years.0"),
        ("data.test_size", "0.25", "data.test_size"),
        ("gate.min", {"roc_auc": "high"}, "gate.min.roc_auc"),
        ("validate.drift.num_threshold", None, "validate.drift.num_threshold"),
        ("train.candidates.forest.grid.max_depth", [], "train.candidates.forest.grid"),
        ("train.candidates", {}, "train.candidates"),
    ],
)
def test_an_ill_typed_key_is_one_line_naming_it(dotted: str, value: Any, named: str) -> None:
    message = error_of(edited(dotted, value), dotted.split(".")[0])
    assert "\n" not in message
    assert message.startswith(f"params.yaml: {named}: ")
    assert "missing" not in message and "unknown key" not in message


def test_every_problem_gets_its_own_line() -> None:
    raw = copy.deepcopy(PARAMS.raw)
    raw["train"]["cv_folds"] = "5"
    del raw["train"]["scoring"]
    raw["train"]["folds"] = 5
    lines = error_of(settings.Params(raw), "train").splitlines()
    assert sorted(lines) == [
        "params.yaml: train.cv_folds: Input should be a valid integer (got '5')",
        "params.yaml: train.folds: unknown key",
        "params.yaml: train.scoring: missing",
    ]


def test_a_missing_section_is_named() -> None:
    assert error_of(edited("featurize"), "featurize") == "params.yaml: missing section 'featurize'"


def test_the_source_file_names_the_lines(tmp_path: Path) -> None:
    raw = copy.deepcopy(PARAMS.raw)
    del raw["serve"]["workers"]
    path = tmp_path / "other.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(PipelineError) as error:
        settings.read(path).section(settings.Serve)
    assert str(error.value) == f"{path}: serve.workers: missing"


@pytest.mark.parametrize(
    ("text", "message"),
    [("a: [1", "not valid YAML"), ("- 1\n", "expected a mapping"), (None, "file not found")],
)
def test_bad_params_file_is_one_line(tmp_path: Path, text: str | None, message: str) -> None:
    if text is not None:
        (tmp_path / "params.yaml").write_text(text)
    with pytest.raises(PipelineError, match=message) as error:
        settings.read(tmp_path / "params.yaml")
    assert "\n" not in str(error.value)


def test_per_dataset_overrides_apply_to_their_dataset_only() -> None:
    validate = PARAMS.section(settings.Validate)
    employment = validate.for_dataset("employment")
    assert validate.max_duplicate_share == 0.05
    assert employment.max_duplicate_share == 0.5
    assert employment == validate.model_copy(update={"max_duplicate_share": 0.5})
    assert validate.for_dataset("iris") == validate
    assert validate.for_dataset("adult") == validate


def test_a_drift_override_changes_only_its_own_keys() -> None:
    validate = edited("validate.per_dataset.employment.drift", {"cat_threshold": 0.2}).section(settings.Validate)
    employment = validate.for_dataset("employment")
    assert employment.drift == validate.drift.model_copy(update={"cat_threshold": 0.2})
    assert employment.max_duplicate_share == 0.5
    assert validate.for_dataset("iris").drift.cat_threshold == validate.drift.cat_threshold == 0.1


@given(st.integers())
def test_any_int_seed_round_trips_through_yaml(seed: int) -> None:
    raw = yaml.safe_load(yaml.safe_dump({**PARAMS.raw, "base": {"seed": seed}}))
    assert settings.Params(raw).seed == seed


@given(st.one_of(st.text(), st.floats(allow_nan=False), st.booleans(), st.none(), st.lists(st.integers())))
def test_only_an_int_is_a_seed(seed: object) -> None:
    with pytest.raises(PipelineError) as error:
        _ = settings.Params({"base": {"seed": seed}}).seed
    message = str(error.value)
    assert "\n" not in message and message.startswith("params.yaml: base.seed: ")


def test_an_unknown_section_is_one_line_naming_it(tmp_path: Path) -> None:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["trian"] = raw["train"]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(PipelineError) as error:
        settings.read(tmp_path / "params.yaml")
    assert str(error.value) == f"{tmp_path / 'params.yaml'}: trian: unknown section"


TYPOS = [
    ("data.dataset", "irsi"),
    ("data.column_types", {"age": "number"}),
    ("validate.drift.num_method", "kss"),
    ("validate.drift.cat_method", "ks"),
    ("validate.per_dataset.employment.drift", {"cat_method": "wasserstein"}),
    ("featurize.numeric_impute", "mode"),
    ("train.scoring", "roc"),
    ("train.search.method", "halve"),
    ("train.candidates.logreg.estimator", "logistic"),
    ("evaluate.importance_scoring", "acuracy"),
    ("gate.min", {"roc_auc": 0.85, "auc": 0.8}),
    ("gate.champion.metric", "auc"),
    ("gate.champion.test", "bootstrapp"),
    ("serve.runtime", "onx"),
    ("monitor.drift.num_method", "psi2"),
    ("monitor.max_metric_drop", {"acc": 0.05}),
]


@pytest.mark.parametrize(("dotted", "value"), TYPOS, ids=[dotted for dotted, _ in TYPOS])
def test_a_typo_in_any_choice_stops_reading_params_with_one_line_naming_the_key(
    tmp_path: Path, dotted: str, value: object
) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(edited(dotted, value).raw))
    with pytest.raises(PipelineError) as error:
        settings.read(path)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: {dotted}"), message


def test_the_first_stage_to_run_reports_a_typo_in_a_later_stages_params(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`dvc exp run -S gate.champion.test=bootstrapp` stops at ingest, before any work, not at the gate."""
    from stages import ingest
    from tabpipe.core import stage
    from tests.support.commands import stage_argv

    (tmp_path / "params.yaml").write_text(yaml.safe_dump(edited("gate.champion.test", "bootstrapp").raw))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", stage_argv("ingest"))
    with pytest.raises(SystemExit) as stopped:
        stage.run(ingest.main)
    assert stopped.value.code == 1
    assert capsys.readouterr().err.splitlines() == [
        "error: params.yaml: gate.champion.test: Input should be 'bootstrap' or 'mcnemar' (got 'bootstrapp')"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"], "ingest wrote something"


def test_the_choices_are_the_ones_the_code_and_evidently_accept() -> None:
    from typing import get_args

    from evidently.legacy.calculations.stattests import registry

    from tabpipe.model import estimators

    assert get_args(settings.EstimatorName) == tuple(estimators.ESTIMATORS)  # one list: the catalog's
    assert set(estimators.names("classification")) | set(estimators.names("regression")) == set(estimators.ESTIMATORS)
    kinds: dict[str, set[str]] = {}
    for name, by_type in registry._registered_stat_tests.items():
        for column_type in by_type:
            kinds.setdefault(str(column_type.value), set()).add(name)
    assert set(get_args(settings.NumericDrift)) == kinds["num"]
    assert set(get_args(settings.CategoricalDrift)) == kinds["cat"]


def test_notify_reads_its_section_even_when_another_has_a_typo(tmp_path: Path) -> None:
    """`tabpipe notify` reports a pipeline that failed on a typo, so it must not fail on that typo itself."""
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(edited("gate.champion.test", "bootstrapp").raw))
    with pytest.raises(PipelineError, match=r"gate\.champion\.test"):
        settings.read(path)
    assert settings.read(path, check=False).section(settings.Notify) == PARAMS.section(settings.Notify)


def test_the_scorer_names_are_scikit_learns() -> None:
    """settings checks `train.scoring` against its own copy of the names, to spare every stage the import."""
    from sklearn.metrics import get_scorer_names

    assert set(get_scorer_names()) == settings.SCORERS
