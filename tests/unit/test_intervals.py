"""A regressor's metrics, its resampled metrics, and its conformal intervals, against scikit-learn and by hand."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import Ridge
from sklearn.metrics import mean_absolute_error, r2_score, root_mean_squared_error

from tabpipe.model import gate
from tabpipe.task import intervals, regression
from tabpipe.task.base import Predicted
from tabpipe.task.regression import Regression


def test_regression_metrics_match_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(size=200)
    values = y + rng.normal(scale=0.3, size=200)
    found = Regression().measure(y, Predicted(values, None, []))
    assert found["rmse"] == pytest.approx(root_mean_squared_error(y, values), abs=1e-6)
    assert found["mae"] == pytest.approx(mean_absolute_error(y, values), abs=1e-6)
    assert found["r2"] == pytest.approx(r2_score(y, values), abs=1e-6)
    assert found["rows"] == 200
    with pytest.raises(ValueError, match="unknown metric 'roc_auc'"):
        regression.score("roc_auc", y, values)


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(2, 60), seed=st.integers(0, 2**16), metric=st.sampled_from(["rmse", "mae", "r2"]))
def test_resampled_regression_scores_match_each_resample(rows: int, seed: int, metric: str) -> None:
    """The gate's vectorised bootstrap on per-row errors gives what each resample gives alone."""
    rng = np.random.default_rng(seed)
    y = rng.normal(size=rows).round(1)  # rounded: some resamples hold one value (R² undefined)
    values = y + rng.normal(scale=0.5, size=rows)
    samples = rng.integers(0, rows, (20, rows))
    fast = regression.sample_scores(metric, y, values, samples)
    for sample, value in zip(samples, fast, strict=True):
        expected = regression.score(metric, y[sample], values[sample])
        if math.isnan(expected):
            assert np.isnan(value)
        else:
            assert value == pytest.approx(expected, abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 300), level=st.floats(0.05, 0.99), seed=st.integers(0, 2**16))
def test_the_conformal_quantile_covers_at_least_the_level_of_its_own_residuals(n: int, level: float, seed: int) -> None:
    residuals = np.random.default_rng(seed).normal(size=n)
    half = intervals.conformal_quantile(residuals, level)
    inside = float(np.mean(np.abs(residuals) <= half))
    assert half in np.abs(residuals)
    assert inside >= min(1.0, math.ceil((n + 1) * level) / n) - 1e-12
    assert inside >= level


def test_calibrated_intervals_cover_new_rows_at_their_level() -> None:
    """Cross-conformal on a noisy linear target: the refitted model's intervals cover fresh rows at 0.9."""
    from sklearn.model_selection import KFold

    rng = np.random.default_rng(1)
    x = rng.normal(size=(4000, 3))
    y = x @ np.array([1.0, -2.0, 0.5]) + rng.normal(size=4000)
    train, test = slice(0, 2000), slice(2000, None)
    folds = list(KFold(5, shuffle=True, random_state=0).split(x[train]))
    interval = intervals.calibrate(Ridge(), x[train], y[train], folds, 0.9, 1)
    assert interval.level == 0.9
    assert interval.halfwidth == pytest.approx(1.645, abs=0.12)  # the noise's 95th percentile of |error|
    model = Ridge().fit(x[train], y[train])
    lower, upper = intervals.bounds(model.predict(x[test]), interval)
    assert intervals.coverage(y[test], lower, upper) == pytest.approx(0.9, abs=0.02)


def test_a_model_carries_its_interval_as_a_plain_dict() -> None:
    model = Ridge().fit([[0.0], [1.0]], [0.0, 1.0])
    assert intervals.of(model) is None
    model.interval_ = intervals.Interval(0.8, 0.25).as_dict()
    assert intervals.of(model) == intervals.Interval(0.8, 0.25)


def test_regression_champions_compare_on_per_row_errors() -> None:
    rng = np.random.default_rng(2)
    y = rng.normal(size=500)
    good, poor = (Predicted(y + rng.normal(scale=scale, size=500), None, []) for scale in (0.2, 0.6))

    def compare(metric: str, candidate: Predicted, champion: Predicted, test: str = "bootstrap") -> gate.Comparison:
        return gate.compare(metric, y, candidate, champion, Regression(), test=test, rounds=200, seed=0, alpha=0.05)

    for metric in ("rmse", "mae", "r2"):
        better = compare(metric, good, poor)
        assert better.difference > 0 and better.p_value < 0.01 and better.ci_low > 0
        worse = compare(metric, poor, good)
        assert worse.difference < 0 and worse.p_value > 0.99
    with pytest.raises(Exception, match="mcnemar, which compares labels"):
        compare("rmse", good, poor, test="mcnemar")
