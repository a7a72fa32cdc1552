"""Accuracy: shotgun transfer vs the best direct-learning baseline on small real targets (matlib issue #6).

Library recipe `bench3` (built once with the library room's `build_library`, cached under
out/benchmarks/transfer_accuracy/; measured 1,917 s (32 min) wall on one CPU core with one torch/BLAS thread:
imports and descriptors 2 min, rdkit2d models 5.5, MACCS 3, Morgan 18, magpie 3). Fixed before any test MAE was
seen, to test XenonPy.MDL's premise that more source properties and descriptors give better frozen features:
- QM9: --qm9-rows (10,000) random molecules of the full QM9 (../shared/data/qm9, 130,831 molecules); ten properties:
  HOMO-LUMO gap, HOMO, LUMO, polarisability, heat capacity Cv, dipole moment, electronic spatial extent R2, ZPVE,
  internal energy U0 and log10 of the rotational constant A (heavy-tailed: median 3 GHz, max 80; the one linear
  molecule with A = 0 is left out of that property); three descriptors: rdkit2d, MACCS keys and Morgan counts
  (radius 2, 1,024 bits; hidden layers capped at 256 units: with the default cap of 512, a family of four Morgan
  models trained 10-17x longer than an rdkit2d family in a one-core timing; capped, about 4x).
- Composition: --mp-rows (10,000) random rows (all rows of a smaller table) of eleven tables, magpie: MP formation
  energy, band gap, energy above hull, log10 bulk and log10 shear modulus, magnetisation (mu_B); Castelli perovskite
  heat of formation; AFLOW band gap, energy per atom and Debye temperature; OQMD band gap (matbench / CrabNet tables).
- --models-per-property (8) models per (property, descriptor), random XenonPy-style MLPs (1-5 hidden layers) in
  families of 4 (so depth and activation vary inside a property), --epochs (60) with early stopping (patience 8):
  328 models (240 QM9, 88 composition).
The previous recipe `bench2` (6 QM9 properties x rdkit2d/MACCS, 4 MP tables: 128 models) stays cached with its results.
Measured (5 repeats; test MAE transfer / direct at sizes 25, 50, 100, 200; `taskset -c N env OMP_NUM_THREADS=1
MKL_NUM_THREADS=1 MATLIB_TORCH_THREADS=1 .venv/bin/python benchmarks/transfer_accuracy.py --repeats 5 --targets ...`):
- default (the transfer model averages the top 10 screened candidates), bench3: ESOL 0.981/0.848, 0.757/0.764,
  0.654/0.671, 0.548/0.582; polymer O2 0.665/0.746, 0.596/0.595, 0.517/0.498, 0.470/0.425; MP refractive index
  0.494/0.537, 0.565/0.629, 0.529/0.555, 0.526/0.568: transfer wins 6 of 9 cells at sizes <= 100, 8 of 12 overall.
  The same rule on bench2 also wins 6 of 9 (8 of 12).
- before (ensemble grown greedily while its CV improved, up to 5): 4 of 9 at sizes <= 100 on both bench2 and bench3;
  bench3 then: ESOL 1.044, 0.780, 0.675, 0.556; polymer O2 0.685, 0.635, 0.557, 0.485; MP 0.532, 0.536, 0.548,
  0.536 (direct as above). The broader library alone moved transfer by -0.05 .. +0.02 per cell, and its Morgan
  direct baseline made direct better on polymer O2.
Every library table has the targets' inputs removed (canonical SMILES / composition), so the leakage guard runs at
its strict default and no source model has seen a target input; the MP refractive-index table is not in the library.

Targets: ESOL (logSolubility), polymer O2 permeability (log10 of the Barrer value: the raw values span
2.8e-4 .. 1.9e4), and MP refractive index (matbench_dielectric), a table held out of the library.
For each training size (25, 50, 100, 200) and 5 random repeats, the training rows are drawn at random and
up to 1,000 of the remaining rows are the test set; both sides use the same training and test rows.

Transfer = `fit_transfer(..., include_direct=False)`: every (model, hidden layer) of the library is screened by
exact LOO ridge, the top --top-k (10) frozen layers are refined with ridge on the frozen features (--learners; LightGBM on
frozen features was worse than ridge in exploratory runs), and the final model is the average of the top
--ensemble-size (10) of them in screening order (`matlib.transfer.select`). Every
transfer member's inputs are the frozen hidden features of one library model; nothing is concatenated with raw
descriptors. Target inputs are clamped to +-INPUT_CLIP (5) standard deviations of each source model's training
data before the frozen layers see them, and also as they are: both variants of every (model, layer) are screened and
the better one chosen, as for the ridge penalty (`--input-clips none` is the behaviour before issue #6).
Direct = the best direct learner (ridge, random forest, LightGBM on each raw descriptor the library uses: in bench3
rdkit2d, MACCS and Morgan counts for molecules, magpie for compositions) chosen by the same CV folds, refitted on all
training rows.

    .venv/bin/python benchmarks/transfer_accuracy.py [--data-root ../shared/data] [--sizes 25 50 100 200]
        [--repeats 5] [--targets esol ...] [--gnn 4]   # data root default: ../shared/data next to the repository

With --gnn N, a second library holds the same MLPs plus N graph networks per QM9 property (trained on --gnn-rows
molecules of the QM9 slice), and every cell also fits transfer from it on the same rows: the table then shows
transfer with and without graph sources (transfer_gnn_mae, gnn_helps = repeats where it beat MLP-only transfer).
Measured (reduced recipe: --models-per-property 2 --epochs 20 --qm9-rows 3000 --mp-rows 2000 --gnn 4 --gnn-rows 3000
--gnn-epochs 30 --targets esol polymer_o2 --sizes 25 50 100 --repeats 2 --test 500; 40 GNNs next to 82 MLPs): GNN
candidates entered the top-10 ensemble in 5 of 12 fits; test MAE with / without GNN sources, mean of 2 repeats:
ESOL 1.085/1.085, 0.708/0.719, 0.646/0.639; polymer O2 0.753/0.668, 0.636/0.630, 0.517/0.517: better in 1 cell,
worse in 3, equal in 2 (per fit: better 1, worse 4, equal 7; the large loss is polymer O2 at 25 rows, where 9 GNN
layers screened best by LOO and transferred worse). These GNNs trained 30 epochs on 2,700 molecules.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from matlib.hashing import spec_hash  # noqa: E402
from matlib.transfer.fit import INPUT_CLIPS  # noqa: E402
from data_root import DEFAULT_DATA_ROOT, add_data_root, data_root  # noqa: E402

SHARED = DEFAULT_DATA_ROOT  # replaced by --data-root in main()
OUT = REPO / "out" / "benchmarks" / "transfer_accuracy"

TARGETS = {
    "esol": ("targets/esol.csv", "smiles", "logSolubility", None),
    "polymer_o2": ("targets/polymer_o2_permeability.csv", "SMILES", "o2", "log10"),
    "mp_refractive_index": ("mp/matbench_dielectric.csv", "formula", "target", None),
}


def load_target(name: str) -> tuple[list[str], np.ndarray]:
    """(inputs, y) of a benchmark target (log10 applied where stated)."""
    path, col, tcol, transform = TARGETS[name]
    df = pd.read_csv(SHARED / path)
    y = df[tcol].to_numpy(np.float64)
    if transform == "log10":
        y = np.log10(y)
    return df[col].astype(str).str.strip().tolist(), y


def _slice(src: Path, dest: Path, input_col: str, kind: str, exclude: set[str], n: int, seed: int) -> Path:
    """A random n-row slice of a real table without any input in exclude (canonical keys)."""
    from matlib.transfer.leakage import canonical_inputs

    if dest.exists():
        return dest
    df = pd.read_csv(src)
    df = df.sample(frac=1.0, random_state=seed).head(n * 2)
    keys = canonical_inputs(df[input_col].astype(str).tolist(), kind)
    df = df[[k is not None and k not in exclude for k in keys]].head(n)
    dest.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(dest, index=False)
    return dest


QM9_PROPERTIES = ["HOMO_LUMO_gap_au", "HOMO_au", "LUMO_au", "Polarizability_bohr3", "Heatcapacity_Cv_cal_mol_K",
                  "Dipole_debye", "R2_bohr2", "ZPVE_au", "InternalEnergy_0K_au", "log10_RotA_GHz"]
QM9_DESCRIPTORS = ["rdkit2d", "maccs"]
MORGAN = {"name": "morgan", "params": {"radius": 2, "n_bits": 1024, "counts": True}}
MORGAN_ARCH = {"max_width": 256}  # default cap 512: Morgan models (1024 inputs) train 10-17x longer than rdkit2d
COMPOSITION_TABLES = (("mp_e_form", "mp/matbench_mp_e_form.csv"), ("mp_gap", "mp/matbench_mp_gap.csv"),
                      ("mp_e_hull", "mp/mp_e_hull.csv"), ("mp_log10_k", "mp/matbench_elasticity_log10k_vrh.csv"),
                      ("mp_log10_g", "mp/matbench_elasticity_log10g_vrh.csv"), ("mp_mu_b", "mp/mp_mu_b.csv"),
                      ("castelli_e_form", "mp/matbench_castelli.csv"), ("aflow_egap", "aflow/Egap.csv"),
                      ("aflow_energy_atom", "aflow/energy_atom.csv"),
                      ("aflow_debye", "aflow/ael_debye_temperature.csv"), ("oqmd_gap", "oqmd/oqmd_bandgap.csv"))


GNN_ARCH = {"depth": [1, 4], "width": [32, 64], "decoder_layers": [1, 2], "decoder_width": [32, 64]}


def build_benchmark_library(models_per_property: int, epochs: int, qm9_rows: int, mp_rows: int, gnn: int = 0,
                            gnn_rows: int = 3000, gnn_epochs: int = 30) -> Path:
    """The benchmark library (cached; build_library resumes finished shards).

    gnn > 0: the same library plus `gnn` GNNs per QM9 property (graphs of the first gnn_rows of the QM9 slice;
    families of 4), as a second library whose MLP shards are hard links of the MLP-only library's (same jobs,
    same shard names), so only the GNNs are trained.
    """
    from matlib.library import build_library
    from matlib.store import Store
    from matlib.transfer.leakage import canonical_inputs

    data = OUT / "data"
    mol_ex = set(canonical_inputs(load_target("esol")[0] + load_target("polymer_o2")[0], "molecule"))
    comp_ex = set(canonical_inputs(load_target("mp_refractive_index")[0], "composition"))
    qm9 = _slice(SHARED / "qm9" / "qm9.csv.gz", data / f"qm9-{qm9_rows}.csv", "smiles", "molecule", mol_ex, qm9_rows, 0)
    qm9_full = data / f"qm9-{qm9_rows}-log10rota.csv"  # same rows plus log10 of the rotational constant A
    if not qm9_full.exists():
        df = pd.read_csv(qm9)
        rot = df["RotA_GHz"].to_numpy(np.float64)
        df["log10_RotA_GHz"] = np.where(rot > 0, np.log10(np.where(rot > 0, rot, 1.0)), np.nan)  # 0 (linear): missing
        df.to_csv(qm9_full, index=False)
    qm9_import = {"file": str(qm9_full), "input_column": "smiles", "kind": "molecule", "target_columns": QM9_PROPERTIES}
    qm9_name = f"qm9_bench3_{qm9_rows}"
    groups = [{"dataset": qm9_name, "descriptors": QM9_DESCRIPTORS, "properties": QM9_PROPERTIES,
               "models_per_property": models_per_property, "import": qm9_import},
              {"dataset": qm9_name, "descriptors": [MORGAN], "properties": QM9_PROPERTIES,
               "models_per_property": models_per_property, "architecture": MORGAN_ARCH, "import": qm9_import}]
    for name, file in COMPOSITION_TABLES:
        path = _slice(SHARED / file, data / f"{name}-{mp_rows}.csv", "formula", "composition", comp_ex, mp_rows, 0)
        df = pd.read_csv(path)
        if "target" in df.columns:
            df.rename(columns={"target": name}).to_csv(path, index=False)
        groups.append({"dataset": f"{name}_bench{mp_rows}", "descriptors": ["magpie"], "properties": [name],
                       "models_per_property": models_per_property,
                       "import": {"file": str(path), "input_column": "formula", "kind": "composition",
                                  "target_columns": [name]}})
    name = f"bench3-{models_per_property}-{epochs}-{qm9_rows}-{mp_rows}"
    if gnn > 0:
        groups.append({"model": "gnn", "dataset": qm9_name, "properties": QM9_PROPERTIES, "import": qm9_import,
                       "models_per_property": gnn, "family_size": 4, "max_rows": gnn_rows, "architecture": GNN_ARCH,
                       "training": {"epochs": gnn_epochs, "batch_size": 64, "patience": 6, "lr_patience": 3}})
        _link_finished(Store(OUT / "store").library(name), Store(OUT / "store").library(f"{name}-gnn{gnn}-{gnn_rows}"))
        name = f"{name}-gnn{gnn}-{gnn_rows}"
    cfg = {"name": name, "seed": 0, "shard_size": 64,
           "family_size": 4, "training": {"epochs": epochs, "batch_size": 128, "patience": 8}, "groups": groups}
    return Path(build_library(Store(OUT / "store"), cfg))


def _link_finished(src: Path, dest: Path) -> None:
    """Hard-link src's finished shards, catalog parts and training tables into dest (the build then skips them)."""
    for sub in ("shards", "parts", "data"):
        if not (src / sub).exists():
            continue
        (dest / sub).mkdir(parents=True, exist_ok=True)
        for f in (src / sub).iterdir():
            if not (dest / sub / f.name).exists():
                (dest / sub / f.name).hardlink_to(f)


def direct_test_mae(res, X_train: dict, X_test: dict, y_train: np.ndarray, y_test: np.ndarray, seed: int) -> tuple[float, str]:
    """Test MAE of the best direct learner by CV (refitted on all training rows)."""
    from matlib.transfer.learners import get_learner

    best = res.baselines.iloc[0]
    h = best["candidate"].rsplit(":", 1)[1]
    lr = get_learner(best["learner"])
    state = lr.fit(X_train[h], y_train, seed)
    return float(np.abs(lr.predict(state, X_test[h]) - y_test).mean()), f"{best['learner']}:{best['candidate'].split(':')[1]}"


_FEATURES: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}


def target_features(name: str, inputs: list[str], spec: dict) -> tuple[np.ndarray, np.ndarray]:
    """(X float64, ok) of every input of a target under a descriptor spec, computed once per run."""
    from matlib.descriptors import get_featurizer

    key = (name, json.dumps(spec, sort_keys=True))
    if key not in _FEATURES:
        r = get_featurizer(spec).featurize(inputs)
        _FEATURES[key] = (np.asarray(r.X, dtype=np.float64), np.asarray(r.ok, dtype=bool))
    return _FEATURES[key]


def transfer_test_mae(lib: Path, out: Path, name: str, inputs, y, tr, te, rep: int, args):
    """(fit result, test predictions, test MAE over the rows it predicts) of transfer from one library."""
    from matlib.transfer import fit_transfer, predict_transfer

    shutil.rmtree(out, ignore_errors=True)
    res = fit_transfer(lib, [inputs[i] for i in tr], y[tr], out, target_column=name, seed=rep, top_k=args.top_k,
                       repeats=args.cv_repeats, include_direct=False, learners=tuple(args.learners), report=False,
                       ensemble_size=args.ensemble_size, input_clips=args.input_clips)
    pred = predict_transfer(out, [inputs[i] for i in te])
    ok = pred["prediction"].notna().to_numpy()
    return res, ok, float(np.abs(pred["prediction"].to_numpy()[ok] - y[te][ok]).mean())


def run_cell(lib: Path, name: str, inputs, y, size: int, rep: int, args, gnn_lib: Path | None = None) -> dict:
    """One (target, size, repeat): fit transfer + direct on the same training rows, score on the test rows
    (and transfer from the library with GNN sources too, when given)."""
    rng = np.random.default_rng([rep, size, len(name)])
    perm = rng.permutation(len(y))
    tr, te = perm[:size], perm[size:size + args.test]
    out = OUT / "runs" / args.run_tag / f"{name}-{size}-{rep}"  # per settings: runs with other settings may be going
    t = time.perf_counter()
    res, ok, transfer_mae = transfer_test_mae(lib, out, name, inputs, y, tr, te, rep, args)
    extra = {}
    if gnn_lib is not None:
        g_res, g_ok, g_mae = transfer_test_mae(gnn_lib, out.with_name(out.name + "-gnn"), name, inputs, y, tr, te, rep,
                                               args)
        members = g_res.selection.members  # "candidate|learner"
        gnn_ids = set(g_res.ranking.loc[g_res.ranking["descriptor"] == "molgraph", "candidate"])
        same = bool((g_ok == ok).all())
        extra = {"transfer_gnn_mae": g_mae if same else float("nan"), "gnn_members": sum(m.split("|")[0] in gnn_ids for m in members),
                 "gnn_best_rank": int(g_res.ranking.loc[g_res.ranking["descriptor"] == "molgraph", "rank"].min())
                 if gnn_ids else -1}
    # direct learner: same usable training rows as the fit, test rows every used descriptor parses
    use = np.flatnonzero(res.target.usable)
    X_train = {h: X.astype(np.float64) for h, X in res.target.features.items()}
    X_test = {}
    te_ok = ok.copy()
    for h, spec in res.target.specs.items():
        X_all, ok_all = target_features(name, inputs, spec)
        X_test[h] = X_all[te]
        te_ok &= ok_all[te]
    assert te_ok.sum() == ok.sum(), "transfer and direct must be scored on the same test rows"
    d_mae, d_name = direct_test_mae(res, X_train, {h: X[te_ok] for h, X in X_test.items()}, y[tr][use], y[te][te_ok], rep)
    return {"target": name, "size": size, "repeat": rep, "n_test": int(ok.sum()), "transfer_mae": transfer_mae,
            "direct_mae": d_mae, "transfer_cv_mae": res.selection.cv.mae,
            "direct_cv_mae": float(res.baselines.iloc[0]["cv_mae"]), "transfer_members": "; ".join(res.selection.members),
            "direct_best": d_name, "seconds": time.perf_counter() - t, **extra}


def main() -> None:
    """Build the library, run every cell, print the side-by-side table."""
    ap = argparse.ArgumentParser()
    add_data_root(ap)
    ap.add_argument("--sizes", type=int, nargs="+", default=[25, 50, 100, 200])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--targets", nargs="+", default=list(TARGETS))
    ap.add_argument("--test", type=int, default=1000)
    ap.add_argument("--top-k", type=int, default=10)
    ap.add_argument("--ensemble-size", type=int, default=10)
    ap.add_argument("--input-clips", nargs="+", default=["none" if c is None else f"{c:g}" for c in INPUT_CLIPS],
                    help="ways of feeding targets to frozen layers: none = as is, c = clamped to +-c source sds")
    ap.add_argument("--cv-repeats", type=int, default=1)
    ap.add_argument("--learners", nargs="+", default=["ridge"])
    ap.add_argument("--models-per-property", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--qm9-rows", type=int, default=10000, help="QM9 rows in the library (from the full QM9)")
    ap.add_argument("--mp-rows", type=int, default=10000, help="rows of each MP table in the library")
    ap.add_argument("--gnn", type=int, default=0, help="GNNs per QM9 property in a second library (0: MLP-only run)")
    ap.add_argument("--gnn-rows", type=int, default=3000, help="QM9 molecules the GNNs train on")
    ap.add_argument("--gnn-epochs", type=int, default=30)
    ap.add_argument("--build-only", action="store_true", help="build the library and stop")
    ap.add_argument("--report-only", action="store_true", help="print the table from the cells already run")
    args = ap.parse_args()
    args.input_clips = tuple(None if c.lower() == "none" else float(c) for c in args.input_clips)
    global SHARED
    SHARED = data_root(args.data_root)

    t = time.perf_counter()
    lib = build_benchmark_library(args.models_per_property, args.epochs, args.qm9_rows, args.mp_rows)
    print(f"library {lib} ready in {time.perf_counter() - t:.0f}s", flush=True)
    gnn_lib = None
    if args.gnn > 0:
        t = time.perf_counter()
        gnn_lib = build_benchmark_library(args.models_per_property, args.epochs, args.qm9_rows, args.mp_rows, args.gnn,
                                          args.gnn_rows, args.gnn_epochs)
        print(f"library with GNN sources {gnn_lib} ready in {time.perf_counter() - t:.0f}s", flush=True)
    if args.build_only:
        return
    settings = [args.test, args.top_k, f"mean{args.ensemble_size}", args.cv_repeats, sorted(args.learners), list(args.input_clips)]
    if gnn_lib is not None:
        settings.append(gnn_lib.name)
    args.run_tag = spec_hash(settings, 8)
    results_path = OUT / f"results-{lib.name}-{args.run_tag}.jsonl"
    print(f"results {results_path.name}: test/top_k/ensemble/cv_repeats/learners/input_clips = {settings}", flush=True)
    done = {}
    if results_path.exists():
        for line in results_path.read_text().splitlines():
            r = json.loads(line)
            done[(r["target"], r["size"], r["repeat"])] = r
    data = {name: load_target(name) for name in args.targets}
    for rep in range(args.repeats):  # repeats outermost: a partial run still covers every cell
        for name in args.targets:
            inputs, y = data[name]
            for size in args.sizes:
                key = (name, size, rep)
                if key not in done and not args.report_only:
                    done[key] = run_cell(lib, name, inputs, y, size, rep, args, gnn_lib)
                    with results_path.open("a") as f:
                        f.write(json.dumps(done[key]) + "\n")
                if key not in done:
                    continue
                r = done[key]
                gnn = (f"  transfer+GNN {r['transfer_gnn_mae']:.4f} ({r['gnn_members']} GNN members, best GNN rank "
                       f"{r['gnn_best_rank']})" if "transfer_gnn_mae" in r else "")
                print(f"{name:20s} n={size:3d} rep={rep}  transfer {r['transfer_mae']:.4f}{gnn}  direct {r['direct_mae']:.4f}"
                      f"  ({r['seconds']:.0f}s; {r['direct_best']})", flush=True)
    df = pd.DataFrame([done[k] for k in done if k[0] in args.targets and k[1] in args.sizes and k[2] < args.repeats])
    if df.empty:
        print("no cells run yet")
        return
    table = df.groupby(["target", "size"]).agg(
        transfer_mae=("transfer_mae", "mean"), transfer_sd=("transfer_mae", "std"),
        direct_mae=("direct_mae", "mean"), direct_sd=("direct_mae", "std"),
        transfer_wins=("transfer_mae", lambda s: int((s.to_numpy() < df.loc[s.index, "direct_mae"].to_numpy()).sum())),
        repeats=("repeat", "count"))
    table["winner"] = np.where(table["transfer_mae"] < table["direct_mae"], "transfer", "direct")
    if "transfer_gnn_mae" in df:
        g = df.groupby(["target", "size"])
        table["transfer_gnn_mae"] = g["transfer_gnn_mae"].mean()
        table["gnn_helps"] = g[["transfer_gnn_mae", "transfer_mae"]].apply(
            lambda d: int((d["transfer_gnn_mae"] < d["transfer_mae"]).sum()))
        table["gnn_members"] = g["gnn_members"].mean()
    pd.set_option("display.width", 200)
    print("\nTest MAE (mean and sd over repeats); transfer_wins = repeats where transfer beat direct")
    print(table.round(4).to_string())
    by_size = table.groupby(level="size").agg(cells_won=("winner", lambda w: int((w == "transfer").sum())),
                                              cells=("winner", "size"), repeats_won=("transfer_wins", "sum"),
                                              repeats=("repeats", "sum"))
    print("\nWins per training size (cells = targets; repeats = single (target, repeat) comparisons)")
    print(by_size.to_string())
    small = table[table.index.get_level_values("size") <= 100]
    print(f"\ntransfer wins {int((small['winner'] == 'transfer').sum())} of {len(small)} cells at sizes <= 100; "
          f"{int((table['winner'] == 'transfer').sum())} of {len(table)} overall")


if __name__ == "__main__":
    main()
