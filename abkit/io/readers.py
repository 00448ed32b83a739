"""Lazy readers for CSV, Parquet and NDJSON exports: a file, a glob or a folder.

Nothing is read until a query is collected; the loaders only attach a label (the
path the user gave) so that every later error can say which input it is about.
"""

from __future__ import annotations

import glob as globlib
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from abkit.errors import AbkitInputError

_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".json": "ndjson",
}

Data = str | Path | pl.LazyFrame | pl.DataFrame


@dataclass(frozen=True)
class Table:
    """A lazily read input table and the label used in messages about it."""

    frame: pl.LazyFrame
    label: str

    @property
    def columns(self) -> list[str]:
        return self.frame.collect_schema().names()

    def require(self, *columns: str, what: str = "") -> None:
        """Raise a clear error naming the first missing column and the ones found."""
        found = self.columns
        for col in columns:
            if col not in found:
                role = f" ({what})" if what else ""
                raise AbkitInputError(
                    f"required column '{col}'{role} is missing. Columns found: "
                    f"{', '.join(found) or '(none)'}.",
                    source=self.label,
                    hint="Rename the column in the export or map it in the config "
                    "([experiment] unit/variant/account, [input] for the others).",
                )


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


def read_table(source: Data, label: str | None = None) -> Table:
    """Open ``source`` lazily.

    Paths are read by extension (.csv, .tsv, .parquet/.pq, .ndjson/.jsonl/.json);
    all files of a glob or folder must share one format and schema.  CSV cells are
    read as text where they are not clearly numeric, so timestamps are parsed by
    abkit (see :func:`abkit.io.timestamps.parse_timestamp`), never guessed per file.
    """
    if isinstance(source, pl.DataFrame):
        return Table(source.lazy(), label or "data frame")
    if isinstance(source, pl.LazyFrame):
        return Table(source, label or "lazy frame")
    files = _files(source)
    formats = {_FORMATS.get(f.suffix.lower()) for f in files}
    if None in formats:
        bad = next(f for f in files if f.suffix.lower() not in _FORMATS)
        raise AbkitInputError(
            f"cannot tell the format of '{bad}' from its extension; use .csv, .tsv, "
            ".parquet, .ndjson or .jsonl."
        )
    if len(formats) > 1:
        raise AbkitInputError(f"'{source}' mixes file formats ({', '.join(sorted(formats))}).")
    fmt = formats.pop()
    paths = [str(f) for f in files]
    label = label or str(source)
    try:
        if fmt in ("csv", "tsv"):
            frame = pl.scan_csv(
                paths,
                separator="\t" if fmt == "tsv" else ",",
                infer_schema_length=10_000,
                encoding="utf8-lossy",
            )
        elif fmt == "parquet":
            frame = pl.scan_parquet(paths)
        else:
            frame = pl.scan_ndjson(paths, infer_schema_length=10_000)
        frame.collect_schema()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise AbkitInputError(f"could not read {fmt} input: {exc}", source=label) from None
    return Table(frame, label)
