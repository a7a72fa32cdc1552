"""The row-wise CSV reader: one bad row is set aside with its line and reason, never the whole file (issue 15,
defect 11); every row comes back in order (hypothesis round trip); binary or empty files get one-line errors."""

from __future__ import annotations

import csv
import gzip
import io

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matlib.datasets import import_table, read_table
from matlib.datasets.textfile import read_text_table
from matlib.errors import MatlibError
from matlib.store import Store
from tests.fixtures import TEST_DATA

ESOL = TEST_DATA / "targets" / "esol.csv"


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    assert text and "\n" not in text
    return text


def _esol_bytes(n: int = 12) -> list[bytes]:
    """Header + n real ESOL lines as bytes."""
    return ESOL.read_bytes().splitlines(keepends=True)[: n + 1]


def test_non_utf8_byte_costs_only_its_row(tmp_path):
    lines = _esol_bytes()
    lines[4] = lines[4][:2] + b"\xff" + lines[4][2:]
    path = tmp_path / "t.csv"
    path.write_bytes(b"".join(lines))
    t = read_text_table(path)
    assert len(t.frame) == 12 and t.ok.sum() == 11
    assert t.reason(3) == "line 5: not valid UTF-8 (byte 0xff in " + t.problem[3].split(" in ", 1)[1]
    ref = pd.read_csv(ESOL).head(12)
    assert t.frame["smiles"].drop(index=3).tolist() == ref["smiles"].drop(index=3).tolist()


def test_extra_field_costs_only_its_row(tmp_path):
    lines = _esol_bytes()
    lines[7] = lines[7].rstrip(b"\n") + b",surplus\n"
    path = tmp_path / "t.csv"
    path.write_bytes(b"".join(lines))
    t = read_text_table(path)
    assert t.problem[6].startswith("3 fields, the header has 2") and t.line[6] == 8
    assert t.ok.sum() == 11
    # a trailing empty field (as spreadsheets write) loses nothing: not a problem
    lines[7] = lines[7].replace(b",surplus", b",")
    path.write_bytes(b"".join(lines))
    assert read_text_table(path).ok.all()


def test_unclosed_quote_costs_only_its_row(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text('formula,y\nNaCl,1\n"MgO,2\nAl2O3,3\nSiO2,4\n')
    t = read_text_table(path)
    assert t.frame["formula"].tolist()[1:] == ["MgO", "Al2O3", "SiO2"] and t.line.tolist() == [2, 3, 4, 5]
    assert t.ok.tolist() == [True, False, True, True] and "malformed CSV" in t.problem[1]


def test_multiline_quoted_cell_is_one_row_with_its_line(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text('formula\nNaCl\n"Fe\nO"\nMgO\nAl2O3\nSiO2\n""\n')  # the file
    t = read_text_table(path)
    assert t.frame["formula"].tolist()[:5] == ["NaCl", "Fe\nO", "MgO", "Al2O3", "SiO2"]
    assert pd.isna(t.frame["formula"].iloc[5]) and t.line.tolist() == [2, 3, 5, 6, 7, 8] and t.ok.all()


def test_bom_gzip_and_utf16_are_read(tmp_path):
    body = "formula,y\nNaCl,1\nMgO,2\n"
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbf" + body.encode())
    (tmp_path / "t.csv.gz").write_bytes(gzip.compress(body.encode()))
    (tmp_path / "u16.csv").write_bytes(body.encode("utf-16"))
    for name in ("bom.csv", "t.csv.gz", "u16.csv"):
        t = read_text_table(tmp_path / name)
        assert list(t.frame.columns) == ["formula", "y"] and t.frame["formula"].tolist() == ["NaCl", "MgO"], name


def test_not_a_text_table_is_one_line(tmp_path):
    xlsx = tmp_path / "book.csv"
    xlsx.write_bytes(b"PK\x03\x04" + bytes(range(256)) * 4)
    with pytest.raises(MatlibError) as err:
        read_text_table(xlsx)
    assert "not a text table" in _one_line(err.value) and "Excel" in str(err.value)
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("formula,y\nNaCl é,1\nMgO é,2\nCaO é,3\n".encode("latin-1"))
    with pytest.raises(MatlibError) as err:
        read_text_table(latin1)
    assert "3 of 3 rows are unreadable" in _one_line(err.value)
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(MatlibError) as err:
        read_text_table(empty)
    assert "empty" in _one_line(err.value)


def test_nul_cells_are_kept_exactly(tmp_path):
    """pandas' hash tables compare strings as C strings: '\\x00x' must not become an empty cell."""
    path = tmp_path / "t.csv"
    path.write_text("a,b\n\x00x,1\n,2\n")
    t = read_text_table(path)
    assert t.frame["a"].iloc[0] == "\x00x" and pd.isna(t.frame["a"].iloc[1])


def test_import_quarantines_unreadable_rows_with_line_numbers(tmp_path):
    lines = _esol_bytes(30)
    lines[4] = lines[4][:2] + b"\xfe" + lines[4][2:]
    lines[9] = lines[9].rstrip(b"\n") + b",1,2\n"
    path = tmp_path / "esol_bad.csv"
    path.write_bytes(b"".join(lines))
    ds = import_table(Store(tmp_path / "store"), "esol-bad", path, "smiles", "logSolubility")
    m = ds.manifest
    assert m["n_input_rows"] == 30 and m["n_unreadable_rows"] == 2
    assert m["n_rows"] + m["n_quarantined"] == 30
    q = ds.quarantine(Store(tmp_path / "store"))
    bad = q[q["field"] == "row"]
    assert bad["row"].tolist() == [3, 8]
    assert bad["reason"].iloc[0].startswith("line 5: not valid UTF-8") and bad["reason"].iloc[1].startswith(
        "line 10: 4 fields"
    )
    assert read_table(path).attrs["unreadable"]["line"].tolist() == [5, 10]


CELLS = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(CELLS, CELLS), max_size=15))
def test_any_cells_round_trip_in_order(tmp_path, rows):
    """Any sequence of strings written as a CSV (quotes, commas, line breaks, NUL) comes back: same number of rows,
    in order, each with its value (an empty cell as missing), none set aside."""
    buf = io.StringIO(newline="")
    w = csv.writer(buf)  # default "\r\n" terminator: cells holding \r or \n are quoted
    w.writerow(["input", "target"])
    w.writerows(rows)
    path = tmp_path / "prop.csv"
    path.write_bytes(buf.getvalue().encode("utf-8"))
    t = read_text_table(path)
    got = [tuple("" if pd.isna(v) else v for v in rec) for rec in t.frame[["input", "target"]].itertuples(index=False)]
    assert got == [tuple(r) for r in rows]
    assert t.ok.all() and len(t.line) == len(rows) and np.all(np.diff(t.line) > 0)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.binary(max_size=20), min_size=1, max_size=12))
def test_any_bytes_give_rows_or_reasons(tmp_path, cells):
    """Arbitrary bytes in the cells of a 2-column file: the reader never raises a non-MatlibError, and every row it
    returns has its line and either a value or a reason."""
    body = b"input,target\n" + b"".join(c.replace(b"\n", b" ").replace(b"\r", b" ") + b",1\n" for c in cells)
    path = tmp_path / "bytes.csv"
    path.write_bytes(body)
    try:
        t = read_text_table(path)
    except MatlibError as exc:
        assert "\n" not in str(exc)
        return
    assert len(t.frame) == len(t.line) == len(t.problem)
    assert np.all(np.diff(t.line) > 0)
    for i in range(len(t.frame)):
        assert t.problem[i] is None or t.reason(i).startswith(f"line {t.line[i]}: ")
