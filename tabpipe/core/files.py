"""File I/O at the entry points' edges: JSON, YAML, text, parquet; every write is atomic."""

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from tabpipe.core.errors import PipelineError


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it over `path` only if the block succeeds.

    A killed or failing writer leaves the old file (or none), never a truncated one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextmanager
def atomic_folder(path: str | Path) -> Iterator[Path]:
    """Yield a temporary folder beside `path`; it takes `path`'s place (a file or a folder there is replaced)
    only if the block succeeds, so a reader never sees a folder half written."""
    import shutil

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
        old = Path(f"{tmp}.old")
        if path.exists() or path.is_symlink():  # a rename cannot replace a folder that holds files
            os.replace(path, old)
        os.replace(tmp, path)
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old)
        elif old.exists() or old.is_symlink():
            old.unlink()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _umask() -> int:
    """The process umask (mkstemp creates files 0600; outputs should get the usual mode)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_with(path: str | Path, writer: Callable[[Path], Any]) -> None:
    """Atomically write `path` by calling writer(temporary_path)."""
    with atomic_path(path) as tmp:
        writer(tmp)


def write_text(path: str | Path, text: str) -> None:
    write_with(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json(path: str | Path, data: Any) -> None:
    """Stable JSON (sorted keys, fixed indent) so identical results give identical bytes."""
    write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def read_json(path: str | Path) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PipelineError(f"{path}: file not found") from None
    except json.JSONDecodeError as error:
        raise PipelineError(f"{path}: not valid JSON ({error.msg} at line {error.lineno})") from None


def write_parquet(path: str | Path, frame: Any) -> None:
    write_with(path, lambda tmp: frame.to_parquet(tmp, index=False))


def read_parquet(path: str | Path) -> Any:
    import pandas as pd

    try:
        return pd.read_parquet(path)
    except FileNotFoundError:
        raise PipelineError(f"{path}: file not found") from None


def read_mapping(path: str | Path, expected: str) -> dict[str, Any]:
    """A YAML file that must hold a mapping (`expected` says of what, for the error line)."""
    try:
        value = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PipelineError(f"{path}: file not found") from None
    except yaml.YAMLError as error:
        raise PipelineError(f"{path}: not valid YAML ({error})".replace("\n", " ")) from None
    if not isinstance(value, dict):
        raise PipelineError(f"{path}: expected a mapping of {expected}")
    return value
