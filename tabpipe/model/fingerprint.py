"""A model's fingerprint of its training rows, so the gate never scores a champion on rows it learned from.

The fingerprint is the sorted, distinct identity hashes of the training rows (tabpipe/data/rows.py,
8 bytes a row) and the columns they hash. The refitted pipeline carries it as `training_rows_`,
pickled with it as its interval is, so every registered version carries its own. Hashes are exact
(no false positives), and 64 bits make two different rows sharing one about 1 in 10^10 at a
million rows: such a row would only be set aside, never wrongly compared.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tabpipe.data import rows

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from tabpipe.data.schema import Schema

ATTRIBUTE = "training_rows_"


def of_rows(frame: pd.DataFrame, schema: Schema) -> dict[str, Any]:
    """The fingerprint of `frame`'s rows: the identity columns and their rows' distinct hashes, sorted."""
    import numpy as np

    columns = schema.identity
    return {"columns": list(columns), "hashes": np.unique(rows.identity(frame, columns))}


def attach(model: Any, fingerprint: dict[str, Any]) -> None:
    setattr(model, ATTRIBUTE, fingerprint)


def seen(model: Any, frame: pd.DataFrame) -> np.ndarray | None:
    """For each of `frame`'s rows, whether `model` trained on it; None when it cannot tell (a model
    trained before fingerprints, or `frame` lacks a column the fingerprint hashed)."""
    import numpy as np

    fingerprint = getattr(model, ATTRIBUTE, None)
    if not fingerprint or any(c not in frame.columns for c in fingerprint["columns"]):
        return None
    return np.isin(rows.identity(frame, fingerprint["columns"]), fingerprint["hashes"])
