"""Readers for CSV, TSV, Parquet and NDJSON exports: a file, a glob, a folder or
standard input (``-``), plain or gzip / zstd compressed.

Parquet stays lazy.  Text exports are parsed by Polars when opened, so that a broken
file is reported at once; the line-by-line diagnosis that names the faulty line runs
only when Polars fails or a row looks malformed.  Every table carries a label (the path
the user gave) so that every later error can say which input it is about.
"""

from __future__ import annotations

import csv
import glob as globlib
import gzip
import io
import re
import sys
import zlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, cast

import narwhals as nw
import polars as pl

from abkit.errors import AbkitInputError
from abkit.formats import SPREADSHEETS, extension_format, magic
from abkit.io.columns import Missing, Need, missing_message

# a DuckDB relation, a PySpark or SQLFrame DataFrame, an Ibis table (anything Narwhals
# reads lazily)
EngineFrame = Any
Data = str | Path | pl.LazyFrame | pl.DataFrame | EngineFrame


@dataclass(frozen=True)
class Table:
    """A lazily read input table on its engine and the label used in messages about it."""

    data: nw.LazyFrame[Any]
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
            return cast(pl.LazyFrame, nw.to_native(self.data))
        return cast(pl.DataFrame, self.data.collect("polars").to_native()).lazy()

    @property
    def columns(self) -> list[str]:
        return self.data.collect_schema().names()

    def require(self, *columns: str | Need, what: str = "") -> None:
        """Raise one clear error naming every missing column (with the flag and config
        key that map each role) and the columns found."""
        missing = self.missing(*columns, what=what)
        if missing is not None:
            problem, hint = missing_message([missing])
            raise AbkitInputError(problem, source=self.label, hint=hint)

    def missing(self, *columns: str | Need, what: str = "") -> Missing | None:
        """The columns of ``columns`` this table lacks, or None."""
        found = self.columns
        needs = [c if isinstance(c, Need) else Need(c, what=what) for c in columns]
        lacking = tuple(n for n in needs if n.column not in found)
        if not lacking:
            return None
        present = frozenset(n.column for n in needs) - {n.column for n in lacking}
        return Missing(self.label, lacking, tuple(found), present)


def require_all(*tables: tuple[Table, list[str | Need]]) -> None:
    """:meth:`Table.require` for several tables at once: one error naming every missing
    column of every table."""
    missing = [m for table, needs in tables if (m := table.missing(*needs)) is not None]
    if len(missing) == 1:
        problem, hint = missing_message(missing)
        raise AbkitInputError(problem, source=missing[0].label, hint=hint)
    if missing:
        problem, hint = missing_message(missing)
        raise AbkitInputError(problem, hint=hint)


STDIN = "-"
_ACCEPTED = "CSV, TSV, Parquet or NDJSON (optionally .gz or .zst compressed)"


def _spreadsheet(label: str) -> AbkitInputError:
    return AbkitInputError(
        "this is a spreadsheet workbook (Excel or ODS) or a ZIP archive, not a table abkit "
        "reads: a workbook can hold several sheets, merged cells and dates stored as day "
        f"numbers, which would be read wrongly without a sign. abkit reads {_ACCEPTED}.",
        source=label,
        hint="Export the sheet as CSV (Save As > CSV UTF-8) or Parquet and analyse that file; "
        "for a ZIP archive, unzip it and pass the file or folder inside.",
    )


def _text_format(head: bytes) -> str:
    """ndjson, tsv or csv, told from the first (decompressed) bytes of a text export."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith((b"{", b"[")):
        return "ndjson"
    first = text.split(b"\n", 1)[0]
    return "tsv" if b"\t" in first and b"," not in first else "csv"


def _files(path: Path | str) -> list[Path]:
    text = str(path)
    if any(ch in text for ch in "*?["):
        files = sorted(Path(p) for p in globlib.glob(text, recursive=True) if Path(p).is_file())
        if not files:
            raise AbkitInputError(f"no file matches the pattern '{text}'.")
        return files
    p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.is_file() and extension_format(f))
        if not files:
            raise AbkitInputError(
                f"folder '{p}' holds no .csv, .tsv, .parquet, .ndjson or .jsonl file "
                "(plain, .gz or .zst)."
            )
        return files
    if not p.exists():
        raise AbkitInputError(f"input file '{p}' does not exist.")
    return [p]


def _file_format(path: Path) -> str:
    """A file's table format: Parquet by its content whatever its name, spreadsheets
    refused, text formats by the extension (before any .gz / .zst)."""
    if path.suffix.lower() in SPREADSHEETS:
        raise _spreadsheet(str(path))
    try:
        with path.open("rb") as handle:
            head = handle.read(4)
    except OSError as exc:
        raise AbkitInputError(
            f"cannot open the file: {exc.strerror or exc}.", source=str(path)
        ) from None
    kind = magic(head)
    if kind == "parquet":
        return "parquet"
    if kind == "zip":
        raise _spreadsheet(str(path))
    fmt = extension_format(path)
    if fmt is None:
        raise AbkitInputError(
            f"cannot tell the format of '{path}' from its extension; use .csv, .tsv, "
            ".parquet, .ndjson or .jsonl (optionally followed by .gz or .zst)."
        )
    if fmt == "parquet" and head:  # an empty file is reported by the reader
        raise AbkitInputError(
            "the file is named as Parquet but is not Parquet (it does not start with the "
            f"Parquet signature 'PAR1'; its first bytes are {head!r}).",
            source=str(path),
            hint="Re-export it, or give it the extension of its real format (.csv, .ndjson).",
        )
    return fmt


def export_files(source: str | Path) -> tuple[list[Path], str]:
    """The files of a path, glob or folder and their one format (csv, tsv, parquet,
    ndjson): Parquet told by content, the others by extension."""
    files = _files(source)
    formats = {f: _file_format(f) for f in files}
    known = sorted(set(formats.values()))
    if len(known) > 1:
        raise AbkitInputError(f"'{source}' mixes file formats ({', '.join(known)}).")
    return files, known[0]


@dataclass(frozen=True)
class _Source:
    """One input file, or the bytes of standard input, and its table format."""

    label: str
    fmt: str
    path: Path | None = None
    data: bytes | None = None

    def polars_input(self) -> str | io.BytesIO:
        """What Polars reads (it decompresses gzip and zstd itself)."""
        return str(self.path) if self.data is None else io.BytesIO(self.data)

    def text(self) -> bytes:
        """The decompressed bytes, for the line-locating diagnosis."""
        raw = self.data if self.data is not None else Path(str(self.path)).read_bytes()
        return _decompress(raw, self.label)


def _decompress(raw: bytes, label: str = "the input") -> bytes:
    """``raw`` decompressed (gzip, zstd) or as it is; a damaged archive is a user error."""
    kind = magic(raw[:4])
    if kind not in ("gzip", "zstd"):
        return raw
    try:
        return _inflate(raw, kind)
    except (OSError, EOFError, ValueError, zlib.error) as exc:
        raise AbkitInputError(
            f"the {kind} archive is damaged or incomplete ({exc}); the file looks cut off.",
            source=label,
            hint="Download or export it again (gzip -t checks a .gz file).",
        ) from None


def _inflate(raw: bytes, kind: str) -> bytes:
    if kind == "gzip":
        return gzip.decompress(raw)
    try:
        import pyarrow as pa  # type: ignore[import-untyped]

        return bytes(pa.CompressedInputStream(pa.BufferReader(raw), "zstd").read())
    except ImportError:  # Polars decompresses: the lines, invalid UTF-8 replaced
        lines = _raw_lines(io.BytesIO(raw))
        return "\n".join(v or "" for v in lines.get_column("line")).encode() + b"\n"


def _raw_lines(data: Any) -> pl.DataFrame:
    """Every line of a text file (Polars decompresses), one string column 'line', with
    no CSV parsing: no header, no quotes, invalid UTF-8 replaced."""
    return pl.read_csv(
        data,
        has_header=False,
        new_columns=["line"],
        separator="\x00",
        quote_char=None,
        infer_schema=False,
        encoding="utf8-lossy",
        truncate_ragged_lines=True,
    )


def _head(data: bytes) -> bytes:
    """The first decompressed bytes of ``data``, to sniff its format."""
    kind = magic(data[:4])
    if kind == "gzip":
        try:
            return zlib.decompressobj(wbits=31).decompress(data[: 1 << 20], 65536)
        except zlib.error:
            return b""
    return _decompress(data) if kind == "zstd" else data[:65536]


def _stdin_source(label: str) -> _Source:
    """Standard input (``-``), its format sniffed from the content."""
    if sys.stdin is None or sys.stdin.isatty():
        raise AbkitInputError(
            "'-' reads the export from standard input, but nothing is piped into it.",
            hint="Pipe the file in (zcat events.csv.gz | abkit analyze assignments.csv -) or "
            "give its path.",
        )
    data = sys.stdin.buffer.read()
    if not data:
        raise AbkitInputError("standard input is empty (nothing was piped to '-').")
    kind = magic(data[:4])
    if kind == "zip":
        raise _spreadsheet(label)
    if kind == "parquet":
        return _Source(label, "parquet", data=data)
    return _Source(label, _text_format(_head(data)), data=data)


BLANK_LINE = "blank line (every cell empty)"


def blank_row(columns: list[str]) -> pl.Expr:
    """True for a row whose every cell is empty (a blank line in a CSV)."""
    return pl.all_horizontal([pl.col(c).is_null() for c in columns])


def _check_utf8(data: bytes, label: str) -> None:
    """Refuse text that is not UTF-8, naming the line and byte (a lossy decode would
    turn 'contrôle' into 'contr\ufffdle' and could merge two arms)."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.end == len(data) and exc.reason == "unexpected end of data":
            raise AbkitInputError(
                "the file is not UTF-8 text: it ends inside a multi-byte character (the file "
                "looks cut off).",
                source=label,
                hint="Re-export it, as UTF-8.",
            ) from None
        line = data.count(b"\n", 0, exc.start) + 1
        raise AbkitInputError(
            f"the file is not UTF-8 text: byte 0x{data[exc.start]:02x} on line {line} (byte "
            f"{exc.start + 1}) is not valid UTF-8.",
            source=label,
            hint="Re-save it as UTF-8 (for a Latin-1 export: iconv -f latin1 -t utf-8).",
        ) from None


def _check_csv_structure(text: str, separator: str, label: str) -> None:
    """Header and row structure of CSV/TSV text: duplicate header names, a wrong
    separator, rows with another number of fields than the header and quotes that are
    never closed are errors naming the line.  Runs on every row, so it is called only
    when Polars fails or a row looks malformed (:func:`_read_csv`)."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=separator)
    header = next(reader, None)
    if header is None:
        raise AbkitInputError("the file is empty (no header line).", source=label)
    if len(header) == 1 and separator == "," and (";" in header[0] or "\t" in header[0]):
        other = "semicolon" if ";" in header[0] else "tab"
        raise AbkitInputError(
            f"the header {header[0]!r} has no commas: the file looks {other}-separated.",
            source=label,
            hint="abkit reads comma-separated .csv and tab-separated .tsv files; re-export "
            "it with commas, or rename a tab-separated file to .tsv.",
        )
    seen: dict[str, int] = {}
    for position, name in enumerate(header, start=1):
        if name in seen:
            raise AbkitInputError(
                f"column '{name}' appears twice in the header (positions {seen[name]} and "
                f"{position}); abkit cannot tell which one to use.",
                source=label,
                hint="Rename or remove one of them.",
            )
        seen[name] = position
    start = reader.line_num + 1
    for row in reader:
        line, start = start, reader.line_num + 1  # the line this row started on
        if not row:  # a blank line: counted as such later
            continue
        broken = any("\n" in field or "\r" in field for field in row)
        if len(row) != len(header) or broken:
            problem = (
                "a quoted field is not closed before the end of the line"
                if broken
                else f"the row has {len(row)} fields where the header has {len(header)}"
            )
            if next(reader, None) is None and not text.endswith(("\n", "\r")):
                problem += "; it is the last line and the file does not end with a newline, "
                problem += "so the file looks cut off"
            raise AbkitInputError(
                f"{problem} (line {line}).",
                source=label,
                hint="Fix or remove that line (a file cut off mid-line, a stray quote or "
                "an unquoted separator inside a value are the usual causes).",
            )


def _diagnose(source: _Source) -> None:
    """Locate what is wrong with a text export (raises naming the line), or return when
    the line-by-line checks find nothing."""
    data = source.text()
    _check_utf8(data, source.label)
    if source.fmt in ("csv", "tsv"):
        _check_csv_structure(data.decode("utf-8"), _separator(source.fmt), source.label)


def _separator(fmt: str) -> str:
    return "\t" if fmt == "tsv" else ","


_POLARS_FAILURES = (pl.exceptions.PolarsError, pl.exceptions.PanicException, OSError, ValueError)


def _read_csv(source: _Source) -> pl.DataFrame:
    """Parse a CSV/TSV export with Polars; the line-by-line diagnosis runs only when
    Polars fails or the result hints at a malformed row."""
    separator = _separator(source.fmt)
    try:
        try:
            frame = pl.read_csv(
                source.polars_input(), separator=separator, infer_schema_length=10_000
            )
        except pl.exceptions.ComputeError as exc:
            if "could not parse" not in str(exc):
                raise
            # a column whose first 10,000 values look like another type than a later
            # one (1, 2, ... then 1.5): infer the types from every row
            frame = pl.read_csv(
                source.polars_input(), separator=separator, infer_schema_length=None
            )
    except _POLARS_FAILURES as exc:
        _diagnose(source)
        raise reader_error(exc, source.label) from None
    if _suspect(frame, source, separator):
        _diagnose(source)
    return frame


def _suspect(frame: pl.DataFrame, source: _Source, separator: str) -> bool:
    """Whether a parsed CSV may hide a malformed row that Polars accepts: a renamed
    duplicate header, one column named like a list, a value spanning lines (a quote
    never closed) or a row with fewer fields than the header (Polars fills nulls)."""
    names = frame.columns
    if any(m and m.group(1) in names for m in map(_DUPLICATE.fullmatch, names)):
        return True
    if len(names) == 1 and separator == "," and (";" in names[0] or "\t" in names[0]):
        return True
    text = [c for c, t in frame.schema.items() if t == pl.String]
    if text and frame.select(pl.any_horizontal(pl.col(text).str.contains("[\r\n]")).any()).item():
        return True
    if len(names) < 2 or frame.get_column(names[-1]).null_count() == 0:
        return False
    lines = _raw_lines(source.polars_input())
    short = pl.col("line").str.count_matches(separator, literal=True) < len(names) - 1
    return bool(lines.select((short & (pl.col("line").str.len_bytes() > 0)).any()).item())


_DUPLICATE = re.compile(r"(.*)_duplicated_\d+")


def _read_ndjson(source: _Source) -> pl.DataFrame:
    try:
        return pl.read_ndjson(source.polars_input(), infer_schema_length=10_000)
    except _POLARS_FAILURES as exc:
        _diagnose(source)
        if _head(source.data or Path(str(source.path)).read_bytes()).lstrip().startswith(b"["):
            raise AbkitInputError(
                "the file is one JSON array, not newline-delimited JSON (one object per line).",
                source=source.label,
                hint="Convert it, e.g. jq -c '.[]' events.json > events.ndjson, or export "
                "CSV or Parquet.",
            ) from None
        raise reader_error(exc, source.label) from None


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


def read_table(source: Data, label: str | None = None) -> Table:
    """Open ``source``.

    Paths are a file, a glob or a folder, or ``-`` for standard input.  Parquet is told
    by its content (whatever the file's name) and read lazily; CSV, TSV
    (.csv/.tsv) and NDJSON (.ndjson/.jsonl/.json) are told by the extension, may be
    gzip or zstd compressed (.csv.gz, .ndjson.zst) and are parsed by Polars when opened
    (a broken file is then reported at once, naming the line).  All files of a glob or
    folder must share one format and columns.  CSV cells are read as text where they
    are not clearly numeric, so timestamps are parsed by abkit (see
    :func:`abkit.io.timestamps.parse_timestamp`), never guessed per file.  Standard
    input is sniffed: Parquet, gzip or zstd by their first bytes, NDJSON when the text
    starts with '{', TSV when the first line has tabs and no commas, else CSV.
    """
    if isinstance(source, pl.DataFrame):
        return Table.of(source.lazy(), label or "data frame")
    if isinstance(source, pl.LazyFrame):
        return Table.of(source, label or "lazy frame")
    if not isinstance(source, str | Path):
        return _engine_table(source, label)
    if str(source) == STDIN:
        label = label or "standard input"
        sources = [_stdin_source(label)]
    else:
        files, fmt = export_files(source)
        label = label or str(source)
        sources = [_Source(str(f) if len(files) > 1 else label, fmt, path=f) for f in files]
    fmt = sources[0].fmt
    try:
        if fmt == "parquet":
            frame = (
                pl.scan_parquet([str(s.path) for s in sources])
                if sources[0].data is None
                else pl.read_parquet(sources[0].polars_input()).lazy()
            )
            frame.collect_schema()
        else:
            read = _read_ndjson if fmt == "ndjson" else _read_csv
            frames = [read(s) for s in sources]
            frame = (
                frames[0] if len(frames) == 1 else pl.concat(frames, how="vertical_relaxed")
            ).lazy()
    except AbkitInputError:
        raise
    except _POLARS_FAILURES as exc:
        raise reader_error(exc, label) from None
    _check_flat(frame, label)
    return Table.of(frame, label)


def _engine_table(source: EngineFrame, label: str | None) -> Table:
    """A DuckDB relation, a Spark / SQLFrame DataFrame or an Ibis table stays on its
    engine; an eager frame of another library (pandas, PyArrow) is copied into Polars."""
    try:
        frame = nw.from_native(source)
    except TypeError:
        raise AbkitInputError(
            f"cannot read a {type(source).__name__}: give a path, a Polars frame, a DuckDB "
            "relation, a Spark / SQLFrame DataFrame or an Ibis table."
        ) from None
    if isinstance(frame, nw.DataFrame):
        kind = frame.implementation.value
        try:
            copied = frame.lazy("polars")
        except ImportError as exc:  # Polars reads most pandas frames through PyArrow
            first = next(iter(str(exc).splitlines()), "")
            raise AbkitInputError(
                f"copying the {kind} data frame into Polars needs PyArrow, which is not "
                f"installed ({first.rstrip('.')}).",
                hint="Install it (pip install pyarrow), or write the frame to Parquet or CSV "
                "(df.to_parquet('events.parquet')) and pass the path.",
            ) from None
        return Table(copied, label or f"{kind} frame")
    return Table(frame, label or f"{frame.implementation.value} frame")


def reader_error(exc: Exception, label: str) -> AbkitInputError:
    """One paragraph for an error the reader raised while reading ``label``: its first
    line (Polars adds advice that does not apply to abkit's options) plus what to do."""
    first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
    return AbkitInputError(
        f"could not read the table: {first}.",
        source=label,
        hint="Check that every row has the header's fields and that the file is a complete "
        f"{_ACCEPTED} export.",
    )
