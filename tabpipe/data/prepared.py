"""The prepared folder ingest writes and every later stage reads: its file names live here only."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tabpipe.core import files
from tabpipe.data import schema

if TYPE_CHECKING:
    import pandas as pd

    from tabpipe.data.datasets import Prepared
    from tabpipe.data.schema import Schema

SPLITS = ("train", "test")


def split_path(folder: Path, name: str) -> Path:
    return folder / f"{name}.parquet"


def read_schema(folder: Path) -> Schema:
    return schema.read(folder / "schema.json")


def read_split(folder: Path, name: str) -> pd.DataFrame:
    return files.read_parquet(split_path(folder, name))


def write(folder: Path, prepared: Prepared, dataset: str) -> None:
    files.write_parquet(split_path(folder, "train"), prepared.train)
    files.write_parquet(split_path(folder, "test"), prepared.test)
    files.write_json(folder / "schema.json", prepared.schema.to_dict())
    files.write_json(folder / "source.json", {"dataset": dataset, "source": prepared.source})
