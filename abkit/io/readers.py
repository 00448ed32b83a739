"""Lazy readers for CSV, Parquet and NDJSON exports: a file, a glob or a folder.

Nothing is read until a query is collected; the loaders only attach a label (the
path the user gave) so that every later error can say which input it is about.
"""

from __future__ import annotations

import codecs
import csv
import glob as globlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import narwhals as nw
import polars as pl

from abkit.errors import AbkitInputError
from abkit.io.columns import Need, missing_message

_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".json": "ndjson",
}

# a DuckDB relation, a PySpark or SQLFrame DataFrame (anything Narwhals reads lazily)
EngineFrame = Any
Data = str | Path | pl.LazyFrame | pl.DataFrame | EngineFrame


@dataclass(frozen=True)
class Table:
    """A lazily read input table on its engine and the label used in messages about it."""

    data: nw.LazyFrame
    label: str

    @classmethod
    def of(cls, frame: pl.LazyFrame, label: str) -> Table:
        return cls(nw.from_native(frame), label)

    @property
    def on_polars(self) -> bool:
        return self.data.implementation is nw.Implementation.POLARS

    @cached_property
    def frame(self) -> pl.LazyFrame:
        """The table as a Polars lazy frame; a table on another engine is collected
        (assignments and accounts are one row per unit or account; events stay on
        their engine and are read through :attr:`data`)."""
        if self.on_polars:
            return nw.to_native(self.data)
        return self.data.collect("polars").to_native().lazy()

    @property
    def columns(self) -> list[str]:
        return self.data.collect_schema().names()

    def require(self, *columns: str | Need, what: str = "") -> None:
        """Raise one clear error naming every missing column (with the flag and config
        key that map each role) and the columns found."""
        found = self.columns
        needs = [c if isinstance(c, Need) else Need(c, what=what) for c in columns]
        missing = [n for n in needs if n.column not in found]
        if not missing:
            return
        problem, hint = missing_message(
            missing, found, {n.column for n in needs} - {n.column for n in missing}
        )
        raise AbkitInputError(problem, source=self.label, hint=hint)


def _files(path: Path | str) -> list[Path]:
    text = str(path)
    if any(ch in text for ch in "*?["):
        files = sorted(Path(p) for p in globlib.glob(text, recursive=True) if Path(p).is_file())
        if not files:
            raise AbkitInputError(f"no file matches the pattern '{text}'.")
        return files
    p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in _FORMATS)
        if not files:
            raise AbkitInputError(
                f"folder '{p}' holds no .csv, .tsv, .parquet, .ndjson or .jsonl file."
            )
        return files
    if not p.exists():
        raise AbkitInputError(f"input file '{p}' does not exist.")
    return [p]


BLANK_LINE = "blank line (every cell empty)"
_CHUNK = 1 << 20
_STRUCTURE_LIMIT = 64 << 20  # files up to this size get a full row-structure check


def blank_row(columns: list[str]) -> pl.Expr:
    """True for a row whose every cell is empty (a blank line in a CSV)."""
    return pl.all_horizontal([pl.col(c).is_null() for c in columns])


def _check_utf8(path: Path) -> None:
    """Refuse a text file that is not UTF-8, naming the line and byte (a lossy decode
    would turn 'contrôle' into 'contr\ufffdle' and could merge two arms)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line, offset = 1, 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                bad = chunk[exc.start]
                line += chunk.count(b"\n", 0, exc.start)
                raise AbkitInputError(
                    f"the file is not UTF-8 text: byte 0x{bad:02x} on line {line} (byte "
                    f"{offset + exc.start + 1}) is not valid UTF-8.",
                    source=str(path),
                    hint="Re-save it as UTF-8 (for a Latin-1 export: iconv -f latin1 -t utf-8).",
                ) from None
            line += chunk.count(b"\n")
            offset += len(chunk)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise AbkitInputError(
                "the file is not UTF-8 text: it ends inside a multi-byte character (the file "
                "looks cut off).",
                source=str(path),
                hint="Re-export it, as UTF-8.",
            ) from None


def _check_csv_structure(path: Path, separator: str) -> None:
    """Header and row structure of a CSV/TSV file: duplicate or empty header names, a
    wrong separator, rows with another number of fields than the header and quotes that
    are never closed are errors naming the line.  Rows are checked in files up to 64
    MiB; larger files get the header check (Polars then reports ragged rows)."""
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter=separator)
        header = next(reader, None)
        if header is None:
            raise AbkitInputError("the file is empty (no header line).", source=str(path))
        if len(header) == 1 and separator == "," and (";" in header[0] or "\t" in header[0]):
            other = "semicolon" if ";" in header[0] else "tab"
            raise AbkitInputError(
                f"the header {header[0]!r} has no commas: the file looks {other}-separated.",
                source=str(path),
                hint="abkit reads comma-separated .csv and tab-separated .tsv files; re-export "
                "it with commas, or rename a tab-separated file to .tsv.",
            )
        seen: dict[str, int] = {}
        for position, name in enumerate(header, start=1):
            if name in seen:
                raise AbkitInputError(
                    f"column '{name}' appears twice in the header (positions {seen[name]} and "
                    f"{position}); abkit cannot tell which one to use.",
                    source=str(path),
                    hint="Rename or remove one of them.",
                )
            seen[name] = position
        if path.stat().st_size > _STRUCTURE_LIMIT:
            return
        start = reader.line_num + 1
        for row in reader:
            line, start = start, reader.line_num + 1  # the line this row started on
            if not row:  # a blank line: counted as such later
                continue
            if len(row) != len(header) or any("\n" in field or "\r" in field for field in row):
                problem = (
                    "a quoted field is not closed before the end of the line"
                    if any("\n" in field or "\r" in field for field in row)
                    else f"the row has {len(row)} fields where the header has {len(header)}"
                )
                if next(reader, None) is None and not _ends_with_newline(path):
                    problem += "; it is the last line and the file does not end with a newline, "
                    problem += "so the file looks cut off"
                raise AbkitInputError(
                    f"{problem} (line {line}).",
                    source=str(path),
                    hint="Fix or remove that line (a file cut off mid-line, a stray quote or "
                    "an unquoted separator inside a value are the usual causes).",
                )


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as handle:
        handle.seek(0, 2)
        if handle.tell() == 0:
            return False
        handle.seek(-1, 2)
        return handle.read(1) in (b"\n", b"\r")


def _check_flat(frame: pl.LazyFrame, label: str) -> None:
    """Nested JSON values (objects, lists) cannot be analysed: name the column."""
    for name, dtype in frame.collect_schema().items():
        if isinstance(dtype, pl.Struct | pl.List | pl.Array):
            raise AbkitInputError(
                f"column '{name}' holds nested values (JSON objects or lists), not plain "
                "numbers, text or timestamps.",
                source=label,
                hint="Flatten the export so that every field is a plain value.",
            )


def export_files(source: str | Path) -> tuple[list[Path], str]:
    """The files of a path, glob or folder and their one format (csv, tsv, parquet,
    ndjson), told by extension."""
    files = _files(source)
    formats = {_FORMATS.get(f.suffix.lower()) for f in files}
    if None in formats:
        bad = next(f for f in files if f.suffix.lower() not in _FORMATS)
        raise AbkitInputError(
            f"cannot tell the format of '{bad}' from its extension; use .csv, .tsv, "
            ".parquet, .ndjson or .jsonl."
        )
    known = sorted(f for f in formats if f is not None)
    if len(known) > 1:
        raise AbkitInputError(f"'{source}' mixes file formats ({', '.join(known)}).")
    return files, known[0]


def read_table(source: Data, label: str | None = None) -> Table:
    """Open ``source`` lazily.

    Paths are read by extension (.csv, .tsv, .parquet/.pq, .ndjson/.jsonl/.json);
    all files of a glob or folder must share one format and schema.  CSV cells are
    read as text where they are not clearly numeric, so timestamps are parsed by
    abkit (see :func:`abkit.io.timestamps.parse_timestamp`), never guessed per file.
    """
    if isinstance(source, pl.DataFrame):
        return Table.of(source.lazy(), label or "data frame")
    if isinstance(source, pl.LazyFrame):
        return Table.of(source, label or "lazy frame")
    if not isinstance(source, str | Path):
        return _engine_table(source, label)
    files, fmt = export_files(source)
    paths = [str(f) for f in files]
    label = label or str(source)
    separator = "\t" if fmt == "tsv" else ","
    for f in files if fmt != "parquet" else []:
        _check_utf8(f)
        if fmt in ("csv", "tsv"):
            _check_csv_structure(f, separator)
    try:
        if fmt in ("csv", "tsv"):
            frame = pl.scan_csv(paths, separator=separator, infer_schema_length=10_000)
        elif fmt == "parquet":
            frame = pl.scan_parquet(paths)
        else:
            frame = pl.scan_ndjson(paths, infer_schema_length=10_000)
        frame.collect_schema()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise reader_error(exc, label) from None
    _check_flat(frame, label)
    return Table.of(frame, label)


def _engine_table(source: EngineFrame, label: str | None) -> Table:
    """A DuckDB relation or a Spark / SQLFrame DataFrame stays on its engine; an eager
    frame of another library (pandas, PyArrow) is copied into Polars."""
    try:
        frame = nw.from_native(source)
    except TypeError:
        raise AbkitInputError(
            f"cannot read a {type(source).__name__}: give a path, a Polars frame, a DuckDB "
            "relation or a Spark / SQLFrame DataFrame."
        ) from None
    if isinstance(frame, nw.DataFrame):
        return Table(frame.lazy("polars"), label or f"{frame.implementation.value} frame")
    return Table(frame, label or f"{frame.implementation.value} frame")


def reader_error(exc: Exception, label: str) -> AbkitInputError:
    """One paragraph for an error the reader raised while reading ``label``: its first
    line (Polars adds advice that does not apply to abkit's options) plus what to do."""
    first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
    return AbkitInputError(
        f"could not read the table: {first}.",
        source=label,
        hint="Check that every row has the header's fields and that the file is a complete "
        "CSV, TSV, Parquet or NDJSON export.",
    )
