"""Data the tests make and inspect: the toy schema and a frame that passes it, a customer export, each row's split."""

from __future__ import annotations

import pandas as pd

from tabpipe.data.schema import Feature, Schema

TOY = Schema(
    name="toy",
    features=(
        Feature("x", "numeric", minimum=0.0, maximum=10.0),
        Feature("z", "numeric", minimum=-5.0, maximum=5.0, nullable=True),
        Feature("c", "categorical", categories=("a", "b", "c")),
    ),
    target="y",
    classes=("no", "yes"),
)


def toy_frame(rows: int = 60, seed: int = 0) -> pd.DataFrame:
    """A frame that passes every check against TOY: balanced classes, no duplicates."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x": rng.uniform(0, 10, rows),
            "z": rng.uniform(-5, 5, rows),
            "c": pd.Series(rng.choice(["a", "b", "c"], rows), dtype="str"),
            "y": pd.Series(np.where(np.arange(rows) % 2 == 0, "no", "yes"), dtype="str"),
        }
    )


def churn_table(rows: int, seed: int = 0) -> pd.DataFrame:
    """A customer export: an id, a plan, an age, a monthly spend, and whether the customer left."""
    import numpy as np

    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, rows)
    plan = rng.choice(["basic", "plus", "pro"], rows)
    spend = rng.gamma(2.0, 30.0, rows).round(2)
    left = (age < 35) ^ (plan == "pro") ^ (rng.random(rows) < 0.1)
    return pd.DataFrame(
        {
            "customer_id": [f"C{seed:02d}-{i:06d}" for i in range(rows)],
            "plan": plan,
            "age": age,
            "spend": spend,
            "churned": np.where(left, "yes", "no"),
        }
    )


def split_of(train: pd.DataFrame, test: pd.DataFrame, identity: list[str]) -> dict[int, str]:
    """Each row's identity hash (tabpipe/data/rows.py over `identity`) and the split it is in."""
    from tabpipe.data import rows

    found = dict.fromkeys(map(int, rows.identity(train, identity)), "train")
    return {**found, **dict.fromkeys(map(int, rows.identity(test, identity)), "test")}
