"""Candidate estimators: a name in params.yaml maps to a scikit-learn (compatible) class and its defaults.

A new estimator is one line in tabpipe/core/catalog.py plus its entry under `train.candidates` (or
`train.regression.candidates`); params.yaml's settings take its name from the same line.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from tabpipe.core.catalog import ESTIMATORS
from tabpipe.core.errors import PipelineError


def names(task: str) -> list[str]:
    """The estimators that learn `task`, in registry order."""
    return [name for name, (_, _, learns) in ESTIMATORS.items() if learns == task]


def task_of(name: str) -> str:
    """The task an estimator learns."""
    return ESTIMATORS[name][2]


def require_task(candidates: dict[str, Any], task: str, section: str) -> None:
    """Every candidate learns the dataset's task: a classifier cannot fit a quantity, nor a regressor classes."""
    wrong = [f"{name} ({spec.estimator})" for name, spec in candidates.items() if task_of(spec.estimator) != task]
    if wrong:
        raise PipelineError(f"params.yaml: {section} holds estimators that do not learn {task}: {', '.join(wrong)}")


def takes(kind: str, parameter: str) -> bool:
    """Whether estimator `kind`'s class has `parameter` (importing the class)."""
    return parameter in inspect.signature(_class(kind)).parameters


def _class(kind: str) -> type:
    path, _, _ = ESTIMATORS[kind]
    module, name = path.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


def estimator(kind: str, fixed: dict[str, Any], seed: int) -> Any:
    """An unfitted estimator; its random_state (when it has one) comes from the pipeline seed."""
    if kind not in ESTIMATORS:
        raise PipelineError(f"params.yaml: train candidate estimator '{kind}', expected one of {', '.join(ESTIMATORS)}")
    cls = _class(kind)
    defaults = ESTIMATORS[kind][1]
    accepted = inspect.signature(cls).parameters
    unknown = sorted(set(fixed) - set(accepted))
    if unknown:
        raise PipelineError(f"params.yaml: {kind} has no parameter {', '.join(unknown)}")
    settings = {**defaults, **fixed}
    if "random_state" in accepted:
        settings["random_state"] = seed
    return cls(**settings)
