"""Local servers started beside a project, on 127.0.0.1, and stopped by their process group.

The release smoke test, the benchmarks, the simulation and the tests start servers through these.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def background(
    args: list[str], cwd: Path, run_env: dict[str, str], ready: str, log: Path, timeout: float = 90
) -> Iterator[int]:
    """Start a server process, wait until `ready` answers 200, and stop its process group afterwards."""
    with log.open("w") as out:
        process = subprocess.Popen(
            args, cwd=cwd, env=run_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            deadline = time.monotonic() + timeout
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"{args[0]} exited {process.returncode}:\n{log.read_text()}")
                with contextlib.suppress(OSError), urllib.request.urlopen(ready, timeout=2) as answer:
                    if answer.status == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{args[0]} not ready in {timeout}s:\n{log.read_text()}")
                time.sleep(0.5)
            yield process.pid
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@contextlib.contextmanager
def bentoml_serve(repo: Path, bin_dir: Path, run_env: dict[str, str], ready: str = "/readyz") -> Iterator[str]:
    """A real `bentoml serve` of the project at `repo` on 127.0.0.1; yields its URL once `ready` answers 200."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [str(bin_dir / "bentoml"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    with background(args, repo, run_env, f"{url}{ready}", repo / "serve.log"):
        yield url
