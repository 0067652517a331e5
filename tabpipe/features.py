"""The preprocessing half of the model, built from the schema so training and serving share it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sklearn.compose import ColumnTransformer

    from tabpipe.schema import Schema

MISSING = "__missing__"


def preprocessor(schema: Schema, params: dict[str, Any]) -> ColumnTransformer:
    """Numeric: impute, then scale. Categorical: impute a 'missing' category, then one-hot.

    One-hot groups categories rarer than `min_frequency` and maps categories never seen in
    training to that group (or to all zeros when there is none), so new values never crash it.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric_steps: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy=params.get("numeric_impute", "median")))]
    if params.get("scale", True):
        numeric_steps.append(("scale", StandardScaler()))
    min_frequency = params.get("min_frequency") or None
    categorical = Pipeline(
        [
            ("impute", SimpleImputer(strategy="constant", fill_value=MISSING)),
            (
                "onehot",
                OneHotEncoder(
                    handle_unknown="infrequent_if_exist",
                    min_frequency=min_frequency,
                    sparse_output=False,
                    dtype="float64",
                ),
            ),
        ]
    )
    return ColumnTransformer(
        [("numeric", Pipeline(numeric_steps), schema.numeric), ("categorical", categorical, schema.categorical)],
        remainder="drop",
        sparse_threshold=0.0,
        verbose_feature_names_out=False,
    )


def split_xy(frame: Any, schema: Schema) -> tuple[Any, Any]:
    """Features (in schema order) and labels of a prepared frame."""
    return frame[schema.feature_names], frame[schema.target].astype(str).to_numpy()
