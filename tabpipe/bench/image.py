"""Image benchmark: the service image's size over its Python base, its time to ready and to stop,
beside BentoML's default image of the same Bento, in one run.

    tabpipe bench image                  # after dvc repro; podman or docker (about 4 minutes)

Both images are built from one Bento's service, code, model and packages: ours through
deploy/Dockerfile.j2 (bentofile.yaml), the default from the same bentofile without the template.
Sizes are exact; times drift between runs here, so read the median and the ratio within one run.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from tabpipe.core import files
from tabpipe.core.layout import paths
from tabpipe.deploy import image as images
from tabpipe.deploy import release
from tabpipe.sandbox.servers import free_port
from tabpipe.serve import manifest

BENCH = "tabpipe-bench"


def size_mb(tool: str, image: str) -> float:
    """An image's size as the engine reports it (uncompressed layers), in MB."""
    return int(images.command([tool, "image", "inspect", "--format", "{{.Size}}", image], "sizing").strip()) / 1e6


def start_and_stop(tool: str, image: str, timeout: float = 120) -> dict[str, float]:
    """Seconds from `run` to /readyz answering 200, and from SIGTERM to exit (with its exit code)."""
    started = time.monotonic()
    name, url = images.start(tool, image, free_port())
    try:
        images.wait_ready(tool, name, url, timeout)
        ready = time.monotonic() - started
        stopping = time.monotonic()
        images.command([tool, "stop", "--time", "10", name], f"stopping {name}")
        stopped = time.monotonic() - stopping
        code = images.command([tool, "inspect", "--format", "{{.State.ExitCode}}", name], "inspecting").strip()
        return {"ready_s": ready, "stop_s": stopped, "exit_code": int(code)}
    finally:
        subprocess.run([tool, "rm", "--force", name], capture_output=True, timeout=60)


def measure(tool: str, image: str, base: str, starts: int) -> dict[str, Any]:
    """Size over the base image, and the medians of `starts` starts and stops."""
    runs = [start_and_stop(tool, image) for _ in range(starts)]
    size = size_mb(tool, image)
    return {
        "size_mb": round(size, 1),
        "over_base_mb": round(size - size_mb(tool, base), 1),
        "ready_s_median": round(statistics.median(r["ready_s"] for r in runs), 2),
        "stop_s_median": round(statistics.median(r["stop_s"] for r in runs), 2),
        "exit_codes": sorted({r["exit_code"] for r in runs}),
    }


def default_bento(root: Path, run_env: dict[str, str]) -> str:
    """The same Bento built with BentoML's default Dockerfile: bentofile.yaml without the template."""
    spec = yaml.safe_load((root / "bentofile.yaml").read_text())
    spec["docker"].pop("dockerfile_template")
    path = root / "bentofile.default.yaml"
    path.write_text(yaml.safe_dump(spec))
    try:
        return release.build(root, run_env, path.name)
    finally:
        path.unlink()


def run(root: Path, tool: str, starts: int, out: Path) -> str:
    """Build both images, start and stop each `starts` times, write `out`; the summary line."""
    run_env = dict(os.environ)
    base = yaml.safe_load((root / "bentofile.yaml").read_text())["docker"]["base_image"]
    built = {"ours": release.build(root, run_env), "bentoml_default": default_bento(root, run_env)}
    # Ours as `tabpipe release --image` ships it, with what /explain needs; BentoML's default has no such step.
    packages = {"ours": release.image_packages(manifest.read(paths(root)["models"]["serving"])), "bentoml_default": []}
    results: dict[str, Any] = {"engine": tool, "base_image": base, "starts": starts, "images": {}}
    try:
        for which, bento in built.items():
            image = f"{BENCH}:{which}"
            began = time.monotonic()
            images.build(tool, bento, image, packages[which], run_env)
            results["images"][which] = {"bento": bento, "build_s": round(time.monotonic() - began, 1)}
            results["images"][which].update(measure(tool, image, base, starts))
    finally:
        subprocess.run([tool, "rmi", "--force", *(f"{BENCH}:{which}" for which in built)], capture_output=True)
        subprocess.run(
            [sys.executable, "-m", "bentoml", "delete", "-y", *built.values()], capture_output=True, env=run_env
        )
    ours, default = results["images"]["ours"], results["images"]["bentoml_default"]
    results["size_ratio"] = round(ours["over_base_mb"] / default["over_base_mb"], 3)
    files.write_json(out, results)
    return (
        f"image: {ours['over_base_mb']:.0f} MB over {base} (BentoML's default: {default['over_base_mb']:.0f} MB), "
        f"ready in {ours['ready_s_median']:.1f} s (default {default['ready_s_median']:.1f} s), "
        f"stops in {ours['stop_s_median']:.1f} s; {out}"
    )
