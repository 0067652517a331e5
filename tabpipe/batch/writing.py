"""A batch's two outputs, written chunk by chunk to temporary names and renamed only when complete.

Parquet by default, CSV when the output's name ends in .csv; the rejects file takes the same kind
(`scores.parquet` -> `scores.rejects.parquet`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tabpipe.core.errors import PipelineError
from tabpipe.core.files import atomic_path

if TYPE_CHECKING:
    import pandas as pd


def rejects_path(output: Path) -> Path:
    """Where the rejects go: beside the output, `<stem>.rejects<suffix>`."""
    return output.with_name(f"{output.stem}.rejects{output.suffix}")


def check_free(output: Path, overwrite: bool) -> None:
    """An existing output (or its rejects) is kept unless the run may overwrite it."""
    if output.suffix not in (".parquet", ".pq", ".csv"):
        raise PipelineError(f"{output}: the output must end in .parquet (or .pq) or .csv")
    for path in (output, rejects_path(output)):
        if path.exists() and not overwrite:
            raise PipelineError(f"{path}: exists; pass --overwrite to replace it")


class Sink:
    """One output file, appended a chunk at a time: Parquet through a ParquetWriter (a row group per
    chunk), CSV through pyarrow's writer. Every chunk is cast to the first one's types."""

    def __init__(self, path: Path, csv: bool) -> None:
        self.path, self.csv = path, csv
        self.writer: Any = None
        self.schema: Any = None

    def write(self, frame: pd.DataFrame) -> None:
        import pyarrow as pa

        if frame.empty:
            return
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self.writer is None:
            self.schema = _without_nulls(table.schema)
            self.writer = self._open(self.schema)
        try:
            table = table.cast(self.schema)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:  # a kept column's type changed
            raise PipelineError(f"a chunk's columns differ in type from the first chunk's ({error})") from None
        self.writer.write_table(table)

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
def outputs(output: Path) -> Iterator[Outputs]:
    """Both sinks on temporary names beside their targets; renamed (rejects first) only when the block ends
    without error, so a failed or killed run leaves no output."""
    csv = output.suffix == ".csv"
    with ExitStack() as stack:
        scored = stack.enter_context(atomic_path(output))
        rejected = stack.enter_context(atomic_path(rejects_path(output)))
        yield Outputs(Sink(scored, csv), Sink(rejected, csv))
