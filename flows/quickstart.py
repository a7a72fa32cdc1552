"""Flow: the whole pipeline at small scale on the shipped samples (composition only)."""

from __future__ import annotations

from pathlib import Path

import yaml
from prefect import flow

from flows.build_descriptors import build_descriptors_flow
from flows.build_library import build_library_flow
from flows.shotgun_transfer import shotgun_transfer
from matlib.quickstart import SAMPLE_DATASETS, TARGET, library_config, samples_dir
from tasks.quickstart import import_samples, predict_holdout, split_target_task


@flow(name="quickstart")
def quickstart(store_root: str = "matlib-data", models_per_property: int = 8, epochs: int = 40, seed: int = 0) -> dict:
    """Import samples, build descriptors, train a small library, run shotgun transfer, predict held-out rows."""
    root = str(Path(store_root).resolve())
    samples = str(samples_dir())
    refs = import_samples(root, samples)
    tables = {d.name: build_descriptors_flow(refs[d.name], d.descriptor, root) for d in SAMPLE_DATASETS}
    config_path = Path(root) / "configs" / "quickstart-library.yaml"
    config_path.parent.mkdir(parents=True, exist_ok=True)
    config_path.write_text(yaml.safe_dump(library_config(models_per_property, seed, epochs), sort_keys=False))
    library = build_library_flow(str(config_path), None, root)
    run_dir = str(Path(root) / "transfer" / "quickstart-esol")
    split = split_target_task(samples, run_dir + "-inputs")
    transfer = shotgun_transfer(
        library=str(library),
        train=split["train"],
        input_column=TARGET.input_column,
        target_column=TARGET.target_column,
        out=run_dir,
        top_k=5,
        seed=seed,
    )
    holdout = predict_holdout(run_dir, split["train"], split["holdout"])
    return {
        "datasets": refs,
        "descriptors": tables,
        "library": str(library),
        "run_dir": run_dir,
        "transfer": transfer,
        "holdout": holdout,
    }
