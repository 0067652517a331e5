"""A row's split depends on that row alone: data/rows.py's identity hash and data/split.py's split."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tabpipe.core.errors import PipelineError
from tabpipe.data import rows, split
from tests.support.data import TOY, split_of


def table(count: int, seed: int, start: int = 0) -> pd.DataFrame:
    """TOY rows, every one different (`x` counts from `start`), the classes shuffled."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x": np.arange(start, start + count, dtype="float64") + 0.5,
            "z": rng.uniform(-5, 5, count).round(3),
            "c": pd.Series(rng.choice(["a", "b", "c"], count), dtype="str"),
            "y": pd.Series(rng.choice(["no", "yes"], count), dtype="str"),
        }
    )


def membership(frame: pd.DataFrame, train: pd.DataFrame, test: pd.DataFrame) -> dict[int, str]:
    """Each row of `frame` (by its identity hash) and the split it fell in."""
    found = split_of(train, test, TOY.identity)
    return {int(h): found[int(h)] for h in rows.identity(frame, TOY.identity)}


@given(
    st.integers(40, 400),
    st.integers(1, 200),
    st.integers(0, 2**31),
    st.sampled_from([0.1, 0.25, 0.5]),
    st.booleans(),
)
def test_old_rows_keep_their_split_whatever_arrives_and_class_shares_stay_close(
    count: int, added: int, seed: int, share: float, shuffle: bool
) -> None:
    old = table(count, seed)
    new = pd.concat([old, table(added, seed + 1, start=count)], ignore_index=True)
    if shuffle:
        new = new.sample(frac=1, random_state=seed % 1000).reset_index(drop=True)
    try:
        before = split.train_test(old, TOY, test_size=share, seed=seed)
        after = split.train_test(new, TOY, test_size=share, seed=seed)
    except PipelineError as error:  # a class with no row in one split: said in one line
        assert "fell in the" in str(error)
        return
    kept = membership(old, *before)
    now = membership(new, *after)
    assert all(now[h] == where for h, where in kept.items())
    for train, test in (before, after):
        for label in ("no", "yes"):
            in_class = int((train["y"] == label).sum() + (test["y"] == label).sum())
            observed = (test["y"] == label).sum() / in_class
            assert abs(observed - share) <= split.share_tolerance(in_class, share)


@given(st.integers(30, 300), st.integers(0, 2**31), st.sampled_from([0.2, 0.5, 0.8]))
def test_removing_rows_or_reordering_the_file_moves_no_other_row(count: int, seed: int, fraction: float) -> None:
    frame = table(count, seed)
    relabelled = frame.head(5).assign(y=lambda t: t["y"].map({"no": "yes", "yes": "no"}))
    frame = pd.concat([frame, relabelled], ignore_index=True)  # the same features under either label
    try:
        train, test = split.train_test(frame, TOY, test_size=0.3, seed=7)
    except PipelineError as error:  # a small class can fall all on one side: said in one line
        assert "fell in the" in str(error)
        return
    reordered = split.train_test(frame.iloc[::-1].reset_index(drop=True), TOY, test_size=0.3, seed=7)
    pd.testing.assert_frame_equal(train, reordered[0])  # the same splits, row for row
    pd.testing.assert_frame_equal(test, reordered[1])
    removed = frame.sample(frac=fraction, random_state=seed % 1000)
    try:
        smaller = split.train_test(removed, TOY, test_size=0.3, seed=7)
    except PipelineError:
        return
    whole = membership(frame, train, test)
    assert all(whole[h] == where for h, where in membership(removed, *smaller).items())


@given(st.integers(30, 300), st.integers(0, 2**31))
def test_a_fraction_keeps_each_row_by_its_own_draw(count: int, seed: int) -> None:
    frame = table(count, seed)
    grown = pd.concat([frame, table(50, seed, start=count)], ignore_index=True)
    small = split.subsample(frame, TOY, fraction=0.3, seed=seed)
    larger = split.subsample(frame, TOY, fraction=0.6, seed=seed)
    assert set(rows.identity(small, TOY.identity)) <= set(rows.identity(larger, TOY.identity))
    assert set(rows.identity(small, TOY.identity)) <= set(
        rows.identity(split.subsample(grown, TOY, fraction=0.3, seed=seed), TOY.identity)
    )


def test_duplicated_rows_land_together_and_a_key_keeps_a_customers_rows_together() -> None:
    frame = pd.concat([table(200, 1)] * 3, ignore_index=True)
    train, test = split.train_test(frame, TOY, test_size=0.25, seed=0)
    assert not set(rows.identity(train, TOY.identity)) & set(rows.identity(test, TOY.identity))
    keyed = replace(TOY, key=("customer",), meta=("customer",))
    visits = table(600, 2).assign(customer=np.arange(600) // 4)  # four rows per customer, each different
    train, test = split.train_test(visits, keyed, test_size=0.25, seed=0)
    assert not set(train["customer"]) & set(test["customer"])


def test_a_row_hash_is_the_same_from_csv_or_parquet_and_in_any_column_order(tmp_path) -> None:
    frame = pd.DataFrame(
        {"id": pd.Series([1, 2, None, 2**60], dtype="Int64"), "v": [1.0, -0.0, 2.5, None], "t": ["a", None, "b", "c"]}
    )
    frame.to_csv(tmp_path / "a.csv", index=False)
    frame.to_parquet(tmp_path / "a.parquet", index=False)
    from_csv, from_parquet = pd.read_csv(tmp_path / "a.csv"), pd.read_parquet(tmp_path / "a.parquet")
    columns = ["id", "v", "t"]
    assert from_csv["id"].dtype != from_parquet["id"].dtype  # float (with NaN) against nullable integers
    expected = rows.identity(from_parquet, columns)
    assert (rows.identity(from_csv.iloc[:, ::-1], columns[::-1])[:3] == expected[:3]).all()
    assert len(set(expected)) == 4
    assert (rows.identity(pd.DataFrame({"v": [0.0]}), ["v"]) == rows.identity(pd.DataFrame({"v": [0]}), ["v"])).all()
    assert rows.identity(pd.DataFrame({"a": [1], "b": [2]}), ["a", "b"]) != rows.identity(
        pd.DataFrame({"a": [2], "b": [1]}), ["a", "b"]
    )


@given(st.integers(0, 2**31))
def test_draws_are_uniform_and_differ_by_seed_and_purpose(seed: int) -> None:
    hashes = rows.identity(pd.DataFrame({"x": np.arange(20_000)}), ["x"])
    drawn = rows.draw(hashes, seed, "split")
    assert drawn.min() >= 0 and drawn.max() < 1
    assert abs(float(drawn.mean()) - 0.5) < 0.02  # 20,000 draws: the standard error is 0.002
    assert not np.array_equal(drawn, rows.draw(hashes, seed + 1, "split"))
    assert not np.array_equal(drawn, rows.draw(hashes, seed, "fraction"))


def test_a_time_split_tests_on_the_newest_rows() -> None:
    dated = replace(TOY, dates=(("when", "%Y-%m-%d"),), meta=("when",))
    frame = table(120, 3).assign(when=[f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}" for i in range(120)])
    train, test = split.train_test(frame, dated, test_size=0.25, seed=0, time_column="when")
    assert len(test) == 30 and test["when"].min() >= train["when"].max()
    by_number = split.train_test(frame, TOY, test_size=0.25, seed=0, time_column="x")[1]
    assert by_number["x"].min() == frame["x"].nlargest(30).min()
    with pytest.raises(PipelineError, match=r"data\.time_column 'c' is not a date column or a numeric feature"):
        split.train_test(frame, TOY, test_size=0.25, seed=0, time_column="c")
    gaps = frame.assign(when=frame["when"].where(frame.index % 10 != 0))
    with pytest.raises(PipelineError, match="column 'when': 12 rows have no time"):
        split.train_test(gaps, dated, test_size=0.25, seed=0, time_column="when")


def test_a_class_that_falls_in_one_split_is_one_line() -> None:
    frame = table(60, 4)
    frame.loc[:2, "y"] = "rare"
    fell = r"column 'y': class 'rare': none of its 3 rows fell in the (train|test) split"
    with pytest.raises(PipelineError, match=fell):
        for seed in range(50):  # some seed puts all three in one split
            split.train_test(frame, TOY, test_size=0.25, seed=seed)
