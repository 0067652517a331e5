"""The batch benchmark's arithmetic: each measurement's rows/s, predict's share of the ceiling, and the goals."""

from pathlib import Path

import pytest

from tabpipe.bench import batch
from tabpipe.core.errors import PipelineError


def result(predict_s: float, ceiling_s: float, dask_s: float, rss: float) -> dict:
    return {
        "rows": 1_000_000,
        "predict": {"seconds": predict_s, "peak_rss_mb": rss},
        "ceiling": {"seconds": ceiling_s},
        "dask": {"seconds": dask_s, "cluster": "local: 2 workers, 1 thread each"},
    }


def test_rates_are_rows_over_seconds_and_the_ratio_is_predict_over_the_ceiling() -> None:
    found = batch.rates(result(4.0, 2.0, 5.0, 900.0))
    assert found["predict_rows_per_s"] == 250_000 and found["ceiling_rows_per_s"] == 500_000
    assert found["dask_rows_per_s"] == 200_000 and found["ratio"] == 0.5 and found["peak_rss_mb"] == 900.0


def test_the_table_says_whether_each_family_met_its_goals() -> None:
    text = batch.table({"lightgbm": result(2.5, 2.0, 4.0, 1600.0), "logreg": result(1.0, 0.5, 2.0, 700.0)})
    assert "| lightgbm | 1,000,000 | 400,000 | 500,000 | 0.80x met | 1,600 missed | 250,000 |" in text
    assert "| logreg | 1,000,000 | 1,000,000 | 2,000,000 | 0.50x missed | 700 met | 500,000 |" in text
    assert "goal >= 0.7x" in text and "goal <= 1,536" in text


def test_only_families_trained_on_adult_are_measured() -> None:
    assert [batch.trained_on(name) for name in ("lightgbm", "logreg")] == ["adult", "adult"]
    assert batch.trained_on("lightgbm_regressor") == "california" and batch.trained_on("nope") == ""
    with pytest.raises(PipelineError, match="lightgbm_regressor: not a family trained on adult"):
        batch.run(Path("."), ["lightgbm_regressor"], batch.Load(rows=10), 0.05, Path("x.json"), {})
