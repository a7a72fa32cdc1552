"""Random forest and extra trees (scikit-learn), exported as flat node arrays (safetensors) and predicted in numpy."""

from __future__ import annotations

import functools
from collections.abc import Hashable
from typing import Any, cast

import numpy as np

from matlib.transfer.gp import fill_missing, fill_values
from matlib.transfer.learner import LEARNERS, Learner, SourceContext

RF_PARAMS: dict[str, Any] = {"n_estimators": 200, "max_features": 0.33, "min_samples_leaf": 1, "n_jobs": 1}
ET_PARAMS: dict[str, Any] = {"n_estimators": 200, "max_features": 0.33, "min_samples_leaf": 1, "n_jobs": 1}


def _export_forest(forest: Any, fill: np.ndarray, columns: np.ndarray) -> dict[str, Any]:
    """A fitted scikit-learn forest as concatenated node arrays (+ the missing-value fill); it was fitted on
    X[:, columns], and the exported split features index the full X."""
    left, right, feat, thr, val, roots = [], [], [], [], [], []
    offset = 0
    for est in forest.estimators_:
        t = est.tree_
        leaf = t.children_left < 0
        left.append(np.where(leaf, -1, t.children_left + offset))
        right.append(np.where(leaf, -1, t.children_right + offset))
        feat.append(np.where(leaf, 0, columns[np.maximum(t.feature, 0)]))
        thr.append(t.threshold)
        val.append(t.value[:, 0, 0])
        roots.append(offset)
        offset += t.node_count
    return {
        "left": np.concatenate(left).astype(np.int64),
        "right": np.concatenate(right).astype(np.int64),
        "feature": np.concatenate(feat).astype(np.int64),
        "threshold": np.concatenate(thr).astype(np.float64),
        "value": np.concatenate(val).astype(np.float64),
        "roots": np.asarray(roots, dtype=np.int64),
        "fill": fill,
    }


@functools.cache
def _tree_class(base: type) -> type:
    """A forest's tree class with its parameter names read once: a forest clones its tree for every one of its 200
    trees, and scikit-learn reads the names from the constructor's signature on each clone (about a fifth of a small
    table's forest fit). Same parameters, same trees."""
    names = cast(Any, base)._get_param_names()  # scikit-learn's BaseEstimator classmethod
    return type(base.__name__, (base,), {"_get_param_names": classmethod(lambda cls: names), "__module__": __name__})


def _forest_fit(kind: str, X: np.ndarray, y: np.ndarray, seed: int) -> dict[str, Any]:
    """Random forest ("rf") or extremely randomised trees ("extratrees"), exported as node arrays."""
    from sklearn.ensemble import ExtraTreesRegressor, RandomForestRegressor

    fill = fill_values(X)
    Xf = np.clip(fill_missing(X, fill), -3e38, 3e38).astype(np.float32)  # sklearn splits on float32 values
    cls, params = (RandomForestRegressor, RF_PARAMS) if kind == "rf" else (ExtraTreesRegressor, ET_PARAMS)
    # constant columns (most fingerprint bits of a small table) cannot split: left out, max_features counts the rest
    varying = np.flatnonzero(Xf.max(axis=0) > Xf.min(axis=0)) if len(Xf) else np.zeros(0, np.int64)
    varying = varying if len(varying) else np.arange(min(1, Xf.shape[1]))
    forest = cls(random_state=int(seed), **params)
    forest.estimator = _tree_class(cast(Hashable, type(forest.estimator)))()  # the forest's own tree kind
    return _export_forest(forest.fit(Xf[:, varying], y), fill, varying)


def forest_predict(state: dict[str, Any], X: np.ndarray) -> np.ndarray:
    """Mean over trees, walking all rows and trees at once down the node arrays."""
    X = fill_missing(X, state["fill"]) if "fill" in state else np.asarray(X, dtype=np.float64)
    X = np.clip(X, -3e38, 3e38).astype(np.float32).astype(np.float64)  # sklearn splits on float32 values
    n = X.shape[0]
    node = np.broadcast_to(state["roots"], (n, len(state["roots"]))).copy()
    rows = np.arange(n)[:, None]
    while True:
        left = state["left"][node]
        active = left >= 0
        if not active.any():
            break
        go_left = X[rows, state["feature"][node]] <= state["threshold"][node]
        node = np.where(active, np.where(go_left, left, state["right"][node]), node)
    return state["value"][node].mean(axis=1)


class _Forest(Learner):
    """A tree ensemble of kind `kind` (state: its node arrays and the missing-value fill)."""

    kind = ""

    def fit(self, X: np.ndarray, y: np.ndarray, seed: int, context: SourceContext | None = None) -> dict[str, Any]:
        """scikit-learn's ensemble, exported as concatenated node arrays."""
        return _forest_fit(self.kind, X, y, seed)

    def predict(self, state: dict[str, Any], X: np.ndarray) -> np.ndarray:
        """Mean over trees."""
        return forest_predict(state, X)


@LEARNERS.register("rf")
class RandomForest(_Forest):
    """scikit-learn random forest (RF_PARAMS)."""

    kind = "rf"


@LEARNERS.register("extratrees")
class ExtraTrees(_Forest):
    """scikit-learn extremely randomised trees (ET_PARAMS)."""

    kind = "extratrees"
