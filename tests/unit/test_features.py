"""The featurizer: built from the schema, tolerant of missing values and categories never seen in training."""

import numpy as np
import pandas as pd
import pytest

from tabpipe.core.errors import PipelineError
from tabpipe.core.settings import Featurize
from tabpipe.model import features
from tests.support.data import TOY, toy_frame


def featurize(min_frequency: int) -> Featurize:
    """Median imputation and scaling; min_frequency 0 keeps every category in its own column."""
    return Featurize(numeric_impute="median", scale=True, min_frequency=min_frequency)


def test_output_has_scaled_numbers_and_one_column_per_category() -> None:
    x, _ = features.split_xy(toy_frame(90), TOY)
    pre = features.preprocessor(TOY, featurize(min_frequency=0)).fit(x)
    names = list(pre.get_feature_names_out())
    assert names[:2] == ["x", "z"]
    assert sorted(names[2:]) == ["c_a", "c_b", "c_c"]
    out = pre.transform(x)
    assert np.allclose(out[:, 0].mean(), 0, atol=1e-9) and np.allclose(out[:, 0].std(), 1, atol=1e-9)


def test_missing_values_are_imputed_not_errors() -> None:
    x, _ = features.split_xy(toy_frame(60), TOY)
    x = x.assign(z=x["z"].where(x.index % 3 != 0))
    x.loc[0, "c"] = None
    pre = features.preprocessor(TOY, featurize(min_frequency=0)).fit(x)
    out = pre.transform(x)
    assert np.isfinite(out).all()
    assert any(name.startswith("c_" + features.MISSING) for name in pre.get_feature_names_out())


def test_unseen_category_does_not_crash_and_matches_no_known_category() -> None:
    x, _ = features.split_xy(toy_frame(60), TOY)
    train = x[x["c"] != "c"]
    pre = features.preprocessor(TOY, featurize(min_frequency=0)).fit(train)
    unseen = pd.DataFrame({"x": [1.0], "z": [0.0], "c": pd.Series(["c"], dtype="str")})
    row = pre.transform(unseen)[0]
    onehot = [i for i, name in enumerate(pre.get_feature_names_out()) if name.startswith("c_")]
    assert row[onehot].sum() == 0


def test_rare_categories_share_one_column() -> None:
    x, _ = features.split_xy(toy_frame(60), TOY)
    x.loc[:2, "c"] = "b"
    x.loc[3:, "c"] = "a"
    x.loc[0, "c"] = "c"
    pre = features.preprocessor(TOY, featurize(min_frequency=5)).fit(x)
    names = list(pre.get_feature_names_out())
    assert "c_a" in names and "c_infrequent_sklearn" in names and "c_c" not in names


def test_subsample_keeps_class_shares_and_is_seeded() -> None:
    from tabpipe.data import split

    frame = toy_frame(400)
    half = split.subsample(frame, TOY, fraction=0.5, seed=3)
    shares = half["y"].value_counts() / frame["y"].value_counts()  # each class: 200 rows, a standard error of 0.035
    assert ((shares - 0.5).abs() < 5 * 0.035).all() and len(half) == shares.mul(200).sum()
    pd.testing.assert_frame_equal(half, split.subsample(frame, TOY, fraction=0.5, seed=3))
    assert split.subsample(frame, TOY, fraction=1.0, seed=3) is frame
    with pytest.raises(PipelineError, match=r"data\.fraction"):
        split.subsample(frame, TOY, fraction=0.0, seed=3)
