"""The synthetic dataset: scikit-learn's make_classification shaped to the built-in schema.

params.yaml's `data.synthetic` sets its size and difficulty; the schema (builtin/synthetic.yaml)
sets its columns, their roles (by name), kinds, ranges and which ones may be missing, so the data
always satisfies it. Every random choice derives from the seed: the same params give the same rows.
make_classification draws its clusters' shapes after the rows, so another row count is another
draw of the same kind of problem, not more rows of the same one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tabpipe.core.errors import PipelineError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from tabpipe.core.settings import Synthetic
    from tabpipe.data.schema import Feature, Schema

ROLES = ("informative", "redundant", "noise")  # make_classification's column order with shuffle=False


def generate(settings: Synthetic, schema: Schema, seed: int) -> pd.DataFrame:
    """`settings.rows` rows with the schema's columns: numbers as float, categories and labels as categoricals."""
    import numpy as np
    import pandas as pd
    from sklearn.datasets import make_classification

    by_role = {role: [f.name for f in schema.features if f.name.startswith(f"{role}_")] for role in ROLES}
    ordered = [name for role in ROLES for name in by_role[role]]
    unassigned = sorted(set(schema.feature_names) - set(ordered))
    if unassigned:
        raise PipelineError(f"schema {schema.name}: features {unassigned} lack a role prefix ({', '.join(ROLES)})")
    x, y = make_classification(
        n_samples=settings.rows,
        n_features=len(ordered),
        n_informative=len(by_role["informative"]),
        n_redundant=len(by_role["redundant"]),
        n_repeated=0,
        n_classes=len(schema.classes),
        class_sep=settings.signal,
        flip_y=settings.label_noise,
        shuffle=False,  # keeps the columns in role order; the rows are shuffled below
        random_state=seed,
    )
    rng = np.random.default_rng(seed)
    order = rng.permutation(settings.rows)  # unshuffled, the rows come grouped by class
    columns = {}
    for feature in schema.features:
        values = x[order, ordered.index(feature.name)]
        missing = rng.random(settings.rows) < settings.missing_share if feature.nullable else None
        make = _numeric if feature.kind == "numeric" else _categorical
        columns[feature.name] = make(values, feature, missing)
    columns[schema.target] = pd.Categorical.from_codes(y[order], categories=list(schema.classes))
    return pd.DataFrame(columns)


def _numeric(values: np.ndarray, feature: Feature, missing: np.ndarray | None) -> np.ndarray:
    """Clipped to the declared range (rarely reached: the range is wide), missing where the mask says."""
    import numpy as np

    clipped = np.clip(values, feature.minimum, feature.maximum)
    return clipped if missing is None else np.where(missing, np.nan, clipped)


def _categorical(values: np.ndarray, feature: Feature, missing: np.ndarray | None) -> pd.Categorical:
    """Cut at the values' quantiles into equally common categories, listed from the lowest bin up."""
    import numpy as np
    import pandas as pd

    edges = np.quantile(values, np.linspace(0, 1, len(feature.categories) + 1)[1:-1])
    codes = np.searchsorted(edges, values, side="right")
    if missing is not None:
        codes[missing] = -1
    return pd.Categorical.from_codes(codes, categories=list(feature.categories))
