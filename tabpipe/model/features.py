"""The preprocessing half of the model, built from the schema so training and serving share it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tabpipe.task import tasks

if TYPE_CHECKING:
    from sklearn.compose import ColumnTransformer

    from tabpipe.core.settings import Featurize
    from tabpipe.data.schema import Schema

MISSING = "__missing__"


def preprocessor(schema: Schema, settings: Featurize) -> ColumnTransformer:
    """Numeric: impute, then scale. Categorical: impute a 'missing' category, then one-hot.

    One-hot groups categories rarer than `min_frequency` and maps categories never seen in
    training to that group (or to all zeros when there is none), so new values never crash it.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric_steps: list[tuple[str, Any]] = [("impute", SimpleImputer(strategy=settings.numeric_impute))]
    if settings.scale:
        numeric_steps.append(("scale", StandardScaler()))
    min_frequency = settings.min_frequency or None
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
    """Features (in schema order) and targets of a prepared frame: class labels as text, a quantity as float."""
    return frame[schema.feature_names], tasks.of(schema.task).learned(frame[schema.target])


def summary(schema: Schema, fitted: ColumnTransformer) -> dict[str, int]:
    """metrics/features.json: how many columns go in, and how many the model sees after one-hot."""
    return {"inputs": len(schema.features), "outputs": len(fitted.get_feature_names_out())}
