"""A batch's two outputs, written chunk by chunk to temporary names and renamed only when complete.

Parquet by default, CSV when the output's name ends in .csv; the rejects file takes the same kind
(`scores.parquet` -> `scores.rejects.parquet`). On a Dask cluster (`--cluster`) each is a folder of
Parquet parts, one per chunk, written to a temporary folder renamed the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tabpipe.core.errors import PipelineError
from tabpipe.core.files import atomic_folder, atomic_path

if TYPE_CHECKING:
    import pandas as pd


def rejects_path(output: Path) -> Path:
    """Where the rejects go: beside the output, `<stem>.rejects<suffix>`."""
    return output.with_name(f"{output.stem}.rejects{output.suffix}")


def check_free(output: Path, overwrite: bool, parts: bool = False) -> None:
    """An existing output (or its rejects) is kept unless the run may overwrite it; `parts` (a cluster's
    run) writes folders of Parquet parts, so no CSV."""
    if output.suffix not in (".parquet", ".pq", ".csv"):
        raise PipelineError(f"{output}: the output must end in .parquet (or .pq) or .csv")
    if parts and output.suffix == ".csv":
        raise PipelineError(f"{output}: --cluster writes a folder of Parquet parts; name it .parquet (or .pq)")
    for path in (output, rejects_path(output)):
        if path.exists() and not overwrite:
            raise PipelineError(f"{path}: exists; pass --overwrite to replace it")
        if path.is_dir() and not parts:
            raise PipelineError(f"{path}: a folder (a --cluster run's parts); remove it, or score with --cluster")


class Sink:
    """One output file, appended a chunk at a time: Parquet through a ParquetWriter (a row group per
    chunk), CSV through pyarrow's writer. Every chunk is cast to the first one's types."""

    def __init__(self, path: Path, csv: bool) -> None:
        self.path, self.csv = path, csv
        self.writer: Any = None
        self.schema: Any = None

    def write(self, frame: pd.DataFrame) -> None:
        if frame.empty:
            return
        table = self._typed(frame)
        if self.writer is None:
            self.writer = self._open(self.schema)
        self.writer.write_table(table)

    def _typed(self, frame: pd.DataFrame) -> Any:
        """The chunk as a pyarrow table of the first chunk's types."""
        import pyarrow as pa

        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self.schema is None:
            self.schema = _without_nulls(table.schema)
        try:
            return table.cast(self.schema)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:  # a kept column's type changed
            raise PipelineError(f"a chunk's columns differ in type from the first chunk's ({error})") from None

    def _open(self, schema: Any) -> Any:
        if self.csv:
            import pyarrow.csv as pcsv

            return pcsv.CSVWriter(str(self.path), schema)
        import pyarrow.parquet as pq

        return pq.ParquetWriter(str(self.path), schema)

    def close(self, empty: pd.DataFrame) -> None:
        """Finish the file; with no row written, a file of `empty`'s columns and no rows."""
        if self.writer is None:
            import pyarrow as pa

            self.writer = self._open(pa.Table.from_pandas(empty, preserve_index=False).schema)
        self.writer.close()


class Parts(Sink):
    """One output folder, a Parquet part per chunk in order (part-000000.parquet, ...), so readers of a
    partitioned table (pandas, Spark, DuckDB) read it as one; every part has the first chunk's types."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, csv=False)
        self.count = 0

    def write(self, frame: pd.DataFrame) -> None:
        import pyarrow.parquet as pq

        if frame.empty:
            return
        pq.write_table(self._typed(frame), self.path / f"part-{self.count:06d}.parquet")
        self.count += 1

    def close(self, empty: pd.DataFrame) -> None:
        """With no row written, one part of `empty`'s columns and no rows."""
        if self.count == 0:
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.Table.from_pandas(empty, preserve_index=False), self.path / "part-000000.parquet")


def _without_nulls(schema: Any) -> Any:
    """A column all missing in the first chunk gets pyarrow's null type; text holds what later chunks bring."""
    import pyarrow as pa

    return pa.schema([field.with_type(pa.string()) if pa.types.is_null(field.type) else field for field in schema])


@dataclass
class Outputs:
    """The output and rejects sinks of one run."""

    scored: Sink
    rejected: Sink


@contextmanager
def outputs(output: Path, parts: bool = False) -> Iterator[Outputs]:
    """Both sinks (files, or folders of `parts`) on temporary names beside their targets; renamed (rejects
    first) only when the block ends without error, so a failed or killed run leaves no output."""
    csv = output.suffix == ".csv"
    place = atomic_folder if parts else atomic_path
    with ExitStack() as stack:
        scored = stack.enter_context(place(output))
        rejected = stack.enter_context(place(rejects_path(output)))
        if parts:
            yield Outputs(Parts(scored), Parts(rejected))
        else:
            yield Outputs(Sink(scored, csv), Sink(rejected, csv))
