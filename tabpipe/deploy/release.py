"""Release: build the Bento, serve the built Bento on 127.0.0.1, and say so only once it answers as evaluate did.

The server runs in an empty temporary folder with a throwaway prediction log, in its own process
group (stopped whatever happens), from the Bento's folder in the store: nothing of the working tree
is used. A failed smoke test deletes the Bento just built, so `<service>:latest` stays the previous one.
With an image, the Bento's container runs on 127.0.0.1 and must answer alike before it becomes
`tabpipe:release` (tabpipe/deploy/image.py); a failed one is removed with the Bento. With an API token
in the environment (TABPIPE_API_TOKEN or TABPIPE_API_TOKEN_FILE), both servers are given it and asked
with it, so the release is checked as it will be called.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tabpipe.core.errors import PipelineError
from tabpipe.core.files import read_parquet
from tabpipe.core.hashing import file_sha256
from tabpipe.core.layout import paths
from tabpipe.data import prepared
from tabpipe.deploy import image as images
from tabpipe.sandbox.servers import background, free_port
from tabpipe.serve import bento_model
from tabpipe.serve import manifest as manifests
from tabpipe.serve import token as api_token
from tabpipe.task import tasks

if TYPE_CHECKING:
    import pandas as pd

    from tabpipe.serve.manifest import Manifest

TOLERANCE = 1e-9  # served probabilities against evaluate's: the same file, the same runtime
BENTO_TAG_TAG = "release.bento"  # on the champion's registered version: the Bento that last released it


@dataclass(frozen=True)
class Expected:
    """What each smoke row must be answered, and who said so: a label and every class's probability
    (`values` None), or a regressor's value and interval (`labels` and `probabilities` empty)."""

    labels: list[str]
    probabilities: list[dict[str, float]]
    source: str  # "evaluate", or "model <tag> in-process" when data/predictions/ holds another model's answers
    values: list[tuple[float, float, float]] | None = None  # (value, lower, upper) per row


def smoke_rows(test: pd.DataFrame, features: list[str], count: int) -> list[dict[str, Any]]:
    """The first `count` test rows as request rows: features only, missing values as null."""
    head = test[features].head(count).astype(object)
    return head.where(head.notna(), None).to_dict(orient="records")


def from_predictions(saved: pd.DataFrame, classes: list[str], count: int) -> Expected:
    """evaluate's answers (data/predictions/test.parquet: `predicted`, `proba_<class>`, or a regressor's
    `lower` and `upper`) for the first rows."""
    columns = ["predicted", *(f"proba_{label}" for label in classes)] if classes else ["predicted", "lower", "upper"]
    missing = [column for column in columns if column not in saved.columns]
    if missing:
        raise PipelineError(f"evaluate's predictions have no column {missing[0]!r}; rerun `dvc repro`")
    head = saved.head(count)
    if not classes:
        values = [(float(v), float(lo), float(hi)) for v, lo, hi in head[columns].itertuples(index=False)]
        return Expected([], [], "evaluate", values)
    probabilities = [{label: float(row[f"proba_{label}"]) for label in classes} for _, row in head.iterrows()]
    return Expected([str(label) for label in head["predicted"]], probabilities, "evaluate")


def from_model(model: Any, rows: list[dict[str, Any]], served: Manifest) -> Expected:
    """What the served model file answers in this process, through the service's own prediction path."""
    from tabpipe.serve import request

    source = f"model {served.tag} in-process"
    task = tasks.of(served.schema.task)
    predicted = request.predict(model, rows, served.schema, task)
    if task.estimator_type == "regressor":  # Expected keeps a value and its interval's ends
        ends = predicted.outputs.tolist()
        return Expected(
            [], [], source, [(float(v), lo, hi) for v, (lo, hi) in zip(predicted.labels, ends, strict=True)]
        )
    outputs = predicted.outputs.tolist()
    probabilities = [dict(zip(predicted.names, row, strict=True)) for row in outputs]
    return Expected([str(label) for label in predicted.labels], probabilities, source)


def difference(answers: list[dict[str, Any]], expected: Expected, tolerance: float = TOLERANCE) -> str | None:
    """The first way the served answers differ from the expected ones, in words; None when they agree."""
    if expected.values is not None:
        return value_difference(answers, expected, tolerance)
    if len(answers) != len(expected.labels):
        return f"answered {len(answers)} of {len(expected.labels)} rows"
    pairs = zip(answers, expected.labels, expected.probabilities, strict=True)
    for row, (answer, label, probabilities) in enumerate(pairs):
        if answer.get("label") != label:
            return f"test row {row} answered {answer.get('label')!r}, {expected.source} predicted {label!r}"
        got = answer.get("probabilities") or {}
        if set(got) != set(probabilities):
            return f"test row {row} answered classes {sorted(got)}, {expected.source} has {sorted(probabilities)}"
        for name, value in probabilities.items():
            if not abs(float(got[name]) - value) <= tolerance:
                return (
                    f"test row {row}: probability of {name!r} {got[name]!r}, {expected.source} gave {value!r} "
                    f"(tolerance {tolerance:g})"
                )
    return None


def value_difference(answers: list[dict[str, Any]], expected: Expected, tolerance: float) -> str | None:
    """A regressor's answers against the expected values and intervals, relative to each value's size."""
    wanted = expected.values or []
    if len(answers) != len(wanted):
        return f"answered {len(answers)} of {len(wanted)} rows"
    for row, (answer, (value, lower, upper)) in enumerate(zip(answers, wanted, strict=True)):
        interval = answer.get("interval") or [None, None]
        got = {"value": answer.get("value"), "lower end": interval[0], "upper end": interval[-1]}
        for name, want in (("value", value), ("lower end", lower), ("upper end", upper)):
            if not isinstance(got[name], int | float) or not abs(got[name] - want) <= tolerance * max(1.0, abs(want)):
                return (
                    f"test row {row}: {name} {got[name]!r}, {expected.source} gave {want!r} (tolerance {tolerance:g})"
                )
    return None


def server_failure(message: str, timeout: float) -> str:
    """One line for a server that exited or never got ready (sandbox.background's error and the server's log)."""
    first, _, log = message.partition("\n")
    said = [line.strip() for line in log.splitlines() if line.strip().startswith("error:")]
    if " not ready in " in first:
        reason = f"not ready within {timeout:g} s"
    else:
        reason = f"the server exited ({first.rsplit(' exited ', 1)[-1].rstrip(':')})"
    return f"{reason}; it said: {said[-1].removeprefix('error: ')}" if said else reason


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1].removeprefix("error: ")[:300] if lines else "no output"


def build(root: Path, run_env: dict[str, str], bentofile: str | None = None) -> str:
    """`bentoml build` in the project (of `bentofile`, else bentofile.yaml); the new Bento's tag."""
    args = [sys.executable, "-m", "bentoml", "build", "--output", "tag", *(["-f", bentofile] if bentofile else [])]
    result = subprocess.run(args, cwd=root, env=run_env, capture_output=True, text=True, timeout=900)
    tags = [line.strip().removeprefix("__tag__:") for line in result.stdout.splitlines() if "__tag__:" in line]
    if result.returncode != 0 or not tags:
        raise PipelineError(f"release: bentoml build failed: {last_line(result.stderr or result.stdout)}")
    return tags[-1]


def ask(url: str, rows: list[dict[str, Any]], deadline: float, token: bytes | None) -> dict[str, Any]:
    """POST rows to /predict, with the bearer token when there is one; a 503 (a worker still loading) is
    asked again until the deadline."""
    data = json.dumps({"rows": rows}, allow_nan=False).encode()
    headers = {"content-type": "application/json"}
    if token is not None:
        headers["authorization"] = f"Bearer {token.decode()}"
    while True:
        request = urllib.request.Request(f"{url}/predict", data=data, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                return json.loads(answer.read())
        except urllib.error.HTTPError as error:
            if error.code == 503 and time.monotonic() < deadline:
                time.sleep(0.5)
                continue
            body = " ".join(error.read().decode(errors="replace").split())[:200]
            raise PipelineError(f"/predict answered HTTP {error.code}: {body}") from None
        except (urllib.error.URLError, OSError, ValueError) as error:
            raise PipelineError(f"/predict: {error}") from None


def given_token(run_env: dict[str, str], token: bytes | None) -> dict[str, str]:
    """`run_env` with the token as TABPIPE_API_TOKEN however it was given here: a token file's path may
    be relative to the project, and the server runs in another folder."""
    kept = {name: value for name, value in run_env.items() if name not in (api_token.ENV, api_token.FILE_ENV)}
    return {**kept, **api_token.environment(token)}


def smoke_test(
    bento: Path,
    rows: list[dict[str, Any]],
    served: Manifest,
    timeout: float,
    run_env: dict[str, str],
    token: bytes | None,
) -> list[dict[str, Any]]:
    """Serve the Bento folder from an empty temporary folder on 127.0.0.1; the answers to `rows`.

    The folder, not the tag: `bentoml serve <tag>` first tries the tag as `<module>:<attribute>`,
    and as the Bento is called `tabpipe` that would import the installed tabpipe package before
    the Bento's own copy.
    """
    with tempfile.TemporaryDirectory(prefix="tabpipe-release-") as folder:
        work = Path(folder)
        server_env = {**given_token(run_env, token), "TABPIPE_PREDICTION_LOG": str(work / "predictions.db")}
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        args = [sys.executable, "-m", "bentoml", "serve", str(bento), "--host", "127.0.0.1", "--port", str(port)]
        try:
            with background(args, work, server_env, f"{url}/readyz", work / "serve.log", timeout):
                return answers(url, rows, served, timeout, token)
        except RuntimeError as error:  # from background(): the server exited or was not ready in time
            raise PipelineError(server_failure(str(error), timeout)) from None


def answers(
    url: str, rows: list[dict[str, Any]], served: Manifest, timeout: float, token: bytes | None
) -> list[dict[str, Any]]:
    """The served answers to `rows`, asked in requests of at most serve.max_rows, each checked to come
    from the manifest's model."""
    deadline = time.monotonic() + timeout
    batch = served.serve.max_rows
    found: list[dict[str, Any]] = []
    for start in range(0, len(rows), batch):
        body = ask(url, rows[start : start + batch], deadline, token)
        if body.get("model") != served.identity:
            raise PipelineError(f"answered as model {body.get('model')}, the manifest serves {served.tag}")
        found += body.get("predictions") or []
    return found


def expectation(root: Path, served: Manifest, rows: list[dict[str, Any]]) -> Expected:
    """evaluate's answers when data/predictions/ was made by the served model file, else (after a
    rollback, say) what the stored model answers in this process."""
    import bentoml

    locations = paths(root)
    model_file = locations["models"]["served"] / served.model_file
    if model_file.is_file() and file_sha256(model_file) == served.model_sha256:
        saved = read_parquet(locations["data"]["predictions"])
        return from_predictions(saved, list(served.schema.classes), len(rows))
    return from_model(
        bento_model.load_model(bentoml.models.get(served.tag), tasks.of(served.schema.task)), rows, served
    )


def discard(tag: str) -> str:
    """Delete the Bento just built; what stays the release, in words."""
    import bentoml
    from bentoml.exceptions import NotFound

    bentoml.bentos.delete(tag)
    name = tag.split(":", 1)[0]
    try:
        return f"{bentoml.bentos.get(f'{name}:latest').tag} stays the release"
    except NotFound:
        return f"no {name} Bento is left (there was no earlier release)"


def record(root: Path, served: Manifest, tag: str) -> None:
    """Tag the registry's champion with the Bento when the champion is the model it serves (best effort)."""
    from tabpipe.core import settings
    from tabpipe.tracking import backend as tracking
    from tabpipe.tracking import registry

    uri = tracking.tracking_uri(root)
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        return  # no local registry (outputs from `dvc pull`): nothing to tag, and no empty store to create
    try:
        prefix = settings.read(root / "params.yaml").section(settings.Gate).registered_model
        name = registry.model_name(prefix, served.raw["dataset"])
        champion = registry.champion(name)
        if champion is None:
            return
        client = tracking.client()
        if client.get_model_version(name, champion.version).tags.get("served.sha256") == served.model_sha256:
            client.set_model_version_tag(name, champion.version, BENTO_TAG_TAG, tag)
    except Exception as error:  # the Bento is built and checked; the tag is a convenience
        print(f"warning: release: {tag} not recorded in the registry: {last_line(str(error))}", file=sys.stderr)


def image_packages(served: Manifest) -> list[str]:
    """What the image installs beyond the Bento's packages: what the stored trained pipeline needs (/explain)."""
    pipeline = bento_model.load_pipeline(bento_model.stored(served.tag), tasks.of(served.schema.task))
    return images.runtime_packages(pipeline)


def image_smoke_test(
    tool: str,
    image: str,
    rows: list[dict[str, Any]],
    served: Manifest,
    expected: Expected,
    timeout: float,
    token: bytes | None,
) -> None:
    """Run the image on 127.0.0.1 with a throwaway log volume (and the token, however it was given here,
    as TABPIPE_API_TOKEN); it must answer `rows` as `expected`."""
    volume = f"tabpipe-smoke-{free_port()}"
    secrets = api_token.environment(token)
    try:
        with images.running(tool, image, free_port(), timeout, volume=volume, secrets=secrets) as url:
            problem = difference(answers(url, rows, served, timeout, token), expected)
    finally:
        subprocess.run([tool, "volume", "rm", "--force", volume], capture_output=True, timeout=60)
    if problem:
        raise PipelineError(f"image {image}: {problem}")


@dataclass(frozen=True)
class ImageOptions:
    """Where the image goes: `tool` podman or docker, `repository` its name (tags move within it)."""

    tool: str
    repository: str = images.REPOSITORY


def release_image(
    options: ImageOptions,
    bento_tag: str,
    rows: list[dict[str, Any]],
    served: Manifest,
    expected: Expected,
    timeout: float,
    token: bytes | None,
) -> str:
    """Build the Bento's image, smoke-test it, and make it the release; a failed one is removed."""
    tool = options.tool
    image = f"{options.repository}:{bento_tag.split(':', 1)[1]}"
    images.build(tool, bento_tag, image, image_packages(served), dict(os.environ))
    try:
        image_smoke_test(tool, image, rows, served, expected, timeout, token)
    except BaseException as error:
        kept = images.discard(tool, options.repository, image)
        if isinstance(error, PipelineError):
            raise PipelineError(f"{error}; {kept}") from None
        raise
    images.promote(tool, options.repository, image, served.tag)
    return image


def run(root: Path, count: int, timeout: float, image: ImageOptions | None = None) -> str:
    """Build, serve and smoke-test a release of the project at `root` (and with `image`, its container
    image); the line that says it shipped."""
    import bentoml

    locations = paths(root)
    served = manifests.read(locations["models"]["serving"])
    bento_model.require(served, locations["models"]["served"] / served.model_file)
    test = prepared.read_split(locations["data"]["prepared"], "test")
    rows = smoke_rows(test, served.schema.request_names, count)
    expected = expectation(root, served, rows)
    run_env = dict(os.environ)
    token = api_token.configured(run_env)  # a bad one stops here, before anything is built

    tag = build(root, run_env)
    try:
        answered = smoke_test(Path(bentoml.bentos.get(tag).path), rows, served, timeout, run_env, token)
        problem = difference(answered, expected)
        if problem:
            raise PipelineError(problem)
        if image:
            release_image(image, tag, rows, served, expected, timeout, token)
    except PipelineError as error:
        kept = discard(tag)
        raise PipelineError(f"release: {tag}: {' '.join(str(error).split())}; {kept}") from None
    except BaseException:
        discard(tag)
        raise
    record(root, served, tag)
    shipped = f"released {tag}: model {served.tag}, {len(rows)} test rows answered as {expected.source} did"
    if image:
        shipped += f"; image {images.release_tag(image.repository)} is {images.model_tag(image.repository, served.tag)}"
    return shipped
