"""The service's container image: built from a Bento with podman or Docker, run on 127.0.0.1, released
by tag.

Every image is `tabpipe:<bento version>`; an image that answered the smoke rows as evaluate did also
gets `tabpipe:<model name>-<model version>`, and the `release` tag moves to it (the image it replaces
keeps `previous`). Rolling back swaps the two. A container is stopped and removed by its name.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from importlib import metadata
from typing import Any

from tabpipe.core.errors import PipelineError

ENGINES = ("podman", "docker")
REPOSITORY = "tabpipe"  # the default: the Bento's name, as `bentoml containerize` names its image
RELEASE, PREVIOUS, SWAP = "release", "previous", "rollback-swap"
LOG_VOLUME_PATH = "/var/lib/tabpipe"  # deploy/Dockerfile.j2: the prediction log's folder, a volume


def engine(name: str | None = None) -> str:
    """The container engine to use: `name`, else podman, else docker, whichever is installed."""
    for candidate in (name,) if name else ENGINES:
        if shutil.which(candidate):
            return candidate
    wanted = name or " or ".join(ENGINES)
    raise PipelineError(f"image: {wanted} is not installed; building an image needs a container engine")


def runtime_packages(pipeline: Any) -> list[str]:
    """What the image needs beyond the Bento's packages, as installed here: the trained pipeline's, for
    POST /explain (and for serving it when compile fell back). scikit-learn always, LightGBM for that
    family, shap (with numba and llvmlite, about 215 MB) for a forest or histogram boosting."""
    from tabpipe.model.explanations import METHODS

    needed = ["scikit-learn"]
    steps = getattr(pipeline, "steps", [(None, pipeline)])
    if any(type(step).__module__.split(".")[0] == "lightgbm" for _, step in steps):
        needed.append("lightgbm")
    if METHODS.get(type(steps[-1][1]).__name__) in ("forest", "boosting"):
        needed.append("shap")
    return [f"{name}=={metadata.version(name)}" for name in needed]


def command(args: list[str], what: str, timeout: float = 120, run_env: dict[str, str] | None = None) -> str:
    """Run an engine command; its output, or one line naming what failed."""
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=run_env)
    if result.returncode != 0:
        said = [line.strip() for line in (result.stderr or result.stdout).splitlines() if line.strip()]
        raise PipelineError(f"image: {what}: {said[-1][:300] if said else f'exit {result.returncode}'}")
    return result.stdout


def build(tool: str, bento_tag: str, image: str, packages: list[str], run_env: dict[str, str]) -> None:
    """`bentoml containerize` the Bento into `image` (deploy/Dockerfile.j2 through bentofile.yaml).

    It runs from the temporary folder: BentoML 1.4 refuses a dockerfile_template outside the current
    folder, and containerize copies the Bento into a temporary folder first (bentoml/BentoML#5566).
    The build reaches the package index through the host's network.
    """
    args = [sys.executable, "-m", "bentoml", "containerize", bento_tag, "--backend", tool, "-t", image]
    args += ["--opt", "network=host"]
    if tool == "podman":
        args += ["--opt", "format=docker"]  # an OCI image would drop the HEALTHCHECK
    if packages:
        args += ["--opt", f"build-arg=RUNTIME_PACKAGES={' '.join(packages)}"]
    result = subprocess.run(args, cwd=tempfile.gettempdir(), env=run_env, capture_output=True, text=True, timeout=1800)
    if result.returncode != 0:
        said = [line.strip() for line in (result.stderr + result.stdout).splitlines() if line.strip()]
        errors = [line for line in said if "error" in line.lower()]
        raise PipelineError(f"image: building {image} failed: {(errors or said or ['no output'])[-1][:300]}")


@contextlib.contextmanager
def running(
    tool: str,
    image: str,
    port: int,
    timeout: float,
    volume: str | None = None,
    extra: tuple[str, ...] = (),
    secrets: dict[str, str] | None = None,
) -> Iterator[str]:
    """Run `image` on 127.0.0.1:`port` (the host's network) until the block ends; yields its URL once
    /readyz answers 200. The container is removed afterwards, whatever happened."""
    name, url = start(tool, image, port, volume, extra, secrets)
    try:
        wait_ready(tool, name, url, timeout)
        yield url
    finally:
        subprocess.run([tool, "rm", "--force", name], capture_output=True, timeout=60)


def start(
    tool: str,
    image: str,
    port: int,
    volume: str | None = None,
    extra: tuple[str, ...] = (),
    secrets: dict[str, str] | None = None,
) -> tuple[str, str]:
    """Start `image` detached, serving on 127.0.0.1:`port` (the host's network); its name and URL.
    `secrets` (the API token) go in by name, their values through the engine's environment: never on
    a command line that `ps` shows."""
    name = f"tabpipe-{port}"
    args = [tool, "run", "--detach", "--name", name, "--network=host", "--env", f"BENTOML_PORT={port}"]
    if volume:
        args += ["--volume", f"{volume}:{LOG_VOLUME_PATH}"]
    for secret in secrets or {}:
        args += ["--env", secret]
    run_env = {**os.environ, **secrets} if secrets else None
    command([*args, *extra, image, "--host", "127.0.0.1"], f"starting {image}", run_env=run_env)
    return name, f"http://127.0.0.1:{port}"


def wait_ready(tool: str, name: str, url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/readyz", timeout=2) as answer:
            if answer.status == 200:
                return
        state = command([tool, "inspect", "--format", "{{.State.Status}}", name], f"inspecting {name}").strip()
        if state not in ("running", "created", "configured"):
            logs = subprocess.run([tool, "logs", name], capture_output=True, text=True, timeout=30)
            said = [line for line in (logs.stdout + logs.stderr).splitlines() if line.startswith("error:")]
            raise PipelineError(f"the container {state}" + (f"; it said: {said[-1][7:]}" if said else ""))
        if time.monotonic() > deadline:
            raise PipelineError(f"the container was not ready within {timeout:g} s")
        time.sleep(0.25)


def tags(tool: str, image: str) -> list[str]:
    """The tags of `image` (an id or a tag), without the registry; empty when there is no such image."""
    found = subprocess.run(
        [tool, "image", "inspect", "--format", "{{json .RepoTags}}", image], capture_output=True, text=True, timeout=60
    )
    if found.returncode != 0:
        return []
    return sorted(tag.rsplit("/", 1)[-1] for tag in json.loads(found.stdout.strip() or "[]") or [])


def release_tag(repository: str, which: str = RELEASE) -> str:
    return f"{repository}:{which}"


def model_tag(repository: str, model: str) -> str:
    """`<repository>:<model name>-<model version>` for the model tag `<name>:<version>`."""
    return f"{repository}:{model.replace(':', '-')}"


def promote(tool: str, repository: str, image: str, model: str) -> None:
    """Make `image` the release: tag it with its model, move `release` to it and `previous` to the old one."""
    release, previous = release_tag(repository), release_tag(repository, PREVIOUS)
    command([tool, "tag", image, model_tag(repository, model)], f"tagging {image}")
    if tags(tool, release):
        command([tool, "tag", release, previous], "keeping the last release as previous")
    command([tool, "tag", image, release], f"tagging {image} as the release")


def named(found: list[str]) -> str:
    """An image's tags in words, without the moving ones."""
    fixed = [tag for tag in found if tag.split(":", 1)[1] not in (RELEASE, PREVIOUS, SWAP)]
    return ", ".join(fixed) or "an untagged image"


def discard(tool: str, repository: str, image: str) -> str:
    """Remove an image that failed its smoke test; what stays the release, in words."""
    subprocess.run([tool, "rmi", "--force", image], capture_output=True, timeout=120)
    release = release_tag(repository)
    kept = tags(tool, release)
    if not kept:
        return f"no {release} image is left (there was no earlier release)"
    return f"{release} ({named(kept)}) stays the release"


def rollback(tool: str, repository: str) -> str:
    """Swap `release` and `previous`: the image released before the current one serves again."""
    release, previous, swap = (release_tag(repository, which) for which in (RELEASE, PREVIOUS, SWAP))
    was_release, was_previous = tags(tool, release), tags(tool, previous)
    if not was_previous:
        raise PipelineError(f"rollback: there is no {previous} image to roll back to")
    command([tool, "tag", previous, swap], "rollback")
    if was_release:
        command([tool, "tag", release, previous], "rollback")
    command([tool, "tag", swap, release], "rollback")
    command([tool, "rmi", swap], "rollback")  # removes only the temporary tag
    was = f" (was {named(was_release)})" if was_release else ""
    return f"rolled back the image: {release} is {named(was_previous)} again{was}"
