"""``data_processor``: per-column statistics of a CSV, with progress reported per chunk of rows.

It shows the habits of a long-running agent:

* a pydantic model as the input, so a bad input is refused at submit with a clear message;
* a real progress fraction: the rows are counted first, then streamed in chunks, and each
  chunk ends with ``ctx.progress(done / total, "Processing 50 of 200 rows...")``;
* a cooperative stop: ``ctx.cancelled`` is checked between chunks;
* errors as exceptions with a message meant for the user (the task fails with
  ``agent_error`` and that message).

Input (exactly one of ``csv``, ``path`` and ``dataset``)::

    {"csv": "name,age\\nada,36\\nbob,41\\n"}   or   {"path": "/data/customers_q2.csv"}
    {"dataset": "customers_q2.csv", "chunk_size": 100}   (a sample shipped with Theazo)

Output::

    {"rows": 2,
     "columns": {
       "name": {"type": "text", "count": 2, "missing": 0, "distinct": 2,
                "top": [{"value": "ada", "count": 1}, {"value": "bob", "count": 1}]},
       "age":  {"type": "number", "count": 2, "missing": 0, "min": 36, "max": 41,
                "mean": 38.5, "median": 38.5, "stddev": 3.5355339059327378}}}
"""

from __future__ import annotations

import csv
import io
import re
import statistics
from collections import Counter
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any, TextIO

from pydantic import BaseModel, ConfigDict, Field, model_validator

from theazo import Context, agent

DATASETS = Path(__file__).parent / "datasets"  # samples, e.g. the product page's customers_q2
TOP_VALUES = 3  # how many of a text column's most common values the output lists
_INTEGER = re.compile(r"[+-]?\d+")
_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


class DataProcessorInput(BaseModel):
    """A CSV to describe: give exactly one of ``csv``, ``path`` or ``dataset``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "oneOf": [{"required": ["csv"]}, {"required": ["path"]}, {"required": ["dataset"]}]
        },
    )

    csv: str | None = Field(default=None, description="The CSV text itself, header row first.")
    path: str | None = Field(
        default=None,
        description="A CSV file readable by the sandbox; a relative path is read from the "
        "task's working directory.",
    )
    dataset: str | None = Field(
        default=None,
        description="A sample dataset shipped with Theazo, e.g. customers_q2.csv.",
    )
    chunk_size: int = Field(default=50, ge=1, le=1_000_000, description="Rows per progress report.")
    delimiter: str = Field(
        default=",", min_length=1, max_length=1, description="The field separator."
    )

    @model_validator(mode="after")
    def _exactly_one_source(self) -> DataProcessorInput:
        given = [name for name in ("csv", "path", "dataset") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                f"give exactly one of csv, path or dataset, not {' and '.join(given) or 'none'}"
            )
        return self

    @property
    def file(self) -> Path | None:
        """The CSV file to read, made absolute; None when the CSV is given inline."""
        if self.dataset is not None:
            return DATASETS / Path(self.dataset).name  # .name: never outside the folder
        return None if self.path is None else Path.cwd() / self.path


@agent("data_processor", description="Per-column statistics of a CSV, reporting progress.")
def data_processor(ctx: Context, input: DataProcessorInput) -> dict[str, Any]:
    """Count, missing cells and either numeric statistics or the most common values, per column.

    Raises:
        FileNotFoundError: ``path`` (or ``dataset``) names no file.
        ValueError: the CSV has no header, repeats a column name, has a row whose number
            of fields differs from the header's, or is not UTF-8 text.
        RuntimeError: the task was cancelled while the rows were being read.
    """
    _check_file(input.file)
    ctx.progress(0.0, "Counting rows...")
    total = sum(1 for _ in read_table(input)) - 1  # every row but the header

    table = read_table(input)
    columns = {name: Column() for name in next(table)}
    done = 0
    for chunk in _chunks(table, input.chunk_size):
        if ctx.cancelled:
            raise RuntimeError(f"cancelled after {done} of {total} rows")
        for row in chunk:
            for column, cell in zip(columns.values(), row, strict=True):
                column.add(cell)
        done += len(chunk)
        ctx.progress(done / total, f"Processing {done} of {total} rows...")

    ctx.progress(1.0, f"Processed {total} rows")
    return {"rows": total, "columns": {name: c.summary() for name, c in columns.items()}}


def read_table(source: DataProcessorInput) -> Iterator[list[str]]:
    """Yield the header row, then every data row; blank lines are skipped.

    Raises ValueError when there is no header, a column name repeats, a row is not as wide
    as the header, or the file is not UTF-8 text.
    """
    with _open(source) as stream:
        reader = csv.reader(stream, delimiter=source.delimiter)
        try:
            header = next((row for row in reader if row), None)
            if header is None:
                raise ValueError("the CSV is empty: it has no header row")
            _check_header(header)
            yield header
            for row in reader:
                if not row:
                    continue  # a blank line
                if len(row) != len(header):
                    raise ValueError(
                        f"line {reader.line_num} of the CSV has {len(row)} fields, "
                        f"but the header has {len(header)}"
                    )
                yield row
        except csv.Error as exc:
            raise ValueError(f"line {reader.line_num} of the CSV: {exc}") from exc
        except UnicodeDecodeError as exc:
            raise ValueError(f"the CSV file is not UTF-8 text: {exc}") from exc


class Column:
    """What one column has seen: the missing cells and how often each value occurs."""

    def __init__(self) -> None:
        self.missing = 0
        self.values: Counter[str] = Counter()

    def add(self, cell: str) -> None:
        value = cell.strip()
        if value:
            self.values[value] += 1
        else:
            self.missing += 1

    def summary(self) -> dict[str, Any]:
        """Numeric statistics if every value is a number, else the distinct and top values."""
        count = self.values.total()
        numbers = _numbers(self.values)
        if count and numbers is not None:
            return {
                "type": "number",
                "count": count,
                "missing": self.missing,
                "min": min(numbers),
                "max": max(numbers),
                "mean": statistics.fmean(numbers),
                "median": statistics.median(numbers),
                # the sample standard deviation; it needs at least two values
                "stddev": statistics.stdev(numbers) if count > 1 else None,
            }
        most_common = sorted(self.values.items(), key=lambda item: (-item[1], item[0]))
        return {
            "type": "text",
            "count": count,
            "missing": self.missing,
            "distinct": len(self.values),
            "top": [{"value": v, "count": n} for v, n in most_common[:TOP_VALUES]],
        }


def _numbers(values: Counter[str]) -> list[float] | None:
    """Every value as a number (ints stay ints), or None if one of them is not a number."""
    numbers: list[float] = []
    for text, count in values.items():
        if _INTEGER.fullmatch(text):
            numbers.extend([int(text)] * count)
        elif _DECIMAL.fullmatch(text):
            numbers.extend([float(text)] * count)
        else:
            return None
    return numbers


def _check_file(file: Path | None) -> None:
    if file is not None and not file.is_file():
        if file.parent == DATASETS:
            known = ", ".join(sorted(p.name for p in DATASETS.glob("*.csv")))
            raise FileNotFoundError(f"no sample dataset {file.name!r}; there are: {known}")
        raise FileNotFoundError(
            f"no CSV file at {file}; a relative path is read from the task's working "
            "directory, so give an absolute path, or the CSV text as 'csv'"
        )


def _open(source: DataProcessorInput) -> TextIO:
    if source.file is None:
        return io.StringIO(source.csv)
    # utf-8-sig drops the byte-order mark spreadsheet programs put first
    return source.file.open(newline="", encoding="utf-8-sig")


def _check_header(header: list[str]) -> None:
    repeated = sorted(name for name, n in Counter(header).items() if n > 1)
    if repeated:
        raise ValueError(f"the CSV header repeats the column name(s) {', '.join(repeated)}")


def _chunks(rows: Iterable[list[str]], size: int) -> Iterator[list[list[str]]]:
    iterator = iter(rows)
    while chunk := list(islice(iterator, size)):
        yield chunk
