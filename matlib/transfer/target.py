"""The user's target table: read, validate (one-line errors), featurise once per descriptor spec."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pandas._libs.parsers import STR_NA_VALUES

from matlib.atomic import read_parquet
from matlib.errors import MatlibError, ValidationError
from matlib.text import names_list, shorten
from matlib.transfer.target_checks import check_range, merge_repeats, outlier_note

MIN_ROWS = 8
MIN_SPEC_COVERAGE = 0.5  # a descriptor must featurise at least this fraction of the inputs to be used
NA_TEXT = frozenset(STR_NA_VALUES)  # target cells read as missing (pandas' default NA strings: '', 'NA', 'n/a', ...)


class Unreadable(str):
    """A target cell of a row that could not be read from the file; its text is the reason ('line N: ...')."""


def read_target_csv(path: str | Path, input_column: str, target_column: str) -> tuple[list[str], pd.Series]:
    """(inputs as strings, raw target column) from a CSV, naming a missing column in one line.

    Every data row is returned in order; a row that cannot be read (not UTF-8, an extra field, ...) keeps its
    best-effort input and has an `Unreadable` reason as its target, so it is skipped with its line number.
    """
    from matlib.datasets.textfile import read_text_table

    path = Path(path)
    if not path.exists():
        raise MatlibError(f"training table not found: {path}")
    table = read_text_table(path)
    df = table.frame
    for col in (input_column, target_column):
        if col not in df.columns:
            raise ValidationError(f"{path}: no column {shorten(repr(col))} (columns: {names_list(list(df.columns))})")
    if not len(df):
        raise ValidationError(f"{path}: no data rows (the file has only a header line)")
    inputs = ["" if pd.isna(v) else str(v).strip() for v in df[input_column]]
    y = [
        Unreadable(table.reason(i)) if table.problem[i] else (None if pd.isna(v) or str(v).strip() in NA_TEXT else v)
        for i, v in enumerate(df[target_column])
    ]
    return inputs, pd.Series(y, dtype=object, name=target_column)


def parse_target(values: Iterable[Any], column: str = "target") -> tuple[np.ndarray, list[str | None]]:
    """Numeric target values (NaN where missing/non-numeric, with a reason); one-line error for a non-numeric column."""
    raw = pd.Series(list(values), dtype=object)
    if not len(raw):
        raise ValidationError(f"target column {column!r} has no rows")
    unreadable = raw.map(lambda v: isinstance(v, Unreadable))
    num = pd.to_numeric(raw.where(~unreadable, None), errors="coerce").astype(np.float64)
    present = ~unreadable & raw.map(
        lambda v: not (v is None or (isinstance(v, float) and np.isnan(v)) or str(v).strip() == "")
    )
    bad = present & ~np.isfinite(num)
    if present.sum() == 0:
        raise ValidationError(f"target column {column!r} has no values ({len(raw)} rows, all empty or unreadable)")
    if bad.sum() * 2 > present.sum():
        first = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValidationError(
            f"target column {column!r} is not numeric (row {first + 1}: {shorten(repr(raw.iloc[first]))})"
        )
    reasons: list[str | None] = []
    for i in range(len(raw)):
        if unreadable.iloc[i]:
            reasons.append(str(raw.iloc[i]))
        elif not present.iloc[i]:
            reasons.append("missing target value")
        elif bad.iloc[i]:
            reasons.append(f"target value {shorten(repr(raw.iloc[i]))} is not a finite number")
        else:
            reasons.append(None)
    return num.to_numpy(), reasons


@dataclass
class TargetFeatures:
    """Usable target rows featurised with every usable descriptor spec of the library."""

    inputs: list[str]  # all rows as given
    y: np.ndarray  # all rows (NaN where unusable)
    usable: np.ndarray  # bool [n_all]
    features: dict[str, np.ndarray]  # descriptor_hash -> float32 [n_usable, d]
    specs: dict[str, dict]  # descriptor_hash -> spec dict
    skipped_rows: pd.DataFrame  # row (1-based), input, reason
    notes: list[str] = field(default_factory=list)

    @property
    def y_usable(self) -> np.ndarray:
        """Target values of the usable rows."""
        return self.y[self.usable]


def featurize_inputs(inputs: Sequence[str], spec: dict) -> tuple[np.ndarray, np.ndarray, list[str | None], str]:
    """(X float32 [n,d], ok [n], reasons, input_kind) of inputs under a descriptor spec dict."""
    from matlib.descriptors import DescriptorSpec, get_featurizer

    feat = get_featurizer(DescriptorSpec.from_dict(spec))
    res = feat.featurize(list(inputs))
    return np.asarray(res.X, dtype=np.float32), np.asarray(res.ok, dtype=bool), list(res.reasons), feat.input_kind


_Featurised = tuple[np.ndarray, np.ndarray, list[str | None], str]  # features, ok, reasons, input kind


def prepare_target(
    inputs: Sequence[str], y_values: Iterable[Any], specs: dict[str, dict], target_column: str = "target"
) -> TargetFeatures:
    """Validate the target, featurise once per spec, keep the rows every used spec can featurise."""
    inputs = ["" if v is None else str(v).strip() for v in inputs]
    y, y_reasons = parse_target(y_values, target_column)
    if len(inputs) == 0:
        raise ValidationError("the training table has no rows")
    notes: list[str] = []
    results = _featurise_all(inputs, specs, notes)
    used, kind = _usable_specs(inputs, specs, results, notes)
    reasons = _row_reasons(inputs, specs, results, used, list(y_reasons))
    usable = np.array([r is None for r in reasons], dtype=bool)
    check_range(y, usable, target_column)
    y, repeat_notes = merge_repeats(inputs, y, usable, reasons, kind, target_column)
    notes += repeat_notes
    skipped = pd.DataFrame(
        {
            "row": np.flatnonzero(~usable) + 1,
            "input": [inputs[i] for i in np.flatnonzero(~usable)],
            "reason": [reasons[i] for i in np.flatnonzero(~usable)],
        }
    )
    _check_enough_rows(y, usable, skipped, target_column)
    outliers = outlier_note(y, usable, target_column)
    if outliers:
        notes.append(outliers)
    return TargetFeatures(
        inputs=inputs,
        y=y,
        usable=usable,
        features={h: results[h][0][usable] for h in used},
        specs={h: specs[h] for h in used},
        skipped_rows=skipped,
        notes=notes,
    )


def _featurise_all(inputs: list[str], specs: dict[str, dict], notes: list[str]) -> dict[str, _Featurised]:
    """Every spec's featurisation of the inputs (a spec that cannot featurise at all: a note)."""
    results: dict[str, _Featurised] = {}
    for h, spec in specs.items():
        try:
            results[h] = featurize_inputs(inputs, spec)
        except MatlibError as exc:
            notes.append(f"descriptor {spec.get('name')} ({h}) skipped: {exc}")
    return results


def _usable_specs(
    inputs: list[str], specs: dict[str, dict], results: dict[str, _Featurised], notes: list[str]
) -> tuple[list[str], str]:
    """(specs used, the inputs' kind): the kind the best-covering specs read, and its specs that featurise at least
    MIN_SPEC_COVERAGE of the inputs (the others: a note each)."""
    n = len(inputs)
    coverage = {h: float(r[1].mean()) for h, r in results.items()}
    by_kind: dict[str, list[float]] = {}
    for h, r in results.items():
        by_kind.setdefault(r[3], []).append(coverage[h])
    if not by_kind or max(max(v) for v in by_kind.values()) == 0:
        row = next((i for i in range(n) if inputs[i]), 0)
        raise ValidationError(
            f"none of the library's descriptors ({', '.join(s.get('name', '?') for s in specs.values()) or 'none'}) "
            f"can featurise the inputs (row {row + 1}: {shorten(inputs[row]) if n else ''!r})"
        )
    kind = max(by_kind, key=lambda k: (max(by_kind[k]), np.mean(by_kind[k])))
    used: list[str] = []
    for h, r in results.items():
        name = specs[h].get("name")
        if r[3] != kind:
            notes.append(f"descriptor {name} ({h}) skipped: it featurises {r[3]}s, the inputs look like {kind}s")
        elif coverage[h] < MIN_SPEC_COVERAGE:
            first = next((x for x in r[2] if x), "")
            notes.append(
                f"descriptor {name} ({h}) skipped: only {coverage[h]:.0%} of the inputs could be featurised ({first})"
            )
        else:
            used.append(h)
    return used, kind


def _row_reasons(
    inputs: list[str],
    specs: dict[str, dict],
    results: dict[str, _Featurised],
    used: list[str],
    reasons: list[str | None],
) -> list[str | None]:
    """Each row's reason to be skipped (None: usable), from the target's own reasons, empty inputs and used specs."""
    for i in range(len(inputs)):
        if not inputs[i]:
            reasons[i] = "empty input"
            continue
        for h in used:
            if not results[h][1][i] and reasons[i] is None:
                reasons[i] = f"{specs[h].get('name')}: {results[h][2][i] or 'cannot be featurised'}"
    return reasons


def _check_enough_rows(y: np.ndarray, usable: np.ndarray, skipped: pd.DataFrame, target_column: str) -> None:
    """One-line errors for too few usable rows or a constant target."""
    n_ok = int(usable.sum())
    if n_ok < MIN_ROWS:
        raise ValidationError(
            f"only {n_ok} usable training rows (need at least {MIN_ROWS}; {len(skipped)} skipped"
            + (f", e.g. row {skipped['row'].iloc[0]}: {skipped['reason'].iloc[0]}" if len(skipped) else "")
            + ")"
        )
    yu = y[usable]
    if np.ptp(yu) <= 1e-12 * max(1.0, float(np.abs(yu).max())):
        raise ValidationError(
            f"target column {target_column!r} is constant ({float(yu[0]):.6g}) over the {n_ok} usable rows"
        )


def spec_json(spec: Any) -> dict:
    """A descriptor spec dict from the catalog's JSON text (or a dict)."""
    return json.loads(spec) if isinstance(spec, str) else dict(spec)


def save_target(folder: Path, target: TargetFeatures) -> Path:
    """Write a TargetFeatures to folder (JSON + safetensors + Parquet; no pickle)."""
    from safetensors.numpy import save_file

    from matlib.atomic import atomic_write_json, atomic_write_parquet

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file(
        {h: np.ascontiguousarray(X) for h, X in target.features.items()} or {"_": np.zeros(1, np.float32)},
        str(folder / "features.safetensors"),
    )
    atomic_write_parquet(folder / "skipped_rows.parquet", target.skipped_rows.astype({"input": str, "reason": str}))
    atomic_write_json(
        folder / "target.json",
        {
            "inputs": target.inputs,
            "y": [None if not np.isfinite(v) else float(v) for v in target.y],
            "usable": target.usable.tolist(),
            "specs": target.specs,
            "notes": target.notes,
        },
    )
    return folder


def load_target(folder: Path) -> TargetFeatures:
    """Inverse of save_target."""
    from safetensors.numpy import load_file

    from matlib.atomic import read_json

    folder = Path(folder)
    d = read_json(folder / "target.json")
    feats = load_file(str(folder / "features.safetensors"))
    return TargetFeatures(
        inputs=d["inputs"],
        y=np.array([np.nan if v is None else v for v in d["y"]], dtype=np.float64),
        usable=np.array(d["usable"], dtype=bool),
        features={h: feats[h] for h in d["specs"]},
        specs=d["specs"],
        skipped_rows=read_parquet(folder / "skipped_rows.parquet"),
        notes=list(d["notes"]),
    )
