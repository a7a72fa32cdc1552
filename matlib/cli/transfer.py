"""`matlib transfer ...` sub-commands: fit (screen + refine + save) and predict."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True)


@app.command("fit")
def fit(
    library: str = typer.Option(
        ...,
        "--library",
        help="Library: a folder, a name in the store, a pulled bundle's "
        "name, or a bundle URL / folder (pulled once into the store).",
    ),
    train: Path = typer.Option(..., "--train", help="Training CSV with an input and a target column."),
    input_column: str = typer.Option(..., "--input-column", help="Column with formulas or SMILES."),
    target_column: str = typer.Option(..., "--target-column", help="Numeric target column."),
    out: Path = typer.Option(..., "--out", help="Run folder to write (ranking, report, model)."),
    top_k: int = typer.Option(10, "--top-k", min=1, help="Candidates refined with repeated K-fold CV."),
    seed: int = typer.Option(0, "--seed", help="Seed of the CV splits and learners."),
    folds: int = typer.Option(5, "--folds", min=2, help="K of the repeated K-fold CV."),
    repeats: int = typer.Option(3, "--repeats", min=1, help="Repeats of the K-fold CV."),
    max_overlap: float = typer.Option(
        0.0,
        "--max-overlap",
        min=0.0,
        max=1.0,
        help="Leakage guard: largest fraction of the target's inputs a source model may have been trained on.",
    ),
    allow_leakage: bool = typer.Option(False, "--allow-leakage", help="Keep flagged source models."),
    exclude_dataset: list[str] = typer.Option(
        [], "--exclude-dataset", help="Library dataset to leave out (repeatable)."
    ),
    cv: str = typer.Option(
        "random",
        "--cv",
        help="CV scheme of the choice: random (repeated K-fold) or "
        "extrapolation (folds = blocks of the sorted target: the choice "
        "favours models that predict beyond the training range).",
    ),
) -> None:
    """Screen every library model against a small training table and save the best model by CV."""
    from matlib.library.bundle import resolve_library
    from matlib.store import Store
    from matlib.transfer.console import print_fit_summary
    from matlib.transfer.fit import fit_transfer
    from matlib.transfer.target import read_target_csv

    inputs, y = read_target_csv(train, input_column, target_column)
    lib = resolve_library(Store.default(), library)
    res = fit_transfer(
        lib,
        inputs,
        y,
        out,
        target_column=target_column,
        input_column=input_column,
        top_k=top_k,
        seed=seed,
        folds=folds,
        repeats=repeats,
        max_overlap=max_overlap,
        allow_leakage=allow_leakage,
        target_dataset=tuple(exclude_dataset) or None,
        cv=cv,
    )
    print_fit_summary(res)


@app.command("predict")
def predict(
    model: Path = typer.Option(..., "--model", help="Run folder written by `matlib transfer fit`."),
    input: Path = typer.Option(..., "--input", help="CSV with the input column used at fit time."),
    output: Path = typer.Option(
        ..., "--output", help="CSV to write: the input rows + prediction, uncertainty, reason."
    ),
    input_column: str = typer.Option(None, "--input-column", help="Input column (default: the one used at fit)."),
) -> None:
    """Predict every row of a CSV (in order; unparseable rows get NaN and a reason)."""
    from matlib.transfer.console import print_predict_summary
    from matlib.transfer.predict_csv import predict_csv

    df = predict_csv(model, input, output, input_column)
    print_predict_summary(df, output)
