"""The service over real HTTP: a real `bentoml serve` of the gated model the pipeline produced."""

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tabpipe.serve import token
from tests.support.client import get, post, row_validator
from tests.support.commands import dvc, env, needs, run, tabpipe_command
from tests.support.params import regressor
from tests.support.paths import BIN
from tests.support.projects import Reproduced, copy_reproduced, make_project, set_params
from tests.support.servers import Served, serving

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def built(golden: Reproduced, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The project after `dvc repro`, with its own BentoML store (serving limits changed: package reran)."""
    project = copy_reproduced(golden, tmp_path_factory.mktemp("service"))
    set_params(project.repo, **{"serve.max_rows": 50, "serve.explain_max_rows": 5, "serve.max_body_bytes": 100_000})
    dvc("repro", cwd=project.repo, env=env(BENTOML_HOME=str(project.home)))
    return project.repo, project.home


@pytest.fixture(scope="module")
def url(built: tuple[Path, Path]) -> Iterator[str]:
    with serving(*built) as address:
        yield address


GOOD = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


def assert_parity(repo: Path, url: str, batch: int) -> None:
    """Every test row, served over HTTP, gets evaluate's label and probabilities (a regressor's value and
    interval), within 1e-9."""
    schema = json.loads((repo / "data/prepared/schema.json").read_text())
    test = pd.read_parquet(repo / "data/prepared/test.parquet")
    features = test[[f["name"] for f in schema["features"]]].astype(object)
    rows = features.where(features.notna(), None).to_dict(orient="records")  # Python floats: exact round trip
    answers = []
    for start in range(0, len(rows), batch):
        status, answer = post(url, {"rows": rows[start : start + batch]})
        assert status == 200, answer
        answers += answer["predictions"]
    saved = pd.read_parquet(repo / "data/predictions/test.parquet")
    if schema.get("task") == "regression":  # the value, and the interval evaluate measured
        assert np.abs(np.array([p["value"] for p in answers]) - saved["predicted"].to_numpy()).max() <= 1e-9
        intervals = np.array([p["interval"] for p in answers])
        assert np.abs(intervals - saved[["lower", "upper"]].to_numpy()).max() <= 1e-9
        return
    assert [p["label"] for p in answers] == saved["predicted"].tolist()
    for label in schema["classes"]:
        served = np.array([p["probabilities"][label] for p in answers])
        assert np.abs(served - saved[f"proba_{label}"].to_numpy()).max() <= 1e-9


def test_explain_answers_what_predict_answered_added_up_per_class_within_its_own_row_limit(url: str) -> None:
    """A multiclass model: each row's output, base and contributions keyed by class, adding up to the
    softmax scores whose probabilities /predict answered; `serve.explain_max_rows` (5 here) bounds a request,
    and a bad row is a 400 naming its field, as for /predict."""
    rows = [GOOD, {**GOOD, "petal_length": 5.5, "petal_width": 2.1}, {**GOOD, "petal_length": 4.2}]
    status, body = post(url, {"rows": rows}, "/explain")
    assert status == 200 and body["units"] == "log_odds" and body["model"]["name"] == "tabpipe-iris"
    _, predicted = post(url, {"rows": rows})
    for each, answer in zip(body["explanations"], predicted["predictions"], strict=True):
        classes = list(answer["probabilities"])
        assert list(each["output"]) == list(each["base"]) == list(each["contributions"]) == classes
        for label in classes:
            assert list(each["contributions"][label]) == list(GOOD)
            total = each["base"][label] + sum(each["contributions"][label].values())
            assert abs(total - each["output"][label]) <= 1e-6
        scores = np.array([each["output"][label] for label in classes])
        softmax = np.exp(scores - scores.max()) / np.exp(scores - scores.max()).sum()
        assert softmax == pytest.approx([answer["probabilities"][label] for label in classes], abs=1e-5)
    assert post(url, {"rows": [GOOD] * 5}, "/explain")[0] == 200
    status, too_many = post(url, {"rows": [GOOD] * 6}, "/explain")
    assert status == 400 and too_many["detail"][0]["loc"] == ["rows"], too_many
    status, bad = post(url, {"rows": [{**GOOD, "sepal_width": "wide"}]}, "/explain")
    assert status == 400 and bad["detail"][0]["loc"] == ["rows", 0, "sepal_width"], bad


def test_served_predictions_equal_the_evaluate_stage(built: tuple[Path, Path], url: str) -> None:
    repo, _ = built
    assert_parity(repo, url, batch=50)
    status, answer = post(url, {"rows": [GOOD]})
    assert status == 200
    manifest = json.loads((repo / "models/serving.json").read_text())
    assert answer["model"] == {"name": "tabpipe-iris", "version": manifest["tag"].split(":")[1]}


def test_every_family_serves_exactly_what_evaluate_measured(served_family: Served) -> None:
    """Logistic regression, forest, boosting and LightGBM on adult, and a LightGBM regressor on california:
    the compiled model answers as evaluate scored it. A classifier's labels are its decision's (F1's
    threshold), which differ from the most probable class on some test rows."""
    repo = served_family.repo
    assert_parity(repo, served_family.url, batch=20)
    if regressor(served_family.family):
        return
    decision = json.loads((repo / "metrics/train.json").read_text())["decision"]
    saved = pd.read_parquet(repo / "data/predictions/test.parquet")
    positive, threshold = decision["positive"], decision["threshold"]
    assert ((saved[f"proba_{positive}"] >= threshold) == (saved["predicted"] == positive)).all()
    argmax = saved.filter(like="proba_").idxmax(axis=1).str.removeprefix("proba_")
    assert (argmax != saved["predicted"]).any()
    status, model = post(served_family.url, {}, "/model")
    assert status == 200 and model["decision"]["threshold"] == threshold


def test_explain_answers_every_family_exactly_and_as_predict_answered(served_family: Served) -> None:
    """Every served family: contributions per request column add up to the output within 1e-6, in the
    units its exact method explains, and that output is what /predict answered (the positive class's
    log-odds or probability before the decision threshold; a regressor's value, or its log)."""
    rows = served_family.rows
    status, body = post(served_family.url, {"rows": rows}, "/explain")
    assert status == 200, body
    units = {"forest": "probability", "lightgbm_regressor": "value"}.get(served_family.family, "log_odds")
    assert body["units"] == units
    _, predicted = post(served_family.url, {"rows": rows})
    sent = [name for name in rows[0]]
    for each, answer in zip(body["explanations"], predicted["predictions"], strict=True):
        assert sorted(each["contributions"]) == sorted(sent)
        assert abs(each["base"] + sum(each["contributions"].values()) - each["output"]) <= 1e-6
        if units == "value":
            assert each["output"] == pytest.approx(answer["value"], abs=1e-6 * max(1.0, abs(answer["value"])))
            continue
        positive = list(answer["probabilities"])[-1]
        probability = each["output"] if units == "probability" else 1 / (1 + np.exp(-each["output"]))
        assert probability == pytest.approx(answer["probabilities"][positive], abs=1e-5)


def test_tabpipe_predict_answers_every_test_row_as_the_service_does(served_family: Served, tmp_path: Path) -> None:
    """`tabpipe predict` over the test split (a Parquet file that also holds the target) answers each row as
    POST /predict does: the label and every probability (a regressor's value and interval) within 1e-9,
    and the same model and version."""
    repo, test = served_family.repo, served_family.repo / "data/prepared/test.parquet"
    out = tmp_path / "scores.parquet"
    run(tabpipe_command("predict", str(test), "--output", str(out), "--chunk-rows", "97"), repo)
    scored, rejected = pd.read_parquet(out), pd.read_parquet(tmp_path / "scores.rejects.parquet")
    features = pd.read_parquet(test)[[f["name"] for f in served_family.features]].astype(object)
    rows = features.where(features.notna(), None).to_dict(orient="records")
    assert rejected.empty and scored["row"].tolist() == list(range(len(rows)))
    answers = []
    for start in range(0, len(rows), 20):  # serve.max_rows
        status, answer = post(served_family.url, {"rows": rows[start : start + 20]})
        assert status == 200, answer
        answers += answer["predictions"]
    assert {(m, v) for m, v in zip(scored["model"], scored["version"], strict=True)} == {
        tuple(answer["model"].values())
    }
    if regressor(served_family.family):
        assert np.abs(scored["value"].to_numpy() - [p["value"] for p in answers]).max() <= 1e-9
        ends = np.array([p["interval"] for p in answers])
        assert np.abs(scored[["lower", "upper"]].to_numpy() - ends).max() <= 1e-9
        return
    assert scored["label"].tolist() == [p["label"] for p in answers]
    for label in answers[0]["probabilities"]:
        served = np.array([p["probabilities"][label] for p in answers])
        assert np.abs(scored[f"proba_{label}"].to_numpy() - served).max() <= 1e-9


def test_tabpipe_predict_scores_with_a_registered_version(built: tuple[Path, Path], tmp_path: Path) -> None:
    """`--model models:/tabpipe-iris@champion` scores with the champion's model from the BentoML store: the
    gated one here, so every answer equals the default run's; an alias nobody holds is one error line."""
    repo, home = built
    test, store = str(repo / "data/prepared/test.parquet"), env(BENTOML_HOME=str(home))
    run(tabpipe_command("predict", test, "--output", str(tmp_path / "gated.parquet")), repo, env=store)
    champion = ["--model", "models:/tabpipe-iris@champion"]
    run(tabpipe_command("predict", test, "--output", str(tmp_path / "champion.parquet"), *champion), repo, env=store)
    gated, registered = pd.read_parquet(tmp_path / "gated.parquet"), pd.read_parquet(tmp_path / "champion.parquet")
    assert len(gated) == len(pd.read_parquet(test))
    pd.testing.assert_frame_equal(gated, registered)
    nobody = ["--model", "models:/tabpipe-iris@nobody"]
    failed = run(
        tabpipe_command("predict", test, "--output", str(tmp_path / "x.parquet"), *nobody), repo, False, env=store
    )
    assert failed.returncode == 1
    assert (
        failed.stderr.strip().splitlines()[-1]
        == "error: --model models:/tabpipe-iris@nobody: no such registered version"
    )
    assert not (tmp_path / "x.parquet").exists()


def samples(url: str, metric: str) -> dict[tuple, float]:
    """One metric's samples from the service's /metrics: {(sample name, labels...): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    families = text_string_to_metric_families(get(url, "/metrics")[1])
    found = [s for f in families if f.name == metric for s in f.samples]
    return {(s.name, *sorted(s.labels.items())): s.value for s in found}


def test_the_metrics_count_every_answered_row(served_family: Served) -> None:
    """A classifier's rows by predicted class; a regressor's values in the histogram, bucket by bucket."""
    test = pd.read_parquet(served_family.repo / "data/prepared/test.parquet")
    features = test[[f["name"] for f in served_family.features]].head(20).astype(object)  # serve.max_rows
    rows = features.where(features.notna(), None).to_dict(orient="records")
    metric = "tabpipe_predicted_values" if regressor(served_family.family) else "tabpipe_predictions"
    before = samples(served_family.url, metric)
    status, answer = post(served_family.url, {"rows": rows})
    assert status == 200, answer
    after = samples(served_family.url, metric)
    grew = {key: after[key] - before.get(key, 0.0) for key in after}
    if metric == "tabpipe_predictions":
        labels = [p["label"] for p in answer["predictions"]]
        counted = {key[1][1]: value for key, value in grew.items() if key[0].endswith("_total") and value}
        assert counted == {label: labels.count(label) for label in set(labels)}
        return
    values = np.array([p["value"] for p in answer["predictions"]])
    assert grew[("tabpipe_predicted_values_count",)] == len(rows)
    assert grew[("tabpipe_predicted_values_sum",)] == pytest.approx(values.sum(), rel=1e-9)
    buckets = {float(key[1][1]): value for key, value in grew.items() if key[0].endswith("_bucket")}
    assert len(buckets) > 2 and all(value == (values <= bound).sum() for bound, value in buckets.items())


def test_the_scikit_learn_runtime_serves_the_pipeline_exactly(tmp_path: Path) -> None:
    """serve.runtime: sklearn (what `auto` falls back to): the pipeline itself is served, and still
    answers exactly as evaluate measured."""
    repo, home = make_project(tmp_path / "repo"), tmp_path / "bentoml"
    set_params(repo, **{"serve.runtime": "sklearn"})
    dvc("repro", cwd=repo, env=env(BENTOML_HOME=str(home)))
    compiled = json.loads((repo / "metrics/compile.json").read_text())
    assert compiled["runtime"] == "sklearn" and compiled["label_agreement"] == 1.0
    assert (repo / "models/served/model.joblib").read_bytes() == (repo / "models/model.joblib").read_bytes()
    assert json.loads((repo / "models/serving.json").read_text())["model_file"] == "model.joblib"
    with serving(repo, home) as address:
        assert_parity(repo, address, batch=50)


@pytest.mark.slow
def test_adult_served_predictions_equal_the_evaluate_stage(tmp_path: Path) -> None:
    repo, home = make_project(tmp_path / "repo"), tmp_path / "bentoml"
    set_params(repo, **{"data.dataset": "adult"})
    dvc("repro", cwd=repo, env=env(BENTOML_HOME=str(home)))
    with serving(repo, home) as address:
        assert_parity(repo, address, batch=1000)


@pytest.mark.parametrize(
    ("body", "field", "kind"),
    [
        ({"rows": [{**GOOD, "sepal_length": "5.1"}]}, "sepal_length", "float_type"),
        ({"rows": [{k: v for k, v in GOOD.items() if k != "petal_width"}]}, "petal_width", "missing"),
        ({"rows": [{**GOOD, "colour": "red"}]}, "colour", "extra_forbidden"),
        ({"rows": [{**GOOD, "petal_length": 31}]}, "petal_length", "less_than_equal"),
        ({"rows": [{**GOOD, "petal_length": -1}]}, "petal_length", "greater_than_equal"),
        (
            b'{"rows": [{"sepal_length": NaN, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}]}',
            "sepal_length",
            "finite_number",
        ),
        (
            b'{"rows": [{"sepal_length": 5.1, "sepal_width": -Infinity, "petal_length": 1.4, "petal_width": 0.2}]}',
            "sepal_width",
            "finite_number",
        ),
        ({"rows": []}, "rows", "too_short"),
        ({"rows": [GOOD] * 51}, "rows", "too_long"),
        ({"rows": GOOD}, "rows", "list_type"),
        ({}, "rows", "missing"),
        (b'{"rows": [{"sepal_length": 5.1,', None, "json_invalid"),
    ],
)
def test_bad_requests_answer_400_naming_the_field(url: str, body: bytes | dict, field: str | None, kind: str) -> None:
    status, answer = post(url, body)
    assert status == 400
    (problem,) = answer["detail"][:1]
    assert problem["type"] == kind
    if field is not None:
        assert field in [str(part) for part in problem["loc"]]


def test_unknown_category_is_refused_for_a_categorical_dataset() -> None:
    from tabpipe.data.schema import builtin

    model = row_validator(builtin("employment"), "answer")  # declared categories bind under either policy
    with pytest.raises(ValueError, match="SEX"):
        model.validate_python({"AGEP": 30.0, **dict.fromkeys(builtin("employment").categorical, "1"), "SEX": "9"})


def test_oversized_body_is_refused_with_413(url: str) -> None:
    status, answer = post(url, b"[" + b" " * 200_000 + b"]")
    assert status == 413 and "over 100000 bytes" in answer["error"]


def test_readiness_model_info_and_custom_metrics(url: str) -> None:
    assert get(url, "/readyz")[0] == 200
    status, info = post(url, {}, "/model")
    assert status == 200
    assert info["dataset"] == "iris" and info["schema"]["target"] == "species" and "roc_auc" in info["metrics"]
    post(url, {"rows": [GOOD]})
    post(url, {"rows": []})
    _, metrics = get(url, "/metrics")
    assert 'tabpipe_predictions_total{label="setosa"}' in metrics
    assert 'tabpipe_rejected_requests_total{status="400"}' in metrics
    assert "bentoml_service_request_duration_seconds" in metrics


def test_a_machine_with_only_the_pipeline_outputs_serves_the_same_model(
    built: tuple[Path, Path], tmp_path: Path
) -> None:
    """As after `dvc pull`: serving.json + the served model, an empty BentoML store, no retraining."""
    repo, _ = built
    run_env = env(BENTOML_HOME=str(tmp_path / "empty-store"))
    args = [str(BIN / "bentoml"), "serve", "--host", "127.0.0.1", "--port", "9"]
    refused = run(args, repo, check=False, env=run_env, timeout=120)
    assert refused.returncode == 1 and "run `tabpipe store-model` first" in refused.stderr
    run(tabpipe_command("store-model"), repo, env=run_env)
    with serving(repo, tmp_path / "empty-store") as address:
        status, answer = post(address, {"rows": [GOOD]})
    assert status == 200 and answer["predictions"][0]["label"] == "setosa"
    assert (tmp_path / "empty-store/models/tabpipe-iris").is_dir()


def test_a_tampered_model_file_is_refused(built: tuple[Path, Path], tmp_path: Path) -> None:
    """After a `dvc pull`, `tabpipe store-model` puts the model into the store only if its hash is the gated one."""
    repo, _ = built
    copy = tmp_path / "copy"
    shutil.copytree(repo, copy, ignore=shutil.ignore_patterns(".dvc", ".git", "mlruns", "mlflow.db"))
    (copy / "models/served/model.onnx").write_bytes(b"not the gated model")
    run_env = env(BENTOML_HOME=str(tmp_path / "store"))
    stored = run(tabpipe_command("store-model"), copy, check=False, env=run_env)
    assert stored.returncode == 1
    assert "does not match the gated model" in stored.stderr and "Traceback" not in stored.stderr
    assert not (tmp_path / "store/models/tabpipe-iris").exists()
    assert run([str(BIN / "bentoml"), "build"], copy, check=False, env=run_env).returncode != 0


def test_without_the_model_serve_exits_with_one_line(built: tuple[Path, Path], tmp_path: Path) -> None:
    repo, _ = built
    copy = tmp_path / "copy"
    shutil.copytree(repo, copy, ignore=shutil.ignore_patterns(".dvc", ".git", "mlruns", "mlflow.db", "model.onnx"))
    args = [str(BIN / "bentoml"), "serve", "--host", "127.0.0.1", "--port", "9"]
    result = run(args, copy, check=False, env=env(BENTOML_HOME=str(tmp_path / "empty")), timeout=120)
    assert result.returncode == 1
    assert "error: models/served/model.onnx: model file missing; run `dvc pull` or `dvc repro`" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_bentoml_build_packs_the_gated_model(built: tuple[Path, Path], tmp_path: Path) -> None:
    import tarfile

    repo, home = built
    bentoml = [str(BIN / "bentoml")]
    run_env = env(BENTOML_HOME=str(home))
    run([*bentoml, "build"], repo, env=run_env)
    info = json.loads(run([*bentoml, "get", "tabpipe:latest", "-o", "json"], repo, env=run_env).stdout)
    manifest = json.loads((repo / "models/serving.json").read_text())
    assert [m["tag"] for m in info["services"][0]["models"]] == [manifest["tag"]]
    run([*bentoml, "export", "tabpipe:latest", str(tmp_path / "tabpipe.bento")], repo, env=run_env)
    with tarfile.open(tmp_path / "tabpipe.bento") as bento:
        names = bento.getnames()
    name, version = manifest["tag"].split(":")
    assert f"./models/{name}/{version}/model.onnx" in names
    assert "./src/models/serving.json" in names and "./src/service.py" in names
    assert "./src/tabpipe/serve/request.py" in names
    assert not [n for n in names if n.startswith(("./src/tabpipe/tracking", "./src/tabpipe/model/search"))]


def answer_with_id(url: str, body: bytes, content_type: str = "application/json") -> tuple[int, str]:
    """POST to /predict; the status and BentoML's request id (the X-BentoML-Request-ID header)."""
    request = urllib.request.Request(f"{url}/predict", data=body, headers={"content-type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.headers.get("x-bentoml-request-id", "")
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("x-bentoml-request-id", "")


def new_lines(log: Path, seen: int, count: int) -> list[str]:
    """The lines `log` gained after its first `seen` characters, once there are `count` of them."""
    deadline = time.monotonic() + 10
    while len(lines := log.read_text()[seen:].splitlines()) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    return lines


def body(sepal_length: str, extra: str = "") -> bytes:
    return f'{{"rows": [{{"sepal_length": {sepal_length}, "sepal_width": 3.5, "petal_length": 1.4, '.encode() + (
        f'"petal_width": 0.2{extra}}}]}}'.encode()
    )


MISTAKES = [  # issue 29's malformed requests, each with what its line must name
    (body('"5.1"'), "sepal_length"),
    (body("true"), "sepal_length"),
    (body("NaN"), "sepal_length"),
    (body("1e400"), "sepal_length"),
    (body("5.1", ', "x": 1'), "rows.0.x"),
    (b'{"rows": []}', "rows"),
    (b'{"rows": {"a": 1}}', "rows"),
    (b"", "rows"),  # no body: no rows
    (b'{"rows": [[[[[[[[[[1]]]]]]]]]]}', "rows.0"),
    (b'{"rows": [{"sepal_length": 5.1,', "body"),
    (body("5.1")[:-1] + b', "rows": []}', "rows"),  # a duplicate key: the last one counts
]


def test_client_errors_log_one_warning_line_each_naming_request_status_and_field(
    built: tuple[Path, Path], url: str
) -> None:
    log = built[0] / "serve.log"
    seen = len(log.read_text())
    answered = [(answer_with_id(url, body), field) for body, field in MISTAKES]
    answered.append((answer_with_id(url, b"x", "text/plain"), "content-type"))  # the request guard's 415
    lines = new_lines(log, seen, len(answered))
    assert len(lines) == len(answered), "\n".join(lines)  # one line per refused request, no traceback
    for line, ((status, request_id), field) in zip(lines, answered, strict=True):
        assert 400 <= status < 500 and request_id
        assert "[WARNING]" in line and f"client error {status} on POST /predict (request {request_id}): " in line
        assert field in line.split("): ", 1)[1], line
    assert "Traceback" not in log.read_text()[seen:]


def test_json_logs_carry_the_same_fields(built: tuple[Path, Path], tmp_path: Path) -> None:
    repo, home = built
    copy = tmp_path / "repo"
    shutil.copytree(repo, copy, ignore=shutil.ignore_patterns("serve.log", "logs"))
    with serving(copy, home, TABPIPE_LOG_FORMAT="json") as address:
        status, request_id = answer_with_id(address, MISTAKES[0][0])
    records = [json.loads(line) for line in (copy / "serve.log").read_text().splitlines() if line.startswith("{")]
    refused = [record for record in records if record["level"] == "WARNING"]
    assert status == 400 and [r["request_id"] for r in refused] == [request_id]
    assert refused[0]["status"] == 400 and refused[0]["fields"][0].startswith("rows.0.sepal_length: ")
    assert any(record["message"] == "Service tabpipe initialized" for record in records)
    # No token configured: the `bentoml serve` process says once that the API is open (a text line).
    assert (copy / "serve.log").read_text().count("[WARNING] [cli] open: no token configured") == 1


def asked(url: str, path: str, authorization: str | None = None) -> tuple[int, str | None, dict]:
    """POST one good row to `path`, with this Authorization header if any; the status, the
    WWW-Authenticate header and the parsed answer."""
    headers = {"content-type": "application/json", **({"authorization": authorization} if authorization else {})}
    request = urllib.request.Request(f"{url}{path}", data=json.dumps({"rows": [GOOD]}).encode(), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, answer.headers.get("www-authenticate"), json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("www-authenticate"), json.loads(error.read())


def test_a_token_guards_the_api_and_leaves_probes_metrics_and_docs_open(
    built: tuple[Path, Path], url: str, tmp_path: Path
) -> None:
    """With TABPIPE_API_TOKEN_FILE (a container secret, newline and all): /predict and /model answer 401
    naming the problem, counted and logged without the token; the right token gets the open service's
    answer; the probes, /metrics and the docs page need none."""
    repo, home = built
    copy = tmp_path / "repo"
    shutil.copytree(repo, copy, ignore=shutil.ignore_patterns("serve.log", "logs"))
    secret = "tabpipe-test-T0ken"
    (tmp_path / "token").write_text(f"{secret}\n")
    unauthorized = ("tabpipe_rejected_requests_total", ("status", "401"))
    with serving(copy, home, **{token.FILE_ENV: str(tmp_path / "token")}) as address:
        assert samples(address, "tabpipe_rejected_requests")[unauthorized] == 0  # at 0 before the first burst
        refused = [
            asked(address, "/predict"),
            asked(address, "/predict", "Bearer not-the-token"),
            asked(address, "/model", f"Basic {secret}"),
            asked(address, "/explain"),
        ]
        assert refused == [
            (401, "Bearer", {"error": token.MISSING}),
            (401, 'Bearer error="invalid_token"', {"error": token.WRONG}),
            (401, "Bearer", {"error": token.NOT_BEARER}),
            (401, "Bearer", {"error": token.MISSING}),
        ]
        assert samples(address, "tabpipe_rejected_requests")[unauthorized] == len(refused)
        status, _, guarded = asked(address, "/predict", f"Bearer {secret}")
        _, _, opened = asked(url, "/predict")
        assert status == 200 and (guarded["model"], guarded["predictions"]) == (opened["model"], opened["predictions"])
        status, _, model = asked(address, "/model", f"Bearer {secret}")
        assert status == 200 and model["name"] == "tabpipe-iris"
        status, _, explained = asked(address, "/explain", f"Bearer {secret}")
        assert status == 200 and len(explained["explanations"]) == 1
        for path in ("/health", "/readyz", "/livez", "/metrics", "/", "/docs.json"):
            assert get(address, path)[0] == 200, path
        spec = json.loads(get(address, "/docs.json")[1])  # the docs page's Authorize button sends the token
        assert spec["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
        assert [spec["paths"][route]["post"]["security"] for route in ("/predict", "/explain", "/model")] == [
            [{"bearer": []}]
        ] * 3
    said = (copy / "serve.log").read_text()
    lines = [line.split("): ", 1)[1] for line in said.splitlines() if "client error 401" in line]
    problems = [token.MISSING, token.WRONG, token.NOT_BEARER, token.MISSING]
    assert len(lines) == len(problems) and all(map(str.startswith, lines, problems)), lines
    assert secret not in said and "open: no token configured" not in said


def test_a_bad_token_configuration_stops_serve_with_one_line(built: tuple[Path, Path], tmp_path: Path) -> None:
    """Both ways of giving the token at once: `bentoml serve` exits 1 naming them, not the token."""
    repo, home = built
    (tmp_path / "token").write_text("tabpipe-test-T0ken\n")
    given = {token.ENV: "tabpipe-test-T0ken", token.FILE_ENV: str(tmp_path / "token")}
    args = [str(BIN / "bentoml"), "serve", "--host", "127.0.0.1", "--port", "9"]
    result = run(args, repo, check=False, env=env(BENTOML_HOME=str(home), **given), timeout=120)
    said = result.stderr + result.stdout
    assert result.returncode == 1 and "error: TABPIPE_API_TOKEN and TABPIPE_API_TOKEN_FILE are both set" in said
    assert "Traceback" not in said and "T0ken" not in said


def test_health_answers_the_model_and_its_readiness(built: tuple[Path, Path], url: str) -> None:
    manifest = json.loads((built[0] / "models/serving.json").read_text())
    status, body = get(url, "/health")
    name, version = manifest["tag"].split(":")
    assert status == 200 and json.loads(body) == {"name": name, "version": version, "ready": True}
    assert get(url, "/readyz")[0] == 200 and get(url, "/livez")[0] == 200  # BentoML's probes as they were


def page_requests(net_log: Path, origin: str) -> list[str]:
    """Every URL the page at `origin` asked for, from Chromium's net log (the browser's own update and
    account checks have another isolation key, and are not the page's)."""
    log = json.loads(net_log.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [
        event["params"]["url"]
        for event in log["events"]
        if event["type"] == start and str(event.get("params", {}).get("network_isolation_key", "")).startswith(origin)
    ]


@needs("chromium", debian="chromium")
def test_the_docs_page_makes_no_request_beyond_the_service(url: str, tmp_path: Path) -> None:
    net_log = tmp_path / "net.json"
    browser = [
        "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-features=AutofillServerCommunication",  # Chromium's own call, not the page's
        f"--user-data-dir={tmp_path / 'profile'}", f"--log-net-log={net_log}", "--virtual-time-budget=5000",
        "--dump-dom", f"{url}/",
    ]  # fmt: skip
    dom = subprocess.run(browser, capture_output=True, text=True, timeout=120, check=True).stdout
    assert 'id="swagger-ui"' in dom and "/predict" in dom  # Swagger UI rendered the service's API
    requested = page_requests(net_log, "http://127.0.0.1")
    assert f"{url}/docs.json" in requested
    assert [u for u in requested if urllib.parse.urlsplit(u).hostname != "127.0.0.1"] == []
