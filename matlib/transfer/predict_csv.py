"""Predict a CSV with a saved transfer model: every row kept, in order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from matlib.atomic import atomic_write_text
from matlib.datasets.textfile import read_text_table
from matlib.errors import ValidationError
from matlib.text import names_list, shorten
from matlib.transfer.model import load_model, predict_transfer


def predict_csv(
    run_dir: str | Path, input_csv: str | Path, output_csv: str | Path, input_column: str | None = None
) -> pd.DataFrame:
    """Write input rows + prediction, uncertainty, reason, note to output_csv; returns that table."""
    info = load_model(run_dir)
    col = input_column or info.get("input_column") or "input"
    path = Path(input_csv)
    if not path.exists():
        raise ValidationError(f"input table not found: {path}")
    table = read_text_table(path)
    df = table.frame
    if col not in df.columns:
        raise ValidationError(
            f"{path}: no column {shorten(repr(col))} (columns: {names_list(list(df.columns))}); use --input-column"
        )
    inputs = ["" if table.problem[i] or pd.isna(v) else str(v) for i, v in enumerate(df[col])]
    pred = predict_transfer(info, inputs)
    out = df.copy()
    for c in ("prediction", "uncertainty", "reason", "note"):
        out[c] = pred[c].to_numpy()
    unreadable = np.flatnonzero(~table.ok)
    out.loc[list(out.index[unreadable]), "reason"] = [table.reason(int(i)) for i in unreadable]
    atomic_write_text(output_csv, out.to_csv(index=False))
    return out
