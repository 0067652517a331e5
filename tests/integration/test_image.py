"""The service's container image, built and run for real with podman: `tabpipe release --image` on the
reproduced default project, then the image run as an operator runs it (a volume for the prediction
log, a restart, SIGTERM, bad input, a corrupt model) and rolled back.

Needs podman and a `python:3.11-slim` base image; .ci/run makes both (.ci/podman-offline builds the
base offline). Every image goes into a repository of the test's own, removed afterwards.
"""

import contextlib
import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from tabpipe.core.errors import PipelineError
from tabpipe.data.schema import Schema
from tabpipe.deploy.release import smoke_rows
from tabpipe.sandbox.servers import free_port
from tabpipe.serve import prediction_log
from tests.support.client import post
from tests.support.commands import env, run, tabpipe_command
from tests.support.paths import BIN
from tests.support.projects import Reproduced, copy_reproduced

pytestmark = pytest.mark.integration

PODMAN = shutil.which("podman")
BASE = "docker.io/library/python:3.11-slim"


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([PODMAN or "podman", *args], capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} exited {result.returncode}: {result.stderr[-2000:]}")
    return result


def image_id(image: str) -> str:
    return podman("image", "inspect", "--format", "{{.Id}}", image).stdout.strip()


@dataclass(frozen=True)
class Released:
    project: Reproduced
    repository: str
    line: str

    def tag(self, which: str) -> str:
        return f"{self.repository}:{which}"


@pytest.fixture(scope="module")
def released(golden: Reproduced, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Released]:
    """The default project after `dvc repro`, released with its image (into a repository of its own)."""
    if PODMAN is None or podman("image", "exists", BASE, check=False).returncode != 0:
        pytest.skip(f"needs podman and the {BASE} image (.ci/podman-offline makes both on a Debian machine)")
    project = copy_reproduced(golden, tmp_path_factory.mktemp("image"))
    repository = f"tabpipe-test-{uuid.uuid4().hex[:8]}"
    try:
        result = tabpipe("release", "--image", "--repository", repository, project=project)
        assert result.returncode == 0, result.stderr
        yield Released(project, repository, result.stdout.strip())
    finally:
        listed = podman("images", "--format", "{{.ID}}", f"localhost/{repository}", check=False).stdout.split()
        for found in sorted(set(listed)):
            podman("rmi", "--force", found, check=False)


def tabpipe(*args: str, project: Reproduced) -> subprocess.CompletedProcess[str]:
    return run(tabpipe_command(*args), project.repo, check=False, env=env(BENTOML_HOME=str(project.home)))


@contextlib.contextmanager
def container(image: str, *extra: str, volume: str | None = None) -> Iterator[tuple[str, str]]:
    """`image` running on 127.0.0.1 as an operator runs it; yields (name, URL) once /readyz answers or
    the container has left starting; removed afterwards."""
    port, name = free_port(), f"tabpipe-test-{uuid.uuid4().hex[:8]}"
    mounts = ["--volume", f"{volume}:/var/lib/tabpipe"] if volume else []
    args = ["run", "--detach", "--name", name, "--network=host", "--env", f"BENTOML_PORT={port}", *mounts, *extra]
    podman(*args, image, "--host", "127.0.0.1")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_listening(url)
        yield name, url
    finally:
        podman("rm", "--force", name, check=False)


def status(url: str, path: str) -> int | None:
    """The status a GET answers; None while nothing listens."""
    try:
        with urllib.request.urlopen(f"{url}{path}", timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None


def wait_listening(url: str, timeout: float = 60) -> None:
    """Until the server answers /livez (up, ready or not)."""
    deadline = time.monotonic() + timeout
    while status(url, "/livez") != 200:
        assert time.monotonic() < deadline, f"{url} not up within {timeout} s"
        time.sleep(0.25)


def wait_ready(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while status(url, "/readyz") != 200:
        assert time.monotonic() < deadline, f"{url} not ready within {timeout} s"
        time.sleep(0.25)


def test_release_builds_a_small_image_that_answers_as_evaluate_did(released: Released) -> None:
    repo = released.project.repo
    manifest = json.loads((repo / "models/serving.json").read_text())
    model = manifest["tag"]
    assert released.line.endswith(f"; image {released.tag('release')} is {released.tag(model.replace(':', '-'))}")
    assert image_id(released.tag("release")) == image_id(released.tag(model.replace(":", "-")))

    # Built to serve, and only that: a non-root user, a health probe, no build tools, installers or converters
    # (the base's own pip stays; the service's virtualenv has none). scikit-learn is there for /explain.
    (config,) = json.loads(podman("image", "inspect", released.tag("release")).stdout)
    assert config["Config"]["User"] == "bentoml"
    assert "/readyz" in " ".join(config["Healthcheck"]["Test"])
    script = (
        "id -u; for tool in gcc cc git uv; do command -v $tool; done; ls /app/.venv/bin | grep pip; "
        'for module in skl2onnx onnx lightgbm shap; do python -c "import $module" 2>/dev/null && echo $module; done; '
        "exit 0"
    )
    found = podman("run", "--rm", "--entrypoint", "sh", released.tag("release"), "-c", script).stdout.split()
    assert found == ["1034"], found

    # Every test row answered as evaluate answered it.
    test = pd.read_parquet(repo / "data/prepared/test.parquet")
    expected = pd.read_parquet(repo / "data/predictions/test.parquet")
    rows = smoke_rows(test, Schema.from_dict(manifest["schema"]).request_names, len(test))
    with container(released.tag("release")) as (_, url):
        wait_ready(url)
        status, body = post(url, {"rows": rows})
        explained_status, explained = post(url, {"rows": rows[:5]}, "/explain")
    assert status == 200, body
    assert explained_status == 200 and len(explained["explanations"]) == 5, explained  # what it needs is in the image
    for each in explained["explanations"]:
        for label, output in each["output"].items():
            assert abs(each["base"][label] + sum(each["contributions"][label].values()) - output) <= 1e-6
    answers = body["predictions"]
    assert [a["label"] for a in answers] == [str(label) for label in expected["predicted"]]
    for answer, (_, want) in zip(answers, expected.iterrows(), strict=True):
        for label, probability in answer["probabilities"].items():
            assert abs(probability - want[f"proba_{label}"]) <= 1e-9


def test_the_container_keeps_its_log_over_a_restart_stops_on_sigterm_and_refuses_bad_input(
    released: Released,
) -> None:
    volume = f"tabpipe-test-{uuid.uuid4().hex[:8]}"
    row = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
    try:
        with container(released.tag("release"), volume=volume) as (name, url):
            wait_ready(url)
            assert podman("healthcheck", "run", name).returncode == 0  # the image's own probe says healthy
            assert status(url, "/health") == 200
            assert podman("exec", name, "id", "-u").stdout.strip() != "0"
            assert post(url, {"rows": [row, row]})[0] == 200
            refused, body = post(url, {"rows": [{**row, "petal_width": "wide"}]})
            assert refused == 400 and "petal_width" in json.dumps(body)
            said = logs(name)
            assert "client error 400 on POST /predict" in said and "Traceback" not in said  # one quiet line

            # SIGTERM, with 10 s before podman would kill it: a clean exit, not a kill.
            podman("stop", "--time", "10", name)
            assert podman("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip() == "0"
            podman("start", name)
            wait_ready(url)
            assert post(url, {"rows": [row]})[0] == 200
            podman("stop", "--time", "10", name)

        where = Path(podman("volume", "inspect", "--format", "{{.Mountpoint}}", volume).stdout.strip())
        logged = prediction_log.read(where / "predictions.db")  # committed before each stop (the workers wait for it)
        assert len(logged) == 3  # two rows before the restart, one after; the refused request logged nothing
    finally:
        podman("volume", "rm", "--force", volume, check=False)


def test_a_corrupt_model_in_the_image_leaves_the_container_up_and_not_ready(released: Released, tmp_path: Path) -> None:
    manifest = json.loads((released.project.repo / "models/serving.json").read_text())
    name, version = manifest["tag"].split(":")
    corrupt = tmp_path / "model.onnx"
    corrupt.write_bytes(b"not an onnx model")
    inside = f"/home/bentoml/bento/models/{name}/{version}/model.onnx"
    said = f"not ready: model {manifest['tag']}"
    with container(released.tag("release"), "--volume", f"{corrupt}:{inside}:ro") as (container_name, url):
        deadline = time.monotonic() + 60
        while said not in logs(container_name):  # each worker tries to load the model once, and says so
            assert time.monotonic() < deadline, logs(container_name)
            time.sleep(0.25)
        assert status(url, "/readyz") == 503 and status(url, "/health") == 503
        answered, _ = post(
            url, {"rows": [{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}]}
        )
        assert answered == 503
        assert podman("inspect", "--format", "{{.State.Status}}", container_name).stdout.strip() == "running"


def logs(name: str) -> str:
    found = podman("logs", name)
    return found.stdout + found.stderr


def test_a_failed_image_is_removed_and_the_previous_release_comes_back_with_one_command(
    released: Released, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tabpipe.deploy import release
    from tabpipe.serve import manifest as manifests

    first = image_id(released.tag("release"))
    again = tabpipe("release", "--image", "--repository", released.repository, project=released.project)
    assert again.returncode == 0, again.stderr
    second = image_id(released.tag("release"))
    assert second != first and image_id(released.tag("previous")) == first

    back = tabpipe("rollback", "--image", "--repository", released.repository, project=released.project)
    assert back.returncode == 0, back.stderr
    assert back.stdout.startswith(f"rolled back the image: {released.tag('release')} is ")
    assert image_id(released.tag("release")) == first and image_id(released.tag("previous")) == second

    # An image that answers otherwise than expected is removed, and the release stays.
    project = released.project
    served = manifests.read(project.repo / "models/serving.json")
    rows = [{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}]
    wrong = release.Expected(["virginica"], [{"setosa": 0.0, "versicolor": 0.0, "virginica": 1.0}], "a wrong answer")
    home = env(BENTOML_HOME=str(project.home))
    latest = run([str(BIN / "bentoml"), "get", "tabpipe:latest", "-o", "json"], project.repo, env=home)
    bento = "tabpipe:" + json.loads(latest.stdout)["version"]
    monkeypatch.setenv("BENTOML_HOME", str(project.home))  # for the containerize the function starts
    with pytest.raises(PipelineError, match=f"{released.tag('release')} .* stays the release"):
        release.release_image(release.ImageOptions("podman", released.repository), bento, rows, served, wrong, 60, None)
    assert image_id(released.tag("release")) == first
    assert podman("image", "exists", f"{released.repository}:{bento.split(':')[1]}", check=False).returncode != 0
