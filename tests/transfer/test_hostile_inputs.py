"""Hostile training and prediction files against `matlib transfer fit / predict` (issue 15, defects 1, 5, 8, 11, 12
and the input messages of 13), through the real CLI where the issue's probe used it."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from matlib.errors import MatlibError, ValidationError
from matlib.library import Library
from matlib.transfer.fit import library_specs
from matlib.transfer.target import prepare_target, read_target_csv
from tests.transfer.conftest import REPO, esol_rows

MP_GAP = REPO / "data" / "samples" / "mp_gap_sample.csv"
SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
REMOTE = "![pixel](http://evil.example/p.png)"
LONG = "X" * 20000


def _matlib(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from matlib.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=900,
    )


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    assert text and "\n" not in text
    return text


@pytest.fixture(scope="module")
def specs(small_library):
    return library_specs(Library(small_library).catalog)


def _gap_rows(n: int = 40) -> pd.DataFrame:
    """n real MP formulas with band gaps (the tail of the shipped sample), one row per formula."""
    df = pd.read_csv(MP_GAP)
    return df.drop_duplicates("formula").tail(n).reset_index(drop=True)


# ---------------------------------------------------------------- target range, outliers, repeats (5, 12, 13)


def test_one_huge_target_is_refused_naming_the_row(specs):
    df = _gap_rows()
    y = df["band_gap_eV"].tolist()
    y[6] = 1e308
    with pytest.raises(ValidationError) as err:
        prepare_target(df["formula"].tolist(), y, specs, "band_gap_eV")
    text = _one_line(err.value)
    assert "row 7 (1e+308)" in text and "too large" in text


def test_all_extreme_targets_are_one_line_not_arange(small_library, tmp_path):
    """All targets +-1e308 crashed with `ValueError: arange`; now one line naming the rows."""
    df = _gap_rows(20)
    df["band_gap_eV"] = [1e308 if i % 2 else -1e308 for i in range(len(df))]
    path = tmp_path / "huge.csv"
    df.to_csv(path, index=False)
    r = _matlib(
        "transfer",
        "fit",
        "--library",
        str(small_library),
        "--train",
        str(path),
        "--input-column",
        "formula",
        "--target-column",
        "band_gap_eV",
        "--out",
        str(tmp_path / "run"),
        "--max-overlap",
        "1",
    )
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
    assert "too large for the fit's arithmetic" in r.stderr and "row 1 (-1e+308)" in r.stderr
    assert "arange" not in r.stderr and not (tmp_path / "run" / "model").exists()


def test_run_name_rule(small_library, tmp_path):
    df = _gap_rows(20)
    with pytest.raises(ValidationError) as err:
        from matlib.transfer import fit_transfer

        fit_transfer(small_library, df["formula"].tolist(), df["band_gap_eV"].tolist(), tmp_path / ("r" * 300))
    assert _one_line(err.value).startswith("invalid run name")


def test_range_limit_is_float32_safe():
    from matlib.transfer.target_checks import max_deviation

    n = 100
    lim = max_deviation(n)
    assert np.isfinite(np.float32(lim) ** 2 * n * 10)


def test_extreme_outlier_is_noted(specs):
    df = _gap_rows()
    y = df["band_gap_eV"].tolist()
    y[11] = 1000.0  # a unit mix-up (meV for eV)
    t = prepare_target(df["formula"].tolist(), y, specs, "band_gap_eV")
    notes = [n for n in t.notes if "extreme outlier" in n]
    assert len(notes) == 1 and "row 12 (1000" in notes[0] and "robust z-score" in notes[0]
    assert int(t.usable.sum()) == len(df)  # kept, not dropped
    clean = prepare_target(df["formula"].tolist(), df["band_gap_eV"].tolist(), specs, "band_gap_eV")
    assert not any("outlier" in n for n in clean.notes)


def test_conflicting_repeats_are_merged_and_listed(specs):
    df = _gap_rows()
    inputs = df["formula"].tolist() + [df["formula"][3], df["formula"][5]]
    y = df["band_gap_eV"].tolist() + [df["band_gap_eV"][3] + 2.0, df["band_gap_eV"][5]]
    t = prepare_target(inputs, y, specs, "band_gap_eV")
    assert int(t.usable.sum()) == len(df)
    assert t.y[3] == pytest.approx(df["band_gap_eV"][3] + 1.0)  # the mean of the two
    assert t.y[5] == pytest.approx(df["band_gap_eV"][5])
    reasons = dict(zip(t.skipped_rows["row"], t.skipped_rows["reason"]))
    assert reasons[len(df) + 1].startswith("same material as row 4") and "merged" in reasons[len(df) + 1]
    notes = " ".join(t.notes)
    assert "repeated inputs: 2 material(s)" in notes and "conflicting repeats: 1 material(s)" in notes
    # the same material written differently (element order, scale) is the same input
    swapped = "".join(reversed(re.findall(r"[A-Z][a-z]?\d*\.?\d*", df["formula"][7])))
    t2 = prepare_target(df["formula"].tolist() + [swapped], y[: len(df)] + [9.0], specs, "band_gap_eV")
    assert int(t2.usable.sum()) == len(df) and any("conflicting" in n for n in t2.notes)


def test_constant_target_message_is_plain(specs):
    df = esol_rows(20)
    with pytest.raises(MatlibError) as err:
        prepare_target(df["smiles"].tolist(), [1.5] * 20, specs, "logSolubility")
    text = _one_line(err.value)
    assert "constant (1.5)" in text and "np.float64" not in text


def test_header_only_file_says_so(tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("smiles,logSolubility\n")
    with pytest.raises(MatlibError) as err:
        read_target_csv(path, "smiles", "logSolubility")
    text = _one_line(err.value)
    assert "no data rows" in text and "None" not in text


def test_unreadable_rows_are_skipped_with_their_line(specs, tmp_path):
    lines = (REPO / "tests" / "fixtures" / "data" / "targets" / "esol.csv").read_bytes().splitlines(keepends=True)
    lines = lines[:31]
    lines[5] = lines[5][:3] + b"\xe9" + lines[5][3:]
    lines[8] = lines[8].rstrip(b"\r\n") + b",7\n"
    path = tmp_path / "t.csv"
    path.write_bytes(b"".join(lines))
    inputs, y = read_target_csv(path, "smiles", "logSolubility")
    assert len(inputs) == 30
    t = prepare_target(inputs, y, specs, "logSolubility")
    reasons = dict(zip(t.skipped_rows["row"], t.skipped_rows["reason"]))
    assert reasons[5].startswith("line 6: not valid UTF-8") and reasons[8].startswith("line 9: 3 fields")
    assert int(t.usable.sum()) == 28


# ---------------------------------------------------------------- the CLI probes (1, 8, 11, 12)


@pytest.fixture(scope="module")
def hostile_run(small_library, tmp_path_factory):
    """`matlib transfer fit` on real MP band gaps plus hostile rows: markup and a 20,000-character input, a
    conflicting repeat, an extreme outlier (500 eV), a non-UTF-8 row and a row with an extra field."""
    d = tmp_path_factory.mktemp("hostile")
    df = _gap_rows(40)
    body = df.to_csv(index=False).encode()
    outlier = pd.read_csv(MP_GAP).drop_duplicates("formula")["formula"].iloc[0]  # not among the 40 rows
    extra = (
        pd.DataFrame(
            {
                "formula": [SCRIPT, IMG, REMOTE, LONG, "[/x]", df["formula"][2], outlier],
                "band_gap_eV": [1.0, 1.0, 1.0, 1.0, 1.0, df["band_gap_eV"][2] + 3.0, 500.0],
            }
        )
        .to_csv(index=False, header=False)
        .encode()
    )
    body += extra + b"Mg\xffO,2.5\n" + b"CaO,3.0,surplus\n"
    path = d / "train.csv"
    path.write_bytes(body)
    out = d / "run"
    r = _matlib(
        "transfer",
        "fit",
        "--library",
        str(small_library),
        "--train",
        str(path),
        "--input-column",
        "formula",
        "--target-column",
        "band_gap_eV",
        "--out",
        str(out),
        "--top-k",
        "2",
        "--repeats",
        "1",
        "--folds",
        "4",
        "--max-overlap",
        "1",
        "--allow-leakage",
    )  # the library was trained on these very materials
    return r, out, d


def test_fit_survives_hostile_rows_and_says_so(hostile_run):
    r, out, _ = hostile_run
    assert r.returncode == 0, r.stderr
    said = " ".join(r.stdout.split())  # the console wraps long lines
    assert "conflicting repeats" in said and "line 49: not valid UTF-8" in said and "line 50: 3 fields" in said
    assert "extreme outlier(s)" in said and "row 47 (500" in said
    assert "[/x]" in said  # rich markup in an input is printed, not interpreted (it used to crash the summary)
    skipped = pd.read_parquet(out / "skipped_rows.parquet")
    assert len(skipped) == 8  # 5 hostile inputs + 1 merged repeat + 2 unreadable lines (the outlier is kept)


def test_report_is_inert(hostile_run):
    r, out, _ = hostile_run
    assert r.returncode == 0, r.stderr
    report = (out / "report.md").read_text()
    assert "<script" not in report and "<img" not in report
    images = re.findall(r"(?<!\\)!\[[^\]]*\]\(([^)]*)\)", report)  # live Markdown images
    assert images == ["parity.png", "scores_by_property.png"]  # the report's own plots only
    assert not re.search(r"(?<!\\)\]\(http", report)
    assert not re.search(r"(?<!\\)\[/x\]", report)
    assert "&lt;script&gt;" in report and "\\!\\[pixel\\]" in report  # shown, escaped
    assert max(len(line) for line in report.splitlines()) < 2000  # the 20,000-character input is cut
    assert "X" * 60 + "…" in report and "X" * 61 not in report
    assert "conflicting repeats" in report and "merged into its first row with the mean" in report
    assert "extreme outlier(s)" in report


def test_predict_keeps_every_row_on_its_own_features(hostile_run):
    """The issue's probe: a quoted multi-line cell used to give Al2O3 the prediction of MgO (exit 0)."""
    r, out, d = hostile_run
    assert r.returncode == 0, r.stderr
    x = d / "x.csv"
    x.write_text('formula\nNaCl\n"Fe\nO"\nMgO\nAl2O3\nSiO2\n""\n')
    r = _matlib("transfer", "predict", "--model", str(out), "--input", str(x), "--output", str(d / "p.csv"))
    assert r.returncode == 0, r.stderr
    p = pd.read_csv(d / "p.csv", keep_default_na=False)
    assert p["formula"].tolist() == ["NaCl", "Fe\nO", "MgO", "Al2O3", "SiO2", ""]
    assert [bool(v) for v in p["reason"]] == [False, True, False, False, False, True]
    clean = d / "clean.csv"
    clean.write_text("formula\nNaCl\nMgO\nAl2O3\nSiO2\n")
    r = _matlib("transfer", "predict", "--model", str(out), "--input", str(clean), "--output", str(d / "q.csv"))
    assert r.returncode == 0, r.stderr
    q = pd.read_csv(d / "q.csv")
    got = pd.to_numeric(p["prediction"].iloc[[0, 2, 3, 4]]).to_numpy()
    assert np.allclose(got, q["prediction"].to_numpy(), rtol=1e-6)
    assert len(set(np.round(q["prediction"], 6))) == 4  # four different materials, four different predictions


def test_predict_sets_unreadable_rows_aside(hostile_run):
    r, out, d = hostile_run
    assert r.returncode == 0, r.stderr
    path = d / "bad_predict.csv"
    path.write_bytes(b"formula\nNaCl\nMg\xffO\nAl2O3\n")
    r = _matlib("transfer", "predict", "--model", str(out), "--input", str(path), "--output", str(d / "b.csv"))
    assert r.returncode == 0, r.stderr
    b = pd.read_csv(d / "b.csv")
    assert len(b) == 3 and b["prediction"].isna().tolist() == [False, True, False]
    assert b["reason"].iloc[1].startswith("line 3: not valid UTF-8")


# ---------------------------------------------------------------- properties (hypothesis)

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

FORMULA_TEXT = st.lists(
    st.one_of(
        st.sampled_from(["Na", "Cl", "Mg", "O", "Fe", "2", "0.5", "(", ")", " ", "\n", ",", '"', "<b>", "Xx", "é"]),
        st.text(max_size=3),
    ),
    max_size=6,
).map("".join)
CELL_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=10)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(FORMULA_TEXT, CELL_TEXT), max_size=12))
def test_target_csv_rows_come_back_in_order_with_value_or_reason(tmp_path, rows):
    """Any strings as (input, target) cells: read_target_csv gives every row in order, and parse_target gives each
    a finite value or a reason (or the whole column is refused in one line as not numeric)."""
    import csv
    import io

    from matlib.transfer.target import parse_target

    buf = io.StringIO(newline="")
    w = csv.writer(buf)
    w.writerow(["formula", "y"])
    w.writerows(rows)
    path = tmp_path / "t.csv"
    path.write_bytes(buf.getvalue().encode())
    if not rows:
        with pytest.raises(ValidationError):
            read_target_csv(path, "formula", "y")
        return
    inputs, y = read_target_csv(path, "formula", "y")
    assert inputs == [r[0].strip() for r in rows]
    try:
        values, reasons = parse_target(y, "y")
    except ValidationError as exc:
        assert "\n" not in str(exc)
        return
    assert len(values) == len(reasons) == len(rows)
    for v, why in zip(values, reasons):
        assert np.isfinite(v) != (why is not None)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(inputs=st.lists(FORMULA_TEXT, min_size=1, max_size=8))
def test_predict_any_inputs_row_by_row(hostile_run, tmp_path, inputs):
    """Any formula-like strings (line breaks, quotes, commas, markup) through predict_csv: one output row per input,
    in order, each with a prediction or a reason, and each prediction the one that input gets alone."""
    import csv
    import io

    from matlib.transfer.model import load_model
    from matlib.transfer.predict_csv import predict_csv

    r, out, _ = hostile_run
    assert r.returncode == 0, r.stderr
    buf = io.StringIO(newline="")
    w = csv.writer(buf)
    w.writerow(["formula"])
    w.writerows([[x] for x in inputs])
    src = tmp_path / "in.csv"
    src.write_bytes(buf.getvalue().encode())
    got = predict_csv(out, src, tmp_path / "out.csv")
    assert len(got) == len(inputs)
    assert ["" if pd.isna(v) else v for v in got["formula"]] == inputs
    info = load_model(out)
    from matlib.transfer.model import predict_transfer

    for i, x in enumerate(inputs):
        assert np.isfinite(got["prediction"].iloc[i]) != (not pd.isna(got["reason"].iloc[i])), x
        alone = predict_transfer(info, [x])
        if np.isfinite(alone["prediction"].iloc[0]):
            assert got["prediction"].iloc[i] == pytest.approx(alone["prediction"].iloc[0], rel=1e-6), x
        else:
            assert not np.isfinite(got["prediction"].iloc[i]), x
