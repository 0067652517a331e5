"""The fitted pipeline compiled to ONNX and run by onnxruntime: what the service answers with.

A one-row call through scikit-learn costs milliseconds (the ColumnTransformer on a one-row
DataFrame, a Python call per tree); the same graph in onnxruntime costs tens of microseconds.
Everything is computed in float64, so the compiled model agrees with the pipeline to rounding.
The graph takes two inputs (all numbers, all text) rather than one a column: on adult (14 columns)
a one-row `predict_records` takes about 0.7 of the time it took per column, 1,000 rows about 0.9.
This module is serve-time only; tabpipe/model/conversion.py builds the graph (the compile stage).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tabpipe.core.errors import PipelineError
from tabpipe.model.features import MISSING

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from tabpipe.task.base import Task


TRANSFORMED = "tabpipe_transformed"  # the graph's output of the preprocessed row (conversion.py)


class Compiled:
    """An ONNX model with the estimator face the pipeline uses: `classes_` and `predict_proba`.

    One thread per session: a request is a few rows, and the service's workers are the parallelism.
    """

    def __init__(self, blob: bytes, task: Task) -> None:
        """`task` is the schema's: the graph's recorded task must be the same one."""
        import json

        import numpy as np
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = ort.InferenceSession(blob, options, providers=["CPUExecutionProvider"])
        meta = self.session.get_modelmeta().custom_metadata_map
        if meta.get("task") != task.name:
            raise PipelineError(f"the compiled model answers a {meta.get('task')} task, the schema's is {task.name}")
        self.task = task
        for carried in set(meta) - {"task", "classes", "numeric", "categorical"}:  # Task.carried's, as the
            setattr(self, f"{carried}_", json.loads(meta[carried]))  # task reads them from a pipeline
        if json.loads(meta.get("classes", "[]")):  # scikit-learn's classifiers have `classes_`; regressors none
            self.classes_ = np.asarray(json.loads(meta["classes"]), dtype=object)
        self.numeric: list[str] = json.loads(meta["numeric"])
        self.categorical: list[str] = json.loads(meta["categorical"])
        self.inputs = [i.name for i in self.session.get_inputs()]
        # A graph compiled before the inputs were packed (one a column) may still be served (a rollback).
        # With at most one column of each kind the two layouts take the same arrays.
        self.per_column = len(self.inputs) == len(self.numeric) + len(self.categorical)
        outputs = [o.name for o in self.session.get_outputs()]
        self.output = outputs[self.task.onnx_output]
        self.transforms = TRANSFORMED in outputs  # not a graph compiled before explanations (a rollback's)

    def predict_proba(self, x: pd.DataFrame) -> np.ndarray:
        return self.run(*feed(x, self.numeric, self.categorical))

    def predict(self, x: pd.DataFrame) -> np.ndarray:
        """What the task predicts from the graph's answer: a regressor's values, a classifier's labels."""
        return self.task.decode(self.run(*feed(x, self.numeric, self.categorical)), self)

    def predict_records(self, records: list[dict[str, Any]]) -> np.ndarray:
        """Probabilities for request rows (dicts keyed by column), without building a DataFrame."""
        return self.run(*self.arrays(records))

    def transform_records(self, records: list[dict[str, Any]]) -> np.ndarray:
        """Request rows as the pipeline's preprocessor transforms them (float64), for explanations."""
        if not self.transforms:
            raise PipelineError("the compiled model predates explanations and gives no preprocessed rows")
        return self.run(*self.arrays(records), output=TRANSFORMED)

    def arrays(self, records: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
        """Request rows as the graph's two inputs: numbers as float64 (None: NaN), text (None: MISSING)."""
        import numpy as np

        # From flat lists, reshaped: numpy builds an array from nested lists about three times slower.
        rows = len(records)
        numbers = np.array([r[c] for r in records for c in self.numeric], dtype="float64")
        texts = np.array(
            [MISSING if (v := r[c]) is None else v for r in records for c in self.categorical], dtype=object
        )
        return numbers.reshape(rows, len(self.numeric)), texts.reshape(rows, len(self.categorical))

    def run(self, numbers: np.ndarray, texts: np.ndarray, output: str | None = None) -> np.ndarray:
        """The graph's answer (or another of its outputs) for [rows, n_numeric] float64 and [rows,
        n_categorical] text."""
        if self.per_column:
            arrays = [part[:, [i]] for part in (numbers, texts) for i in range(part.shape[1])]
        else:
            arrays = [part for part in (numbers, texts) if part.shape[1]]
        return self.session.run([output or self.output], dict(zip(self.inputs, arrays, strict=True)))[0]

    def __sklearn_tags__(self) -> Any:
        """Enough of scikit-learn's estimator protocol for its scorers (permutation importance)."""
        return self.task.estimator_tags()

    def fit(self, *_: Any) -> Compiled:
        """Scorers insist an estimator can fit; a compiled model is already fitted."""
        return self


def feed(x: pd.DataFrame, numeric: list[str], categorical: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """`x` as the graph's two inputs: numbers as float64 (NaN = missing), text with MISSING for missing."""
    import numpy as np

    texts = x[categorical].astype(object)
    texts = texts.where(texts.notna(), MISSING)
    return np.ascontiguousarray(x[numeric].to_numpy("float64")), np.ascontiguousarray(texts.to_numpy(object))
