"""Scale (issue #19): build the medium library, screen a real target against it, and time the flow's overhead.

Stages (each one's figures are kept in out/benchmarks/library_scale/<stage>.json; a stage already done is
reported from there, so a rerun resumes where the last one stopped):

1. `data`: the store (--home, default out/benchmarks/library_scale/store) gets the crawled datasets the config
   names (QM9, MP, OQMD, AFLOW) from an offline mirror: --mirror DIR, or one built from --data-root's public
   tables with scripts/build_mirror.py --from-shared (the same crawlers, against their services' documented
   formats).
2. `build`: `matlib library build --config configs/library-medium.yaml` through the Prefect flow, as a user runs
   it, on a Dask LocalCluster of one worker per core. Every process of the run (the CLI with the flow, the Dask
   scheduler and nannies; Prefect's server; the Dask worker processes) is sampled: wall time, models/hour, CPU
   utilisation, peak RSS each.
   --crash-after S kills the whole process tree S seconds in (SIGKILL, as a crash would), then runs the same
   command again, which trains only the unfinished shards.
3. `fit`: `matlib transfer fit` on 100 random rows of a real target (--target esol: ESOL solubility, or
   polymer_o2) against the medium library and against sub-libraries of about 1k and 5k models drawn from it
   (`matlib library subset`): candidates screened, wall time and peak RSS (the screen streams shards, so peak
   memory should not grow with the library).
4. `overhead`: the medium config's shards of the first descriptor of every group (--overhead-models per property,
   default 56: one shard each, 26 shards, 1,456 models: the same per-shard work as the medium build, so the same
   per-task overhead, while the flow's fixed costs weigh more than at full size) built through the Prefect flow and
   directly on the Dask cluster (`--no-prefect`), alternating, each into its own library; prints the flow's
   overhead as a fraction of the direct build's wall time.
5. `accuracy`: what the size buys: random-split cells of the transfer_accuracy panel (--targets, --sizes,
   --repeats) fitted from the ~1k and ~5k subsets and the whole library, next to the independent forest. Each
   target's own property is left out of the library by the leakage guard (HELD_OUT), and the overlap guard drops
   any source model trained on one of the target's training inputs.

    .venv/bin/python benchmarks/library_scale.py [--data-root ../shared/data | --mirror DIR] [--home DIR]
        [--stages data build fit overhead accuracy] [--crash-after 600] [--target esol] [--overhead-repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from data_root import add_data_root, data_root
from proc_monitor import RunFigures, run_monitored

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "out" / "benchmarks" / "library_scale"
MATLIB = str(Path(sys.executable).parent / "matlib")
SOURCES = ("qm9", "mp", "oqmd", "aflow")


def _record(stage: str) -> Path:
    return OUT / f"{stage}.json"


def _saved(stage: str) -> dict[str, Any] | None:
    path = _record(stage)
    return json.loads(path.read_text()) if path.exists() else None


def _save(stage: str, record: dict[str, Any]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    _record(stage).write_text(json.dumps(record, indent=1))


def _env(home: Path, mirror: str | None) -> dict[str, str]:
    env = {**os.environ, "MATLIB_HOME": str(home)}
    if mirror:
        env["MATLIB_MIRROR"] = mirror
    return env


def stage_data(args: argparse.Namespace) -> None:
    """Crawl the four datasets into the store from a mirror (built from --data-root when none is given)."""
    mirror = args.mirror
    if mirror is None:
        mirror = str(OUT / "mirror")
        if not (Path(mirror) / "mirror.json").exists():
            root = data_root(args.data_root)
            print(f"building an offline mirror from {root} (scripts/build_mirror.py --from-shared)")
            subprocess.run(
                [sys.executable, str(REPO / "scripts" / "build_mirror.py"), "--from-shared", str(root), mirror],
                check=True,
            )
    args.mirror = mirror
    have = subprocess.run([MATLIB, "data", "ls", "--home", str(args.home)], capture_output=True, text=True).stdout
    for source in SOURCES:
        if f"* {source}@" in have:
            continue
        figs = run_monitored(
            [MATLIB, "data", "refresh", "--source", source, "--home", str(args.home)],
            env=_env(args.home, mirror),
            log=str(OUT / f"refresh-{source}.log"),
        )
        print(f"crawled {source}: " + figs.lines()[0])
        if figs.returncode:
            sys.exit(f"error: refresh of {source} failed (see {OUT / f'refresh-{source}.log'})")


def _library_counts(home: Path, name: str) -> dict[str, Any]:
    """Models, good models, properties and (property, descriptor) pairs of a finished library."""
    import pandas as pd

    lib = home / "library" / name
    manifest = json.loads((lib / "manifest.json").read_text())
    cat = pd.read_parquet(lib / "catalog.parquet")
    return {
        "models": int(manifest["n_models"]),
        "ok": int(manifest["n_ok"]),
        "properties": int(cat["property"].nunique()),
        "property_descriptor_pairs": int(cat.groupby(["property", "descriptor"]).ngroups),
        "shards": len(manifest["shards"]),
    }


def _print_run(title: str, figs: RunFigures) -> None:
    print(title)
    for line in figs.lines():
        print("  " + line)


def stage_build(args: argparse.Namespace) -> None:
    """Build (or resume) the medium library through the flow, every process monitored."""
    saved = _saved("build")
    if saved and (args.home / "library" / saved["name"] / "manifest.json").exists():
        print(f"build: reported from {_record('build')} (the library is built; delete that file to rebuild)")
        _report_build(saved)
        return
    name = _config_name(args.config)
    cmd = [MATLIB, "library", "build", "--config", str(args.config)]
    env = _env(args.home, args.mirror)
    runs = []
    log = str(OUT / "build.log")
    OUT.mkdir(parents=True, exist_ok=True)
    if args.crash_after:
        figs = run_monitored(cmd, env=env, log=log, kill_after=args.crash_after)
        _print_run(f"build killed after {args.crash_after} s (SIGKILL to every process, as in a crash):", figs)
        runs.append({"kind": "killed", **figs.to_dict(), "shards_done": _shards_done(args.home, name)})
    figs = run_monitored(cmd, env=env, log=log)
    if figs.returncode:
        sys.exit(f"error: the build failed (rc {figs.returncode}); see {log}")
    runs.append({"kind": "resumed" if runs else "full", **figs.to_dict()})
    record = {"name": name, "config": str(args.config), "runs": runs, **_library_counts(args.home, name)}
    _save("build", record)
    _report_build(record)


def _config_name(config: Path) -> str:
    import yaml

    return str(yaml.safe_load(config.read_text())["name"])


def _shards_done(home: Path, name: str) -> int:
    return len(list((home / "library" / name / "parts").glob("*.json")))


def _report_build(rec: dict[str, Any]) -> None:
    wall = sum(r["wall_s"] for r in rec["runs"])
    cpu = sum(r["cpu_s"] for r in rec["runs"])
    cores = rec["runs"][-1]["cores"]
    print(
        f"medium library {rec['name']}: {rec['models']} models ({rec['ok']} good) over {rec['properties']} properties "
        f"({rec['property_descriptor_pairs']} property x descriptor pairs), {rec['shards']} shards"
    )
    print(
        f"  build wall {wall / 60:.1f} min in {len(rec['runs'])} run(s) -> {rec['models'] / (wall / 3600):,.0f} "
        f"models/hour; CPU utilisation {cpu / (wall * cores):.0%} of {cores} cores"
    )
    for r in rec["runs"]:
        extra = f", {r['shards_done']} shards done when killed" if r["kind"] == "killed" else ""
        print(
            f"  run ({r['kind']}): wall {r['wall_s'] / 60:.1f} min, utilisation {r['utilisation']:.0%}, other load "
            f"{r['other_load_cores']:.2f} cores{extra}"
        )
        for p in sorted(r["processes"], key=lambda p: -p["cpu_s"]):
            if p["cpu_s"] >= 1 or p["peak_rss_mb"] >= 100:
                cpu, rss = p["cpu_s"], p["peak_rss_mb"]
                print(f"    pid {p['pid']:>7}  CPU {cpu:8.1f} s  peak RSS {rss:7.0f} MB  {p['command']}")


def _subset(args: argparse.Namespace, parent: str, n: int) -> str:
    """The library name of a subset of about n models of parent (drawn once, then reused)."""
    name = f"{parent}-{n // 1000}k"
    if not (args.home / "library" / name / "manifest.json").exists():
        cmd = [MATLIB, "library", "subset", parent, "--models", str(n), "--out", name]
        subprocess.run(cmd, env=_env(args.home, None), check=True, capture_output=True)
    return name


def _target_csv(args: argparse.Namespace) -> tuple[Path, str, str]:
    """100 random rows (seed 0) of the real target, as a CSV a user would pass to `transfer fit`."""
    import pandas as pd

    file, x, y = TARGETS[args.target]
    df = pd.read_csv(data_root(args.data_root) / "targets" / file)
    path = OUT / "fit" / f"{args.target}-{args.fit_rows}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    df.sample(n=args.fit_rows, random_state=0).to_csv(path, index=False)
    return path, x, y


TARGETS = {
    "esol": ("esol.csv", "smiles", "logSolubility"),
    "polymer_o2": ("polymer_o2_permeability.csv", "SMILES", "o2"),
}


def stage_fit(args: argparse.Namespace) -> None:
    """`matlib transfer fit` on a 100-row real target against subsets of ~1k and ~5k models and the whole library."""
    build = _saved("build")
    if build is None:
        sys.exit("error: run the build stage first")
    csv, x, y = _target_csv(args)
    results = (_saved("fit") or {}).get("runs", {})
    names = [_subset(args, build["name"], n) for n in args.subsets] + [build["name"]]
    for name in names:
        if name in results:
            continue
        out = OUT / "fit" / f"run-{name}"
        cmd = [MATLIB, "transfer", "fit", "--library", name, "--train", str(csv), "--input-column", x]
        cmd += ["--target-column", y, "--out", str(out)]
        figs = run_monitored(cmd, env=_env(args.home, None), log=str(OUT / "fit" / f"{name}.log"))
        if figs.returncode:
            sys.exit(f"error: transfer fit against {name} failed; see {OUT / 'fit' / f'{name}.log'}")
        run = json.loads((out / "run.json").read_text())
        lib = json.loads((args.home / "library" / name / "manifest.json").read_text())
        results[name] = {
            "library_models": lib["n_models"],
            "candidates": run["n_candidates"],
            "timings": run["timings"],
            "nested_cv_mae": run.get("nested_cv_mae"),
            "chosen": run.get("chosen_option") or run.get("chosen"),
            **figs.to_dict(),
        }
        _save("fit", {"target": args.target, "rows": args.fit_rows, "runs": results})
    print(f"transfer fit on {args.fit_rows} rows of {args.target} (one process; peak RSS of the largest process):")
    for name in names:
        r = results[name]
        t = r["timings"]
        print(
            f"  {name:>14}: {r['library_models']:>6} models, {r['candidates']:>6} candidates screened, wall "
            f"{r['wall_s']:6.1f} s (screen {t.get('screen', 0):.1f} s, refine {t.get('refine', 0):.1f} s), peak RSS "
            f"{r['peak_rss_mb']:6.0f} MB; nested-CV MAE {_nested(r['nested_cv_mae'])}, chosen {r['chosen']!r}"
        )


def _nested(nested: dict[str, float] | None) -> str:
    """The nested-CV MAE of the chosen option, the best direct learner and the best transfer option."""
    nested = nested or {}
    return ", ".join(f"{k} {nested[k]:.3f}" for k in ("chosen", "direct", "transfer") if nested.get(k) is not None)


QUIET_LOAD = 0.1  # cores of other work on the machine above which an overhead run is not comparable


def stage_overhead(args: argparse.Namespace) -> None:
    """The same shards built through the Prefect flow and directly on Dask (--no-prefect), alternating."""
    import yaml

    cfg = yaml.safe_load(args.config.read_text())
    saved = _saved("overhead") or {"runs": []}
    runs = saved["runs"]
    for rep in range(args.overhead_repeats):
        for how in ("flow", "direct"):
            if any(r["how"] == how and r["repeat"] == rep for r in runs):
                continue
            name = f"{cfg['name']}-overhead-{how}-{rep}"
            derived = {**cfg, "name": name}
            derived["groups"] = [
                {**g, "models_per_property": args.overhead_models, "descriptors": g["descriptors"][:1]}
                for g in cfg["groups"]
            ]
            path = OUT / "overhead" / f"{name}.yaml"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(yaml.safe_dump(derived, sort_keys=False))
            cmd = [MATLIB, "library", "build", "--config", str(path)] + (["--no-prefect"] if how == "direct" else [])
            figs = run_monitored(cmd, env=_env(args.home, args.mirror), log=str(OUT / "overhead" / f"{name}.log"))
            if figs.returncode:
                sys.exit(f"error: the {how} build failed; see {OUT / 'overhead' / f'{name}.log'}")
            runs.append({"how": how, "repeat": rep, "name": name, **_library_counts(args.home, name), **figs.to_dict()})
            _save("overhead", {"runs": runs})
    print(f"flow vs direct, {runs[0]['models']} models in {runs[0]['shards']} shards (one per property):")
    for r in runs:
        mark = "  (disturbed: left out)" if r["other_load_cores"] > QUIET_LOAD else ""
        print(
            f"  {r['how']:>6} #{r['repeat']}: wall {r['wall_s']:.1f} s, "
            f"other load {r['other_load_cores']:.2f} cores{mark}"
        )
    quiet = [r for r in runs if r["other_load_cores"] <= QUIET_LOAD]
    flow = [r["wall_s"] for r in quiet if r["how"] == "flow"]
    direct = [r["wall_s"] for r in quiet if r["how"] == "direct"]
    if not flow or not direct:
        print("  no undisturbed flow and direct run yet: run the stage again with more --overhead-repeats")
        return
    over = (sum(flow) / len(flow)) / (sum(direct) / len(direct)) - 1
    print(
        f"  flow overhead: {over:+.1%} of the direct build's wall time ({len(flow)} flow and {len(direct)} direct runs"
        f" with other load <= {QUIET_LOAD} cores; target < 5%)"
    )


# accuracy stage: benchmark target -> the library property it is (left out of the fit by the leakage guard's
# same-property rule; the overlap guard also drops every model trained on one of the target's training inputs)
HELD_OUT = {
    "esol": "logSolubility",
    "polymer_o2": "o2",
    "mp_refractive_index": "n",
    "castelli_e_form": "castelli_e_form",
    "aflow_debye": "ael_debye_temperature",
    "mp_shear_modulus": "shear_modulus_vrh",
    "mp_elastic_anisotropy": "universal_anisotropy",
    "mp_mu_b": "total_magnetization",
}


def _accuracy_cell(lib: Path, target: str, size: int, rep: int, args: argparse.Namespace) -> dict[str, Any]:
    """Test MAE of matlib fitted from lib on one random split of a panel target (the transfer_accuracy cells)."""
    import numpy as np
    import transfer_accuracy as ta

    inputs, y = ta.load_target(target)
    tr, te = ta.split_rows(y, size, rep, "random", args.test, len(target))
    out = OUT / "accuracy" / "runs" / f"{lib.name}-{target}-{size}-{rep}"
    fit_args = argparse.Namespace(top_k=args.top_k, cv_repeats=1, mp_rows=0)  # mp_rows 0: no bench3 holdout name
    res, _, pred, seconds = ta.fit_and_predict(
        lib, out, target, inputs, y, tr, te, rep, "random", fit_args, target_column=HELD_OUT[target]
    )
    ok = np.isfinite(pred)
    return {
        "library": lib.name,
        "target": target,
        "size": size,
        "repeat": rep,
        "matlib_mae": float(np.abs(pred[ok] - y[te][ok]).mean()),
        "rf_mae": ta.rf_test_mae(target, inputs, y, tr, te[ok], rep),
        "chosen": res.selection.option,
        "nested_chosen": res.selection.nested.get("chosen"),
        "nested_direct": res.selection.nested.get("direct"),
        "nested_transfer": res.selection.nested.get("transfer"),
        "candidates": int(((res.ranking["kind"] == "transfer") & ~res.ranking["leak"]).sum()),
        "seconds": round(seconds, 1),
    }


def stage_accuracy(args: argparse.Namespace) -> None:
    """What the library's size buys: the accuracy panel's random-split cells fitted from ~1k, ~5k and all models."""
    import pandas as pd
    import transfer_accuracy as ta

    build = _saved("build")
    if build is None:
        sys.exit("error: run the build stage first")
    ta.SHARED = data_root(args.data_root)
    os.environ["MATLIB_HOME"] = str(args.home)
    libs = [_subset(args, build["name"], n) for n in args.subsets] + [build["name"]]
    path = OUT / "accuracy" / "cells.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    done = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    seen = {(c["library"], c["target"], c["size"], c["repeat"]) for c in done}
    for target in args.targets:
        for size in args.sizes:
            for rep in range(args.repeats):
                for name in libs:
                    if (name, target, size, rep) in seen:
                        continue
                    cell = _accuracy_cell(args.home / "library" / name, target, size, rep, args)
                    print(json.dumps(cell), flush=True)
                    with path.open("a") as f:
                        f.write(json.dumps(cell) + "\n")
                    done.append(cell)
    df = pd.DataFrame(done)
    df = df[df["target"].isin(args.targets) & df["size"].isin(args.sizes) & df["library"].isin(libs)]
    df["models"] = df["library"].map(
        {n: json.loads((args.home / "library" / n / "manifest.json").read_text())["n_models"] for n in libs}
    )
    table = df.pivot_table(index=["target", "size"], columns="models", values="matlib_mae", aggfunc="mean")
    table["rf"] = df.groupby(["target", "size"])["rf_mae"].mean()
    pd.set_option("display.width", 200)
    print("\ntest MAE by library size (columns: models in the library; rf: the independent forest)")
    print(table.round(4).to_string())
    for n in sorted(df["models"].unique()):
        part = table[n] / table["rf"]
        wins = int((part < 1).sum())
        print(f"  {n:>6} models: beats the forest in {wins}/{len(part)}, median ratio {part.median():.3f}")


def main() -> None:
    global OUT
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_root(ap)
    ap.add_argument("--mirror", default=None, help="offline mirror folder or URL (default: built from --data-root)")
    ap.add_argument("--home", type=Path, default=None, help="matlib store of the run (default: OUT/store)")
    ap.add_argument("--out", type=Path, default=OUT, help="folder of the stage records, logs and runs")
    ap.add_argument("--config", type=Path, default=REPO / "configs" / "library-medium.yaml")
    ap.add_argument("--stages", nargs="+", default=["data", "build", "fit", "overhead", "accuracy"])
    ap.add_argument("--crash-after", type=float, default=None, help="kill the first build after S seconds, resume")
    ap.add_argument("--target", choices=list(TARGETS), default="esol")
    ap.add_argument("--fit-rows", type=int, default=100)
    ap.add_argument("--subsets", type=int, nargs="*", default=[1000, 5000], help="sub-library sizes to fit against")
    ap.add_argument("--overhead-models", type=int, default=56, help="models per property x descriptor (overhead)")
    ap.add_argument("--overhead-repeats", type=int, default=1)
    ap.add_argument("--targets", nargs="+", default=list(HELD_OUT), choices=list(HELD_OUT), help="accuracy panel")
    ap.add_argument("--sizes", type=int, nargs="+", default=[50])
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--test", type=int, default=300)
    ap.add_argument("--top-k", type=int, default=5)
    args = ap.parse_args()
    OUT = args.out.resolve()
    args.home = (args.home or OUT / "store").resolve()
    t0 = time.perf_counter()
    for stage in args.stages:
        globals()[f"stage_{stage}"](args)
    print(f"done in {(time.perf_counter() - t0) / 60:.1f} min")


if __name__ == "__main__":
    main()
