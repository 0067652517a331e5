"""The synthetic dataset: deterministic, sized and tuned by params, mixed and gappy, always within its schema."""

import copy
import math
from itertools import pairwise
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tabpipe.core import settings as params
from tabpipe.core.errors import PipelineError
from tabpipe.data import checks, datasets, prepared
from tests.support.params import params_section
from tests.support.paths import RAW, ROOT

DATA = params_section(params.Data, dataset="synthetic")
VALIDATE = params_section(params.Validate)


def synthetic(seed: int = 42, **values: object) -> datasets.Loaded:
    """The synthetic dataset with `values` replacing keys of params.yaml's data.synthetic."""
    data = DATA.model_copy(update={"synthetic": DATA.synthetic.model_copy(update=values)})
    return datasets.load(data, ROOT, RAW, seed=seed)


def test_same_params_give_the_same_bytes_and_another_seed_other_rows(tmp_path: Path) -> None:
    data = DATA.model_copy(update={"synthetic": DATA.synthetic.model_copy(update={"rows": 3000})})
    for folder in ("a", "b"):
        prepared.write(tmp_path / folder, datasets.prepare(data, 42, ROOT, RAW), "synthetic")
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert files == ["schema.json", "source.json", "test.parquet", "train.parquet"]
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    pd.testing.assert_frame_equal(synthetic(rows=500).frame, synthetic(rows=500).frame)
    assert not synthetic(rows=500).frame.equals(synthetic(seed=43, rows=500).frame)


def test_mixed_kinds_as_the_other_datasets_give_them() -> None:
    loaded = synthetic(rows=5000)
    frame, schema = loaded.frame, loaded.schema
    assert list(frame.columns) == schema.columns
    assert len(schema.numeric) == 10 and len(schema.categorical) == 4
    assert all(frame[c].dtype == "float64" for c in schema.numeric)
    adult = datasets.load(params_section(params.Data, dataset="adult"), ROOT, RAW, seed=0).frame
    assert {str(frame[c].dtype) for c in [*schema.categorical, schema.target]} == {str(adult["workclass"].dtype)}
    assert schema.classes == ("negative", "positive")
    assert frame[schema.target].value_counts(normalize=True).between(0.45, 0.55).all()
    for name in schema.categorical:  # quantile bins: every category about equally common
        shares = frame[name].value_counts(normalize=True)
        assert set(shares.index) == set(schema.feature(name).categories)
        assert shares.between(0.8 / len(shares), 1.2 / len(shares)).all(), name


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.integers(100, 3000),
    signal=st.floats(0.01, 300.0),
    label_noise=st.floats(0.0, 0.5),
    missing_share=st.floats(0.0, 0.4),
    seed=st.integers(0, 2**31 - 1),
)
def test_any_valid_params_give_their_rows_and_missing_share_within_the_schema(
    rows: int, signal: float, label_noise: float, missing_share: float, seed: int
) -> None:
    loaded = synthetic(seed, rows=rows, signal=signal, label_noise=label_noise, missing_share=missing_share)
    frame, schema = loaded.frame, loaded.schema
    assert len(frame) == rows
    tolerance = 5 * math.sqrt(missing_share * (1 - missing_share) / rows) + 1 / rows
    for feature in schema.features:
        share = frame[feature.name].isna().mean()
        if feature.nullable:
            assert abs(share - missing_share) <= tolerance, feature.name
        else:
            assert share == 0, feature.name
    limits = VALIDATE.model_copy(update={"max_missing_share": 0.5, "min_rows_per_class": 1})
    assert checks.run_all(frame, schema, limits) == []


@pytest.mark.parametrize("fraction", [1.0, 0.5])
def test_the_row_count_comes_from_params_and_the_split_keeps_it(fraction: float) -> None:
    data = DATA.model_copy(update={"fraction": fraction, "synthetic": DATA.synthetic.model_copy(update={"rows": 4000})})
    splits = datasets.prepare(data, 42, ROOT, RAW)
    kept = len(splits.train) + len(splits.test)  # each row's own draw keeps it: binomial, a standard error of 32 rows
    assert kept == 4000 if fraction == 1 else abs(kept - 4000 * fraction) < 5 * 32
    assert splits.source.startswith("sklearn.datasets.make_classification (rows 4000, ")


def test_default_params_pass_validation_and_the_gate_is_within_reach() -> None:
    """The shipped settings: every check and the drift tests pass, and a linear model clears gate.min.roc_auc."""
    from tabpipe.data import validation

    splits = datasets.prepare(
        DATA.model_copy(update={"synthetic": DATA.synthetic.model_copy(update={"rows": 8000})}), 42, ROOT, RAW
    )
    outcome = validation.validate({"train": splits.train, "test": splits.test}, splits.schema, VALIDATE, seed=42)
    assert outcome.passed, outcome.failures
    assert auc(signal=DATA.synthetic.signal) > params_section(params.Gate).min["roc_auc"]


def auc(**values: object) -> float:
    """Test-set ROC AUC of a logistic regression behind the pipeline's own preprocessor."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline

    from tabpipe.model import features

    data = DATA.model_copy(update={"synthetic": DATA.synthetic.model_copy(update={"rows": 6000, **values})})
    splits = datasets.prepare(data, 42, ROOT, RAW)
    model = make_pipeline(features.preprocessor(splits.schema, params_section(params.Featurize)), LogisticRegression())
    model.fit(*features.split_xy(splits.train, splits.schema))
    x, y = features.split_xy(splits.test, splits.schema)
    return float(roc_auc_score(y == "positive", model.predict_proba(x)[:, 1]))


def test_signal_makes_the_target_easier_to_learn_and_label_noise_harder() -> None:
    by_signal = [auc(signal=s, label_noise=0.0) for s in (0.1, 0.5, 1.0, 2.0)]
    assert all(later > earlier + 0.02 for earlier, later in pairwise(by_signal)), by_signal
    assert auc(signal=1.0, label_noise=0.4) < auc(signal=1.0, label_noise=0.0) - 0.05


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("rows", 10, "greater than or equal to 100"),
        ("rows", "many", "valid integer"),
        ("rows", 1000.0, "valid integer"),
        ("signal", 0.0, "greater than 0"),
        ("label_noise", 1.0, "less than 1"),
        ("missing_share", -0.1, "greater than or equal to 0"),
        ("missing_share", ..., "missing"),
        ("missing_shares", 0.1, "unknown key"),
    ],
)
def test_bad_synthetic_params_are_one_line_naming_the_key(key: str, value: object, expected: str) -> None:
    raw = copy.deepcopy(params.read(ROOT / "params.yaml").raw)
    section = raw["data"]["synthetic"]
    if value is ...:
        del section[key]
    else:
        section[key] = value
    with pytest.raises(PipelineError) as error:
        params.Params(raw).section(params.Data)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"params.yaml: data.synthetic.{key}: ")
    assert expected in message
