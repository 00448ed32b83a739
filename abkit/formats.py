"""What an export file is, told by its name or its first bytes: the one table of
formats that the readers and the config loader share (no Polars here, so that the
config loader stays light)."""

from __future__ import annotations

from pathlib import Path

FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".ndjson": "ndjson",
    ".jsonl": "ndjson",
    ".json": "ndjson",
}

COMPRESSIONS = {".gz": "gzip", ".gzip": "gzip", ".zst": "zstd", ".zstd": "zstd"}
SPREADSHEETS = (".xlsx", ".xlsm", ".xls", ".ods", ".numbers")
# the first bytes of the binary files an export may arrive as
MAGIC = {
    b"PAR1": "parquet",
    b"\x1f\x8b": "gzip",
    b"\x28\xb5\x2f\xfd": "zstd",
    b"PK\x03\x04": "zip",
    b"\xd0\xcf\x11\xe0": "zip",  # an Excel 97-2003 workbook (OLE2 container)
}


def magic(head: bytes) -> str | None:
    """What the first bytes of a file say it is: parquet, gzip, zstd, zip, or None (text)."""
    return next((kind for sign, kind in MAGIC.items() if head.startswith(sign)), None)


def extension_format(path: Path) -> str | None:
    """The table format a file name states (``events.csv.gz`` → csv), or None."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in COMPRESSIONS:
        suffixes.pop()
    return FORMATS.get(suffixes[-1]) if suffixes else None


def is_export(path: Path) -> bool:
    """Whether ``path`` is a data export (a table, a compressed one or a spreadsheet) by
    its name or its first bytes, rather than a TOML config.

    Examples
    --------
    >>> is_export(Path("events.csv.gz")), is_export(Path("book.xls"))
    (True, True)
    """
    suffix = path.suffix.lower()
    if suffix in FORMATS or suffix in COMPRESSIONS or suffix in SPREADSHEETS:
        return True
    try:
        with path.open("rb") as handle:
            return magic(handle.read(4)) is not None
    except OSError:
        return False
