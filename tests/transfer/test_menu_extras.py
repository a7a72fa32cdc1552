"""Source predictions as features and multi-source stacks (issue #17, item 2): ordinary menu options, chosen by
(nested) CV only, saved and predicted like any other model, reported in the honest nested-CV lines."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from matlib.library import Library
from matlib.transfer import fit_transfer, predict_transfer
from matlib.transfer.cv import repeated_kfold
from matlib.transfer.direct import raw_features
from matlib.transfer.model import load_model
from matlib.transfer.select import select_model
from matlib.transfer.source_features import MODELS_PER_GROUP
from matlib.transfer.source_features import OPTION as SOURCE
from matlib.transfer.stacks import OPTION as STACK
from matlib.transfer.stacks import nested_stack_oof
from tests.transfer.conftest import FAST, esol_rows


def property_means(library, smiles: list[str]) -> dict[str, np.ndarray]:
    """Per QM9 property of the library, the mean prediction of its first MODELS_PER_GROUP models (by id), each
    loaded on its own as a torch module (not through the code under test)."""
    from matlib.transfer.target import spec_json

    lib = Library(library)
    cat = lib.catalog[(lib.catalog["status"] == "ok") & (lib.catalog["descriptor"] == "maccs")]
    X = torch.as_tensor(raw_features(smiles, spec_json(cat["descriptor_spec"].iloc[0]))[0], dtype=torch.float32)
    out = {}
    for prop, g in cat.groupby("property"):
        with torch.no_grad():
            preds = [
                lib.load_model(m)(X).reshape(-1).double().numpy() for m in sorted(g["model_id"])[:MODELS_PER_GROUP]
            ]
        out[str(prop)] = np.mean(preds, axis=0)
    return out


def library_property_sum(library, smiles: list[str]) -> np.ndarray:
    """A target the library knows exactly: the sum of its QM9 properties' mean predictions, each scaled by its
    spread over 300 fixed ESOL molecules (so both properties matter)."""
    ref = property_means(library, esol_rows(300)["smiles"].tolist())
    return sum(v / ref[p].std() for p, v in property_means(library, smiles).items())


@pytest.fixture(scope="module")
def rows():
    df = esol_rows(300).sample(frac=1.0, random_state=5)
    return df.iloc[:60], df.iloc[60:90]


def _fit(small_library, rows, tmp_path_factory, y_fn, **options):
    train, held = rows
    smiles = train["smiles"].tolist()
    out = tmp_path_factory.mktemp("extras") / "run"
    res = fit_transfer(small_library, smiles, y_fn(small_library, smiles), out, seed=1, **{**FAST, **options})
    return res, held


@pytest.fixture(scope="module")
def source_run(small_library, rows, tmp_path_factory):
    return _fit(small_library, rows, tmp_path_factory, library_property_sum, stacks=False)


def test_source_predictions_are_chosen_when_the_target_is_what_the_library_predicts(source_run, small_library):
    res, held = source_run
    assert res.selection.option == SOURCE
    assert res.selection.members[0].startswith("composite:source")
    candidates = set(res.refined.loc[res.refined["kind"] == "source", "candidate"])
    assert candidates >= {"composite:source", "composite:source+rdkit2d"}
    # honest lines: the chosen, the best direct and the best transfer option, with the new option among them
    nested = res.selection.nested
    assert {"chosen", "direct", "transfer", SOURCE} <= set(nested)
    assert nested["transfer"] <= nested["direct"] and nested["chosen"] < 0.5 * nested["direct"]
    run = json.loads((res.out_dir / "run.json").read_text())
    assert run["chosen_option"] == SOURCE and run["nested_cv_mae"] == pytest.approx(nested)


def test_saved_source_model_predicts_rows_in_input_order_with_intervals(source_run, small_library):
    res, held = source_run
    inputs = held["smiles"].tolist()[:15] + ["not a smiles"] + held["smiles"].tolist()[15:]
    pred = predict_transfer(res.out_dir, inputs)
    assert pred["input"].tolist() == [s.strip() for s in inputs]
    assert list(pred.columns[:5]) == ["input", "prediction", "uncertainty", "lower_90", "upper_90"]
    ok = pred["prediction"].notna()
    assert not ok.iloc[15] and ok.sum() == len(held)
    truth = library_property_sum(small_library, held["smiles"].tolist())
    got = pred.loc[ok, "prediction"].to_numpy()
    assert np.abs(got - truth).mean() < 0.25 * np.abs(truth - truth.mean()).mean()  # rows not shuffled
    assert (pred.loc[ok, "lower_90"] < pred.loc[ok, "upper_90"]).all()
    spec = json.loads((res.out_dir / "model" / "model.json").read_text())
    assert spec["members"][0]["blocks"] and spec["members"][0]["block_extractors"]


def test_choice_among_source_alternatives_ignores_a_leaked_test_score(source_run):
    """Give the held-out rows labels equal to the CV runner-up's predictions: a choice scored on them would switch
    to the runner-up; the fit never sees those rows, so the option's member is the CV-best alternative."""
    res, held = source_run
    src = res.refined[res.refined["kind"] == "source"].reset_index(drop=True)
    best, runner_up = src.iloc[0], src.iloc[1]
    assert res.selection.members == [best["member"]] and best["cv_mae"] <= runner_up["cv_mae"]
    smiles = held["smiles"].tolist()
    leaked_labels = alternative_predictions(res, runner_up["member"], smiles)
    test_mae = {
        m: float(np.abs(alternative_predictions(res, m, smiles) - leaked_labels).mean())
        for m in (best["member"], runner_up["member"])
    }
    assert min(test_mae, key=test_mae.get) == runner_up["member"] != best["member"]  # a test score would switch
    saved = predict_transfer(res.out_dir, smiles)["prediction"].to_numpy()
    assert np.allclose(saved, alternative_predictions(res, best["member"], smiles), atol=1e-6)  # ... the fit did not


def alternative_predictions(res, member: str, smiles: list[str]) -> np.ndarray:
    """Held-out predictions of one source alternative (`source[+descriptor]|learner`) refitted on all training
    rows, its columns rebuilt from the library the fit used."""
    from matlib.transfer.composite import block_features, block_models, load_models
    from matlib.transfer.direct import standard_specs
    from matlib.transfer.impute import spec_key
    from matlib.transfer.learners import get_learner
    from matlib.transfer.source_features import prediction_blocks

    lib = Library(json.loads((res.out_dir / "model" / "model.json").read_text())["library"])
    usable = res.ranking[(res.ranking["kind"] == "transfer") & ~res.ranking["leak"]]
    cand, learner = member.removeprefix("composite:").rsplit("|", 1)
    base, _, descriptor = cand.partition("+")  # source[-c<clip>][+<descriptor>]
    recipe = prediction_blocks(usable, res.target.specs, float(base[8:]) if base.startswith("source-c") else None)
    if descriptor:
        spec = next(s for s in standard_specs("molecule") if s["name"] == descriptor)
        recipe = [{"type": "descriptor", "spec": res.target.specs[spec["hash"]]}, *recipe]
    shards = load_models(lib, block_models(recipe))
    specs = {spec_key(b["spec"]): b["spec"] for b in recipe}
    train = block_features(recipe, {k: res.target.features[k] for k in specs}, shards)
    test = block_features(recipe, {k: raw_features(smiles, s)[0] for k, s in specs.items()}, shards)
    lr = get_learner(learner)
    return lr.predict(lr.fit(train, res.target.y_usable, 1), test)


def test_stack_is_chosen_for_a_target_that_needs_two_sources_and_predicts(small_library, rows, tmp_path_factory):
    # the ensemble option (the default reference) would average the stack with the options it beats: off here, so
    # the stack has to beat the direct reference clearly on its own
    res, held = _fit(
        small_library, rows, tmp_path_factory, library_property_sum, source_features=False, ensemble_options=0
    )
    stack = res.refined[res.refined["kind"] == "stack"]
    assert len(stack) and set(stack["learner"]) <= {"ridge", "gp", "lightgbm"}
    assert STACK in res.selection.nested
    if res.selection.option != STACK:
        pytest.fail(f"stack not chosen: {res.selection.table[['option', 'cv_mae']].to_dict('records')}")
    pred = predict_transfer(res.out_dir, held["smiles"].tolist())
    assert pred["prediction"].notna().all() and (pred["lower_90"] < pred["upper_90"]).all()
    blocks = json.loads((res.out_dir / "model" / "model.json").read_text())["members"][0]["blocks"]
    assert {b["type"] for b in blocks} == {"hidden"} and len({b["label"].split("/")[0] for b in blocks}) >= 2


def test_nested_stack_picks_sources_from_the_fold_alone():
    """The full screening (which saw every row) ranks a useless source first; each fold's own screening ranks the
    useful one first. The nested out-of-fold predictions follow the folds' picks, so they are accurate: a choice
    made with the held-out rows' scores would have stacked the useless source."""
    rng = np.random.default_rng(0)
    n = 40
    good, noise = rng.normal(size=(n, 3)), rng.normal(size=(n, 3))
    y = good @ np.array([1.0, -2.0, 0.5])
    folds = repeated_kfold(n, 4, 1, 0)
    feats = {"good/h0": good, "noise/h0": noise, "other/h0": rng.normal(size=(n, 2)), "other2/h0": noise[:, :2]}
    usable = pd.DataFrame(
        {
            "candidate": list(feats),
            "property": ["p_good", "p_noise", "p_other", "p_noise"],
            "descriptor_hash": "h",
            "clip": np.nan,
            "loo_mae": [9.0, 0.1, 0.2, 0.3],  # full screening: noise and other first, good last of four
            **{f"loo_mae_f{i}": [0.1, 9.0, 0.2, 0.3] for i in range(4)},  # every fold: good first
        }
    )
    oof, _ = nested_stack_oof(usable, feats, y, folds, ["ridge"], 0)
    err = np.abs(oof["ridge"][0] - y).mean()
    assert err < 0.1 * np.abs(y - y.mean()).mean()


def test_select_model_scores_alternative_options_nested_and_never_by_a_test_score():
    """Two alternative options: A's CV-best alternative looks best on the pool's (lucky) CV alone, but its nested
    score is worse than B's; the choice follows the nested scores, and the test labels are never an input."""
    rng = np.random.default_rng(1)
    n = 50
    y = rng.normal(size=n)
    folds = repeated_kfold(n, 5, 1, 3)
    direct = {"direct:x:h|ridge": (y + rng.normal(scale=1.0, size=n))[None, :]}
    a = {f"a{i}|ridge": (y + rng.normal(scale=0.8, size=n))[None, :] for i in range(8)}  # many noisy: lucky min
    b = {"b|ridge": (y + rng.normal(scale=0.5, size=n))[None, :]}
    pool = {**direct, **a, **b}
    sel = select_model(pool, y, [], ["direct:x:h"], folds=folds, alternatives={"transfer: A": a, "transfer: B": b})
    assert sel.option == "transfer: B" and sel.members == ["b|ridge"]
    assert sel.nested["transfer"] == pytest.approx(sel.nested["transfer: B"], rel=0.2)


def source_plus_solubility(library, smiles: list[str]) -> np.ndarray:
    """Half what the library predicts, half what direct learners see: the library property sum and the measured
    ESOL solubility, each standardised over the given molecules."""
    src = library_property_sum(library, smiles)
    sol = esol_rows(300).set_index("smiles").loc[smiles, "logSolubility"].to_numpy(np.float64)
    return (src - src.mean()) / src.std() + (sol - sol.mean()) / sol.std()


@pytest.fixture(scope="module")
def ensemble_run(small_library, rows, tmp_path_factory):
    # the menu this target was built for: the averaged direct option (off here) would be a fourth near-tie
    return _fit(small_library, rows, tmp_path_factory, source_plus_solubility, direct_mean=0)


def test_ensemble_of_the_best_options_is_chosen_saved_and_predicts_its_weighted_members(ensemble_run):
    """A target half known to the library and half to the descriptors: the average of the best options beats direct
    by more than its paired standard error and is chosen (it is the reference of the choice); the saved model
    predicts the weighted mean of its members, in input order, with a 90% interval."""
    res, held = ensemble_run
    if not res.selection.option.startswith("ensemble:"):
        pytest.fail(
            f"ensemble not chosen: {res.selection.table[['option', 'cv_mae', 'paired_diff']].to_dict('records')}"
        )
    assert len(res.selection.members) >= 2 and sum(res.selection.weights) == pytest.approx(1.0)
    run = json.loads((res.out_dir / "run.json").read_text())
    assert run["choice"]["reference"] == res.selection.option and res.selection.option not in run["choice"]["gaps"]
    gap = run["choice"]["gaps"]["direct"]  # direct against the ensemble: worse by more than its paired SE
    assert not gap["clear"] and gap["paired_diff"] > gap["paired_se"]
    assert run["choice"]["reason"].startswith(f"{res.selection.option}: no option beats it")
    assert "- why: " in (res.out_dir / "report.md").read_text()
    inputs = held["smiles"].tolist()[:10] + ["not a smiles"] + held["smiles"].tolist()[10:20]
    pred = predict_transfer(res.out_dir, inputs)
    assert pred["input"].tolist() == [s.strip() for s in inputs]
    ok = pred["prediction"].notna()
    assert not ok.iloc[10] and ok.sum() == 20 and (pred.loc[ok, "lower_90"] < pred.loc[ok, "upper_90"]).all()
    spec = load_model(res.out_dir)
    assert [m["weight"] for m in spec["members"]] == pytest.approx(res.selection.weights)
    weights = [m["weight"] for m in spec["members"]]
    alone = []
    for i in range(len(weights)):  # each member on its own: all of the weight on it
        for j, m in enumerate(spec["members"]):
            m["weight"] = 1.0 if i == j else 0.0
        alone.append(predict_transfer(spec, inputs)["prediction"].to_numpy())
    np.testing.assert_allclose(np.tensordot(weights, alone, axes=1)[ok], pred.loc[ok, "prediction"], rtol=1e-6)


def test_clamped_source_predictions_stay_in_the_source_domain(small_library):
    """Source-prediction columns with clamped inputs: each model sees its inputs within +-clip training sds, rows
    already inside are untouched, and far-out rows no longer move the prediction."""
    from matlib.transfer.composite import block_features, clamp_inputs, load_models
    from matlib.transfer.impute import spec_key
    from matlib.transfer.target import spec_json

    lib = Library(small_library)
    cat = lib.catalog[(lib.catalog["status"] == "ok") & (lib.catalog["descriptor"] == "maccs")]
    mid = str(sorted(cat["model_id"])[0])
    shard = load_models(lib, [mid])[mid]
    mean, std = shard.tensors["x_mean"][0].double(), shard.tensors["x_std"][0].double()
    smiles = esol_rows(40)["smiles"].tolist()
    spec = spec_json(cat["descriptor_spec"].iloc[0])
    X = raw_features(smiles, spec)[0].astype(np.float64)
    far = (
        mean[None, :] + torch.arange(50.0, 55.0, dtype=torch.float64)[:, None] * std[None, :]
    ).numpy()  # 50-54 sds out
    x = torch.as_tensor(np.concatenate([X, far]))
    z = (clamp_inputs(shard, x, 5.0).double() - mean) / std
    assert float(z.abs().max()) <= 5.0 + 1e-4
    inside = ((x.double() - mean) / std).abs().le(5.0).all(dim=1)
    assert bool(inside.any())
    assert torch.equal(clamp_inputs(shard, x, 5.0)[inside], x[inside])
    assert torch.equal(clamp_inputs(shard, x, None), x)
    block = {"type": "prediction", "spec": spec, "models": [mid], "label": "p"}
    raw = {spec_key(spec): np.concatenate([X, far])}
    clamped = block_features([{**block, "clip": 5.0}], raw, {mid: shard})[:, 0]
    plain = block_features([block], raw, {mid: shard})[:, 0]
    np.testing.assert_allclose(clamped[: len(X)][inside[: len(X)].numpy()], plain[: len(X)][inside[: len(X)].numpy()])
    np.testing.assert_allclose(clamped[len(X) :], clamped[len(X)])  # far rows: all at the clamp, one prediction
    assert np.ptp(plain[len(X) :]) > 0  # unclamped, the model extrapolates further with every row
