"""A row's identity: a 64-bit hash of its key columns (`data.key`), or of its features without one.

The split, the subsample and a model's fingerprint of its training rows all derive from it, so where
a row lands depends on that row alone: adding, removing or reordering other rows never moves it, and
rows with the same identity (duplicates, or one customer's rows under a key) always land together.

The hash is ours, not a library's (it lives on in the registry's fingerprints, so it must not change
with an upgrade): each value is made canonical first, so a file read as CSV or as Parquet gives the
same hashes. A whole number is the same value as an int or a float (5 and 5.0); text is its UTF-8;
every kind of missing value is one value. Columns combine in name order, each with its name.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

MISSING = 0x6D697373696E6721  # any missing value
FLOAT_TAG = 0x9E3779B97F4A7C15  # a number with a fraction, kept apart from whole numbers' bits
PURPOSES = {"split": 1, "fraction": 2}  # independent draws from one row hash


def identity(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """One uint64 per row: the hash of its values in `columns` (their order does not matter)."""
    import numpy as np

    hashes = np.full(len(frame), _text_hash("tabpipe-row"), dtype="uint64")
    for column in sorted(columns):
        hashes = _mix(hashes ^ np.uint64(_text_hash(column)))
        hashes = _mix(hashes + _values(frame[column]))
    return hashes


def draw(hashes: np.ndarray, seed: int, purpose: str) -> np.ndarray:
    """A uniform number in [0, 1) per row, from its hash and the seed alone (one stream per purpose)."""
    import numpy as np

    salt = _mix(np.asarray([(seed & 0xFFFFFFFF) << 8 | PURPOSES[purpose]], dtype="uint64"))[0]
    return (_mix(hashes ^ salt) >> np.uint64(11)).astype("float64") / float(1 << 53)


def canonical_order(hashes: np.ndarray, whole: np.ndarray) -> np.ndarray:
    """Row positions sorted by identity hash, then by `whole` (each row's hash over every column): an order
    the file's does not set, even among rows that share an identity but differ elsewhere (their labels)."""
    import numpy as np

    return np.lexsort((whole, hashes))


def _values(values: pd.Series) -> np.ndarray:
    """Each value's own hash, canonical across dtypes."""
    import numpy as np
    import pandas as pd

    missing = values.isna().to_numpy()
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        if pd.api.types.is_integer_dtype(values) and not missing.any():
            bits = values.to_numpy(dtype="int64").view("uint64")
        else:
            numbers = values.to_numpy(dtype="float64", na_value=np.nan) + 0.0  # -0.0 becomes 0.0
            whole = np.isfinite(numbers) & (numbers == np.floor(numbers)) & (np.abs(numbers) < 2.0**63)
            bits = np.where(
                whole,
                np.where(whole, numbers, 0).astype("int64").view("uint64"),
                numbers.view("uint64") ^ np.uint64(FLOAT_TAG),
            )
        hashed = _mix(bits)
    else:
        codes, uniques = pd.factorize(values.astype(object).where(~missing, None).map(str, na_action="ignore"))
        table = np.asarray([_text_hash(u) for u in uniques], dtype="uint64")
        hashed = table[np.where(codes < 0, 0, codes)] if len(table) else np.zeros(len(values), dtype="uint64")
    return np.where(missing, np.uint64(MISSING), hashed)


def _text_hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every input bit moves every output bit (uint64 arithmetic wraps)."""
    import numpy as np

    z = np.asarray(z, dtype="uint64")
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))
