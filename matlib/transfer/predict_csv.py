"""Predict a CSV with a saved transfer model: every row kept, in order."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from matlib.atomic import atomic_write_text
from matlib.errors import ValidationError
from matlib.transfer.model import load_model, predict_transfer


def predict_csv(run_dir: str | Path, input_csv: str | Path, output_csv: str | Path,
                input_column: str | None = None) -> pd.DataFrame:
    """Write input rows + prediction, uncertainty, reason, note to output_csv; returns that table."""
    info = load_model(run_dir)
    col = input_column or info.get("input_column") or "input"
    path = Path(input_csv)
    if not path.exists():
        raise ValidationError(f"input table not found: {path}")
    try:
        df = pd.read_csv(path, dtype={col: str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ValidationError(f"{path}: cannot read as CSV ({str(exc).splitlines()[0]})") from None
    if col not in df.columns:
        raise ValidationError(f"{path}: no column {col!r} (columns: {', '.join(map(str, df.columns))}); "
                              "use --input-column")
    pred = predict_transfer(info, df[col].tolist())
    out = df.copy()
    for c in ("prediction", "uncertainty", "reason", "note"):
        out[c] = pred[c].to_numpy()
    atomic_write_text(output_csv, out.to_csv(index=False))
    return out
