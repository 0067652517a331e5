"""A batch's input read in chunks: a CSV file, a Parquet file or a folder of Parquet parts.

Whole-file problems (a format that is neither, a corrupt part, a missing column) are found before any
row is scored, so they stop the run with one line and nothing written. Memory follows the chunk.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from tabpipe.core.errors import PipelineError

if TYPE_CHECKING:
    import pandas as pd

PARQUET = (".parquet", ".pq")
CSV = (".csv",)


@dataclass(frozen=True)
class Source:
    """The input: its kind, its files (a folder's parts in name order), columns, and rows (Parquet knows them)."""

    path: Path
    kind: Literal["csv", "parquet"]
    parts: tuple[Path, ...]
    columns: tuple[str, ...]
    rows: int | None


def open_source(path: Path, required: list[str]) -> Source:
    """Check the input as a whole: its format, every part's footer, and that it has every `required` column."""
    if path.is_dir():
        from tabpipe.data.datasets import parquet_parts

        source = _parquet(path, parquet_parts(path))
    elif not path.exists():
        raise PipelineError(f"{path}: file not found")
    elif path.suffix in PARQUET:
        source = _parquet(path, (path,))
    elif path.suffix in CSV:
        source = Source(path, "csv", (path,), _csv_header(path), None)
    else:
        raise PipelineError(f"{path}: neither CSV (.csv) nor Parquet (.parquet, .pq)")
    missing = [column for column in required if column not in source.columns]
    if missing:
        raise PipelineError(f"{path}: column '{missing[0]}': missing (a row cannot be scored without it)")
    return source


def _parquet(path: Path, parts: tuple[Path, ...]) -> Source:
    """Every part's footer read (a truncated or foreign file is named); their columns must agree."""
    import pyarrow
    import pyarrow.parquet as pq

    columns: tuple[str, ...] | None = None
    rows = 0
    for part in parts:
        try:
            metadata = pq.ParquetFile(part).metadata
        except (pyarrow.ArrowException, OSError) as error:
            raise PipelineError(f"{part}: cannot be read as Parquet ({_first_line(error)})") from None
        names = tuple(str(n).strip() for n in metadata.schema.names)
        if columns is not None and set(names) != set(columns):
            raise PipelineError(f"{part}: its columns differ from {parts[0].name}'s")
        columns, rows = columns or names, rows + metadata.num_rows
    return Source(path, "parquet", parts, columns or (), rows)


def _csv_header(path: Path) -> tuple[str, ...]:
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            header = next(csv.reader(handle), None)
    except UnicodeDecodeError as error:
        raise PipelineError(f"{path}: not UTF-8 text (byte {error.start}); save it as UTF-8") from None
    if not header:
        raise PipelineError(f"{path}: file is empty")
    return tuple(name.strip() for name in header)


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__


def chunks(
    source: Source, rows: int, markers: tuple[str, ...], text: list[str]
) -> Iterator[tuple[pd.DataFrame, float]]:
    """The input `rows` at a time, names and text cleaned as training's are, with the share of it read so far.

    `text` columns (those kept as they are) are read as text from a CSV, so every chunk has the same types."""
    from tabpipe.data.frames import clean

    frames = (
        _parquet_chunks(source, rows) if source.kind == "parquet" else _csv_chunks(source.path, rows, markers, text)
    )
    for frame, done in frames:
        yield clean(frame, markers), done


def _parquet_chunks(source: Source, rows: int) -> Iterator[tuple[pd.DataFrame, float]]:
    import pyarrow
    import pyarrow.parquet as pq

    done = 0
    for part in source.parts:
        try:
            for batch in pq.ParquetFile(part).iter_batches(batch_size=rows):
                done += batch.num_rows
                frame = batch.to_pandas()
                frame.columns = [str(c) for c in frame.columns]
                yield frame, done / max(source.rows or 1, 1)
        except (pyarrow.ArrowException, OSError) as error:
            raise PipelineError(f"{part}: cannot be read as Parquet ({_first_line(error)})") from None


def _csv_chunks(
    path: Path, rows: int, markers: tuple[str, ...], text: list[str]
) -> Iterator[tuple[pd.DataFrame, float]]:
    """pandas' chunked reader; the share read is the file position over its size."""
    import pandas as pd

    size = max(path.stat().st_size, 1)
    with path.open("rb") as handle:
        raw = {name.strip(): name for name in pd.read_csv(handle, nrows=0).columns}
        handle.seek(0)
        dtypes = {raw[name]: "string" for name in text if name in raw}
        try:
            reader = pd.read_csv(
                handle, chunksize=rows, na_values=list(markers), skipinitialspace=True, dtype=dtypes or None
            )
            for frame in reader:
                yield frame, min(handle.tell() / size, 1.0)
        except UnicodeDecodeError as error:
            raise PipelineError(f"{path}: not UTF-8 text (byte {error.start}); save it as UTF-8") from None
        except pd.errors.ParserError as error:
            detail = str(error).strip().splitlines()[-1]
            raise PipelineError(f"{path}: cannot be parsed as CSV ({detail})") from None
