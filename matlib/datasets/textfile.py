"""Text tables (CSV / TSV, optionally compressed) read row by row: an unreadable row is set aside with its line and
reason (like an unparseable SMILES), never the whole file, and never another row.

Every data row of the file comes back, in file order, with the line it starts on; a row that is not valid UTF-8, or
has more fields than the header, or opens a quote it never closes, carries a `problem` and best-effort fields. The
whole file is refused (one-line MatlibError) only when it is not a text table at all: a binary file (an Excel
workbook renamed .csv), an empty file, or one where most rows are unreadable (another encoding).
"""

from __future__ import annotations

import bz2
import codecs
import csv
import gzip
import io
import itertools
import lzma
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from matlib.errors import MatlibError
from matlib.text import shorten

MAX_MALFORMED = 100  # rows the csv grammar rejects (unclosed quotes ...) before the file is refused
MAX_BAD_FRACTION = 0.5  # more unreadable rows than this: the file is refused as a whole
BINARY_MAGIC = {
    b"PK\x03\x04": "a zip archive or an Excel .xlsx workbook",
    b"\xd0\xcf\x11\xe0": "an Excel .xls workbook",
    b"PAR1": "a Parquet file",
    b"\x89HDF": "an HDF5 file",
    b"%PDF": "a PDF",
}
_UNDECODED = re.compile("[\udc80-\udcff]")  # bytes that are not UTF-8, as decoded with surrogateescape


@dataclass
class TextTable:
    """Every data row of a text table, in file order; unreadable rows keep best-effort fields and a problem."""

    name: str  # the file's name (for messages)
    frame: pd.DataFrame  # one row per data row; text cells, NaN where empty
    line: np.ndarray  # int64 [n]: the 1-based line each row starts on (the header is line 1)
    problem: list[str | None]  # per row: why it is unreadable, or None

    @property
    def ok(self) -> np.ndarray:
        """bool [n]: the rows that were read as written."""
        return np.array([p is None for p in self.problem], dtype=bool)

    def reason(self, i: int) -> str | None:
        """'line N: why' for an unreadable row i, else None."""
        return None if self.problem[i] is None else f"line {int(self.line[i])}: {self.problem[i]}"

    def readable(self) -> pd.DataFrame:
        """The readable rows only (index: their 0-based position among all data rows)."""
        return self.frame[self.ok]

    def unreadable(self) -> pd.DataFrame:
        """row (0-based data row), line, reason of every unreadable row."""
        bad = np.flatnonzero(~self.ok)
        return pd.DataFrame(
            {
                "row": bad.astype("int64"),
                "line": self.line[bad].astype("int64"),
                "reason": [self.problem[i] for i in bad],
            }
        )


def read_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed by suffix (.gz, .bz2, .xz, .zip with one member)."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".gz":
            return gzip.decompress(path.read_bytes())
        if suffix == ".bz2":
            return bz2.decompress(path.read_bytes())
        if suffix == ".xz":
            return lzma.decompress(path.read_bytes())
        if suffix == ".zip":
            with zipfile.ZipFile(path) as zf:
                names = [n for n in zf.namelist() if not n.endswith("/")]
                if len(names) != 1:
                    raise MatlibError(
                        f"cannot read {path.name}: a .zip must hold exactly one table, it holds {len(names)} files"
                    )
                return zf.read(names[0])
        return path.read_bytes()
    except (OSError, EOFError, ValueError, lzma.LZMAError, zipfile.BadZipFile) as exc:
        raise MatlibError(
            f"cannot read {path.name}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        ) from None


def decode(data: bytes, name: str) -> str:
    """Text of a table's bytes: UTF-8 (BOM dropped) or BOM-marked UTF-16; bytes that are not UTF-8 are kept as
    surrogate escapes so the rows holding them can be set aside; a binary file is refused in one line."""
    for magic, what in BINARY_MAGIC.items():
        if data.startswith(magic):
            raise MatlibError(f"{name} is not a text table (it looks like {what}); save it as CSV")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise MatlibError(f"{name}: not valid UTF-16 ({exc.reason} at byte {exc.start})") from None
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("utf-8", errors="surrogateescape")


def _header(fields: list[str]) -> list[str]:
    """Column names as pandas gives them: blank -> 'Unnamed: i', repeats -> 'name.1', 'name.2', ..."""
    out: list[str] = []
    seen: dict[str, int] = {}
    for i, f in enumerate(fields):
        name = f if f.strip() else f"Unnamed: {i}"
        if name in seen:
            seen[name] += 1
            candidate = f"{name}.{seen[name]}"
            while candidate in seen:
                seen[name] += 1
                candidate = f"{name}.{seen[name]}"
            name = candidate
        seen.setdefault(name, 0)
        out.append(name)
    return out


def _undecoded_reason(fields: list[str]) -> str | None:
    """'not valid UTF-8 (byte 0x..)' if a field holds a byte that is not UTF-8, else None."""
    for f in fields:
        m = _UNDECODED.search(f)
        if m:
            return f"not valid UTF-8 (byte 0x{ord(m.group()) - 0xDC00:02x} in {shorten(repr(_UNDECODED.sub('?', f)))})"
    return None


def parse_rows(text: str, sep: str = ",") -> tuple[list[list[str]], list[int], list[str | None]]:
    """(fields, first line, csv-level problem) of every non-blank row of text, in order.

    A row the csv grammar rejects (a quote that is never closed, text after a closing quote) is recorded with its
    problem and parsing resumes on the next line, so one malformed row costs only itself.
    """
    lines = list(io.StringIO(text, newline=""))
    reader = csv.reader(lines, delimiter=sep, strict=True)
    try:  # fast path: the whole file parses; a row starts on the line after the previous row's last line
        parsed = [(fields, reader.line_num) for fields in reader]
    except csv.Error:
        parsed = None
    if parsed is not None:
        starts = [1] + [end + 1 for _, end in parsed[:-1]]
        keep = [k for k, (fields, _) in enumerate(parsed) if fields]  # blank lines are skipped (as pandas does)
        return [parsed[k][0] for k in keep], [starts[k] for k in keep], [None] * len(keep)
    rows: list[list[str]] = []
    first: list[int] = []
    problems: list[str | None] = []
    pos = 0  # index of the next physical line to read
    n_malformed = 0
    while pos < len(lines):
        reader = csv.reader(itertools.islice(lines, pos, None), delimiter=sep, strict=True)
        base = pos
        while True:
            start = base + reader.line_num  # lines consumed before this row
            try:
                fields = next(reader)
            except StopIteration:
                pos = len(lines)
                break
            except csv.Error as exc:  # record the row's first line as unreadable, resume after it
                rows.append(_fallback_fields(lines[start], sep))
                first.append(start + 1)
                problems.append(f"malformed CSV ({exc})")
                pos = start + 1
                n_malformed += 1
                if n_malformed > MAX_MALFORMED:  # each restart may rescan the rest of the file: bound the work
                    raise MatlibError(
                        f"more than {MAX_MALFORMED} malformed rows (line {start + 1}: {exc}); is it a CSV file?"
                    ) from None
                break
            if fields:  # blank lines are skipped (as pandas does)
                rows.append(fields)
                first.append(start + 1)
                problems.append(None)
    return rows, first, problems


def _fallback_fields(line: str, sep: str) -> list[str]:
    """Best-effort fields of a malformed line (split at the delimiter, quotes dropped)."""
    return [f.strip().strip('"') for f in line.rstrip("\r\n").split(sep)]


def read_text_table(path: str | Path, sep: str | None = None) -> TextTable:
    """Every data row of a CSV/TSV file (see the module docstring); one-line MatlibError if it is not a text table."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise MatlibError(f"file not found: {path}")
    suffixes = [s.lower() for s in path.suffixes]
    sep = sep or ("\t" if ".tsv" in suffixes or ".tab" in suffixes else ",")
    text = decode(read_bytes(path), path.name)
    rows, first, problems = parse_rows(text, sep)
    if not rows:
        raise MatlibError(f"{path.name} is empty (no header line)")
    header, rows, first, problems = rows[0], rows[1:], first[1:], problems[1:]
    if _undecoded_reason(header) or "\x00" in "".join(header):
        raise MatlibError(f"{path.name}: the header line is not UTF-8 text; save the table as UTF-8 CSV")
    columns = _header(header)
    m = len(columns)
    # only rows that need it are visited: those of the wrong width, already malformed, or (when the file holds
    # bytes that are not UTF-8) every row
    suspect = (
        range(len(rows))
        if _UNDECODED.search(text)
        else sorted({k for k, fields in enumerate(rows) if len(fields) != m} | {k for k, p in enumerate(problems) if p})
    )
    cells: list[Sequence[str | None]] = list(rows)
    for k in suspect:
        fields = rows[k]
        if problems[k] is None:
            problems[k] = _undecoded_reason(fields)
        if len(fields) > m and any(f.strip() for f in fields[m:]) and problems[k] is None:
            problems[k] = f"{len(fields)} fields, the header has {m} (an unquoted {sep!r} in a value?)"
        fields = [_UNDECODED.sub("\ufffd", f) for f in fields[:m]] if problems[k] else fields[:m]
        cells[k] = [*fields, *([None] * (m - len(fields)))]
    n_bad = sum(p is not None for p in problems)
    if rows and n_bad > MAX_BAD_FRACTION * len(rows):
        i = next(k for k, p in enumerate(problems) if p is not None)
        raise MatlibError(
            f"{path.name}: {n_bad} of {len(rows)} rows are unreadable (line {first[i]}: {problems[i]}); "
            "is it a UTF-8 CSV?"
        )
    frame = (
        pd.DataFrame(cells, columns=columns, dtype=object)
        if cells
        else pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    )
    # empty cells -> NaN, as pandas reads them (an element-wise ==, not isin: pandas' hash tables see '\x00x' as '')
    frame = frame.mask((frame == "") | frame.isna())
    return TextTable(name=path.name, frame=frame, line=np.asarray(first, dtype=np.int64), problem=list(problems))
