"""Build time: the fitted pipeline converted to one ONNX graph (the compile stage), and what serves chosen.

skl2onnx 1.20 cannot convert our preprocessor as it is, so three of its converters are replaced
while converting (and only then):
- SimpleImputer: the stock converter refuses string columns whose missing value is NaN and runs
  numbers through onnxruntime's float32-only Imputer. Here missing strings arrive as the
  featurizer's MISSING marker (see `feed`), and numbers are imputed with IsNaN/Where in float64.
- OneHotEncoder: the stock converter refuses `min_frequency` (infrequent categories).
- HistGradientBoosting: the stock converter passes a Python bool where onnx wants an int.

LightGBM's classifier converts with onnxmltools' converter, registered the same way, with its
thresholds kept as doubles and its features as float64: LightGBM compares float64 features with
double thresholds, and in float32 a number within float32's step of a threshold takes the other
branch (one row in 300,000 of continuous data moved by 0.028, far past the gate's 1e-4).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tabpipe.core.errors import PipelineError
from tabpipe.model.compiled import TRANSFORMED
from tabpipe.model.features import MISSING
from tabpipe.model.runtime import FILES
from tabpipe.task import tasks
from tabpipe.task.base import classes_of

if TYPE_CHECKING:
    from tabpipe.core.settings import Runtime
    from tabpipe.data.schema import Schema

log = logging.getLogger("compile")

OPSETS = {"": 21, "ai.onnx.ml": 3}


@dataclass(frozen=True)
class Built:
    """The served model's bytes, which runtime runs them, and why it is not ONNX (when it is not)."""

    runtime: str
    blob: bytes
    reason: str = ""

    @property
    def file_name(self) -> str:
        return FILES[self.runtime]


def build(pipeline_bytes: bytes, pipeline: Any, schema: Schema, runtime: Runtime) -> Built:
    """Compile the pipeline as `runtime` says.

    onnx: compile, or fail saying why. auto: compile, or serve the pipeline with one warning line
    saying why. sklearn: serve the pipeline as it is.
    """
    if runtime == "sklearn":
        return Built("sklearn", pipeline_bytes, "serve.runtime is sklearn")
    try:
        return Built("onnx", compile_pipeline(pipeline, schema))
    except PipelineError as error:
        if runtime == "onnx":
            raise PipelineError(f"{error} (set serve.runtime: auto to serve scikit-learn instead)") from None
        log.warning("serving scikit-learn, not ONNX: %s", error)
        return Built("sklearn", pipeline_bytes, str(error))


def compile_pipeline(model: Any, schema: Schema) -> bytes:
    """ONNX bytes for a fitted pipeline (preprocessor + estimator); PipelineError saying why it cannot."""
    import json

    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, StringTensorType

    preprocessor, estimator = model.steps[0][1], model.steps[-1][1]
    width = len(preprocessor.get_feature_names_out())
    inputs = [(c, DoubleTensorType([None, 1])) for c in schema.numeric]
    inputs += [(c, StringTensorType([None, 1])) for c in schema.categorical]
    # Linear models compute in float64, and LightGBM compares float64 features with double thresholds;
    # scikit-learn's trees compare float32 features, and so do these.
    lightgbm = type(estimator).__module__.startswith("lightgbm.")
    single = not (hasattr(estimator, "coef_") or lightgbm)
    features = (FloatTensorType if single else DoubleTensorType)([None, width])
    # The graph's tail differs by the estimator's kind: a classifier's probabilities, a regressor's value.
    regressor = tasks.of(schema.task).estimator_type == "regressor"
    try:
        with _converters(lightgbm):
            front = convert_sklearn(preprocessor, initial_types=inputs, target_opset=OPSETS)
            back = convert_sklearn(
                estimator,
                initial_types=[("features", features)],
                options=None if regressor else {id(estimator): {"zipmap": False}},
                target_opset=OPSETS,
            )
    except Exception as error:  # skl2onnx raises many kinds; the reason is what the user needs
        reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise PipelineError(f"{type(estimator).__name__} does not compile to ONNX: {reason}") from None
    onx = _packed(_join(front, back, single, regressor), len(schema.numeric))
    meta = {
        "task": schema.task,
        "classes": json.dumps(classes_of(model)),
        "numeric": json.dumps(list(schema.numeric)),
        "categorical": json.dumps(list(schema.categorical)),
    }
    # What the model carries (a regressor's interval, a classifier's decision): the served one is the evaluated one.
    meta |= {name: json.dumps(value) for name, value in tasks.of(schema.task).carried(model).items()}
    for key, value in meta.items():
        entry = onx.metadata_props.add()
        entry.key, entry.value = key, value
    return onx.SerializeToString()


def _join(front: Any, back: Any, single: bool, regressor: bool) -> Any:
    """One graph: preprocessor -> (float32 cast for trees) -> estimator -> float64 probabilities or values."""
    from onnx import TensorProto, compose, helper

    for part in (front, back):  # skl2onnx declares the lowest opsets each part needs; one model needs one set
        del part.opset_import[:]
        part.opset_import.extend(helper.make_opsetid(domain, version) for domain, version in OPSETS.items())
        part.ir_version = max(front.ir_version, back.ir_version)
    transformed = front.graph.output[0].name
    preprocessed = transformed  # float64, before any cast: what explanations start from
    if single:
        front.graph.node.append(helper.make_node("Cast", [transformed], ["features32"], to=TensorProto.FLOAT))
        front.graph.output[0].CopyFrom(helper.make_tensor_value_info("features32", TensorProto.FLOAT, [None, None]))
        transformed = "features32"
    features = "features"
    if regressor:  # skl2onnx names a regressor's output `variable`, as it names the preprocessor's
        back = compose.add_prefix(back, "model_")
        features = "model_features"
    joined = compose.merge_models(front, back, io_map=[(transformed, features)])
    joined.graph.name = "tabpipe"  # not skl2onnx's random names: the same pipeline gives the same bytes
    joined.producer_name = "tabpipe"
    joined.graph.doc_string = ""
    # The preprocessed row as an output after the model's own (the service's /explain asks for it, never
    # /predict): scikit-learn's preprocessor takes milliseconds on one row, the graph microseconds.
    joined.graph.node.append(helper.make_node("Identity", [preprocessed], [TRANSFORMED]))
    joined.graph.output.append(helper.make_tensor_value_info(TRANSFORMED, TensorProto.DOUBLE, [None, None]))
    if regressor:
        value = joined.graph.output[0]
        if value.type.tensor_type.elem_type != TensorProto.DOUBLE:  # trees sum their leaves in float32
            joined.graph.node.append(helper.make_node("Cast", [value.name], ["value64"], to=TensorProto.DOUBLE))
            value.CopyFrom(helper.make_tensor_value_info("value64", TensorProto.DOUBLE, [None, 1]))
        return joined
    probabilities = joined.graph.output[1]
    if probabilities.type.tensor_type.elem_type != TensorProto.DOUBLE:
        # Trees sum their leaves in float32, so rows sum to 1 only within ~1e-7: cast, then renormalise.
        joined.graph.initializer.append(helper.make_tensor("class_axis", TensorProto.INT64, [1], [1]))
        joined.graph.node.extend(
            [
                helper.make_node("Cast", [probabilities.name], ["probabilities64"], to=TensorProto.DOUBLE),
                helper.make_node("ReduceSum", ["probabilities64", "class_axis"], ["row_sums"], keepdims=1),
                helper.make_node("Div", ["probabilities64", "row_sums"], ["probabilities_normalised"]),
            ]
        )
        normalised = helper.make_tensor_value_info("probabilities_normalised", TensorProto.DOUBLE, [None, None])
        probabilities.CopyFrom(normalised)
    return joined


def _packed(onx: Any, numeric: int) -> Any:
    """The graph fed one [N, n_numeric] float64 tensor and one [N, n_categorical] string tensor.

    skl2onnx wants one input per column (its converters find columns by input); a call with one input
    per column costs onnxruntime and the caller per column. So new inputs `numeric` and `categorical`
    (whichever the schema has) take their place. The preprocessor's converters join a kind's columns
    again first (one Concat of all of them, in order): those read the packed input instead, and a
    Split gives the per-column names to whatever else reads them.
    """
    from onnx import TensorProto, helper

    graph = onx.graph
    columns = list(graph.input)
    taken = {*(i.name for i in columns), *(t.name for t in graph.initializer)}
    taken |= {name for node in graph.node for name in (*node.input, *node.output)}
    nodes, inputs, splits, renamed = list(graph.node), [], [], {}
    for kind, group, elem in (
        ("numeric", columns[:numeric], TensorProto.DOUBLE),
        ("categorical", columns[numeric:], TensorProto.STRING),
    ):
        if not group:
            continue
        name = kind
        while name in taken:  # a column, or a name skl2onnx chose, may already be `numeric`
            name = f"_{name}"
        inputs.append(helper.make_tensor_value_info(name, elem, [None, len(group)]))
        names = [c.name for c in group]
        joins = [n for n in nodes if n.op_type == "Concat" and list(n.input) == names and _axis(n) == 1]
        renamed |= dict.fromkeys((n.output[0] for n in joins), name)
        nodes = [n for n in nodes if n not in joins]
        splits.append(helper.make_node("Split", [name], names, axis=1, num_outputs=len(names), name=f"{name}_split"))
    for node in nodes:
        for i, read in enumerate(node.input):
            node.input[i] = renamed.get(read, read)
    read = {name for node in nodes for name in node.input} | {o.name for o in graph.output}
    kept = [split for split in splits if read.intersection(split.output)]
    del graph.input[:], graph.node[:]
    graph.input.extend(inputs)
    graph.node.extend([*kept, *nodes])  # a graph's nodes are in topological order: the splits come first
    return onx


def _axis(node: Any) -> int | None:
    return next((a.i for a in node.attribute if a.name == "axis"), None)


@contextlib.contextmanager
def _converters(lightgbm: bool) -> Iterator[None]:
    from skl2onnx import update_registered_converter
    from skl2onnx._supported_operators import sklearn_operator_name_map
    from skl2onnx.common import _registration, tree_ensemble
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import OneHotEncoder

    saved_names = dict(sklearn_operator_name_map)
    saved_converters = dict(_registration._converter_pool)
    saved_shapes = dict(_registration._shape_calculator_pool)
    add_node = tree_ensemble.add_node

    def int_flags(*args: Any, nodes_missing_value_tracks_true: Any = 0, **kwargs: Any) -> None:
        add_node(*args, nodes_missing_value_tracks_true=int(nodes_missing_value_tracks_true), **kwargs)

    update_registered_converter(SimpleImputer, "TabpipeImputer", _imputer_shape, _convert_imputer)
    update_registered_converter(OneHotEncoder, "TabpipeOneHot", _onehot_shape, _convert_onehot)
    if lightgbm:  # its import costs nothing then: the pipeline being compiled imported it
        from lightgbm import LGBMClassifier, LGBMRegressor

        update_registered_converter(
            LGBMClassifier,
            "TabpipeLightGbm",
            _lightgbm_shape,
            _convert_lightgbm,
            options={"zipmap": [False], "nocl": [False]},
        )
        update_registered_converter(
            LGBMRegressor, "TabpipeLightGbmRegressor", _lightgbm_regressor_shape, _convert_lightgbm
        )
    tree_ensemble.add_node = int_flags
    try:
        yield
    finally:
        tree_ensemble.add_node = add_node
        sklearn_operator_name_map.clear()
        sklearn_operator_name_map.update(saved_names)
        _registration._converter_pool.clear()
        _registration._converter_pool.update(saved_converters)
        _registration._shape_calculator_pool.clear()
        _registration._shape_calculator_pool.update(saved_shapes)


def _imputer_shape(operator: Any) -> None:
    from skl2onnx.shape_calculators.imputer import calculate_sklearn_imputer_output_shapes

    calculate_sklearn_imputer_output_shapes(operator)


def _convert_imputer(scope: Any, operator: Any, container: Any) -> None:
    from skl2onnx.common.data_types import StringTensorType
    from skl2onnx.operator_converters.common import concatenate_variables
    from skl2onnx.proto import onnx_proto

    imputer = operator.raw_operator
    x = concatenate_variables(scope, operator.inputs, container)
    y = operator.outputs[0].full_name
    if isinstance(operator.inputs[0].type, StringTensorType):
        if imputer.fill_value != MISSING:
            raise PipelineError(f"a text imputer must fill with {MISSING!r} (the marker `feed` sends)")
        container.add_node("Identity", [x], [y], name=scope.get_unique_operator_name("Identity"))
        return
    statistics = scope.get_unique_variable_name("statistics")
    values = [float(v) for v in imputer.statistics_]
    container.add_initializer(statistics, onnx_proto.TensorProto.DOUBLE, [1, len(values)], values)
    isnan = scope.get_unique_variable_name("isnan")
    container.add_node("IsNaN", [x], [isnan], name=scope.get_unique_operator_name("IsNaN"))
    container.add_node("Where", [isnan, statistics, x], [y], name=scope.get_unique_operator_name("Where"))


def _lightgbm_shape(operator: Any) -> None:
    """A classifier's shapes; probabilities in float32 even from float64 features, as onnxruntime gives them."""
    from skl2onnx.common.data_types import FloatTensorType
    from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes

    calculate_linear_classifier_output_shapes(operator)
    operator.outputs[1].type = FloatTensorType(operator.outputs[1].type.shape)


def _lightgbm_regressor_shape(operator: Any) -> None:
    """A regressor's one value per row: float32, as TreeEnsembleRegressor sums its leaves (the join casts it)."""
    from skl2onnx.common.data_types import FloatTensorType

    operator.outputs[0].type = FloatTensorType([operator.inputs[0].get_first_dimension(), 1])


def _convert_lightgbm(scope: Any, operator: Any, container: Any) -> None:
    """onnxmltools' converter, with the thresholds kept as doubles (`nodes_values_as_tensor`).

    LightGBM compares float64 features with double thresholds. In float32 (onnxmltools' default),
    a value closer to a threshold than float32's step takes the other branch, and a whole tree's
    leaf changes.
    """
    from onnx import TensorProto, helper
    from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm

    add_node = container.add_node

    def exact(op_type: str, inputs: Any, outputs: Any, *args: Any, **attrs: Any) -> Any:
        if op_type in ("TreeEnsembleClassifier", "TreeEnsembleRegressor"):
            values = [float(v) for v in attrs.pop("nodes_values")]
            attrs["nodes_values_as_tensor"] = helper.make_tensor("", TensorProto.DOUBLE, [len(values)], values)
        return add_node(op_type, inputs, outputs, *args, **attrs)

    container.add_node = exact
    try:
        convert_lightgbm(scope, operator, container)
    finally:
        del container.add_node


def _onehot_shape(operator: Any) -> None:
    from skl2onnx.common.data_types import DoubleTensorType

    rows = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = DoubleTensorType([rows, len(operator.raw_operator.get_feature_names_out())])


def _convert_onehot(scope: Any, operator: Any, container: Any) -> None:
    """Per column: category -> output position (LabelEncoder), then compare with 0..width-1.

    Infrequent categories, and unseen ones when there are infrequent ones, go to the column's
    last position, as scikit-learn's `handle_unknown="infrequent_if_exist"` does; other unseen
    categories match no position (all zeros).
    """
    from skl2onnx.operator_converters.common import concatenate_variables
    from skl2onnx.proto import onnx_proto

    encoder = operator.raw_operator
    x = concatenate_variables(scope, operator.inputs, container)
    infrequent_all = getattr(encoder, "infrequent_categories_", [None] * len(encoder.categories_))
    parts = []
    for i, (categories, infrequent) in enumerate(zip(encoder.categories_, infrequent_all, strict=True)):
        rare = {str(c) for c in infrequent} if infrequent is not None else set()
        frequent = [str(c) for c in categories if str(c) not in rare]
        other = len(frequent)
        width = other + (1 if rare else 0)
        position = {c: n for n, c in enumerate(frequent)} | dict.fromkeys(rare, other)

        def name(kind: str) -> str:
            return scope.get_unique_variable_name(kind)

        index, column, code, positions, equal, hot = (
            name(k) for k in ("index", "column", "code", "positions", "equal", "hot")
        )
        container.add_initializer(index, onnx_proto.TensorProto.INT64, [1], [i])
        container.add_node("Gather", [x, index], [column], axis=1, name=scope.get_unique_operator_name("Gather"))
        container.add_node(
            "LabelEncoder",
            [column],
            [code],
            op_domain="ai.onnx.ml",
            op_version=2,
            keys_strings=list(position),
            values_int64s=list(position.values()),
            default_int64=other if rare else -1,
            name=scope.get_unique_operator_name("LabelEncoder"),
        )
        container.add_initializer(positions, onnx_proto.TensorProto.INT64, [1, width], list(range(width)))
        container.add_node("Equal", [code, positions], [equal], name=scope.get_unique_operator_name("Equal"))
        container.add_node(
            "Cast", [equal], [hot], to=onnx_proto.TensorProto.DOUBLE, name=scope.get_unique_operator_name("Cast")
        )
        parts.append(hot)
    container.add_node(
        "Concat", parts, [operator.outputs[0].full_name], axis=1, name=scope.get_unique_operator_name("Concat")
    )
