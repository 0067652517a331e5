"""Names as MLflow stores them: the model-hash tag, metric keys, and nested values flattened."""

from __future__ import annotations

import re
from typing import Any

MODEL_HASH_TAG = "tabpipe.model_sha256"


def metric_key(name: str) -> str:
    """MLflow allows only letters, digits and _-. /: class names like '<=50K' become '__50K'."""
    return re.sub(r"[^A-Za-z0-9_\-. /]", "_", name)


def flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested params or metrics as dotted keys, the way `dvc metrics` shows them."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat
