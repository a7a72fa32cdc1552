"""The featurizer interface shared by every descriptor variant."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from matlib.descriptors.spec import DescriptorSpec, registered


@dataclass
class FeatureResult:
    """Features of n inputs: X float32 [n, d] (NaN rows for failures), ok bool [n], reasons per row."""

    X: np.ndarray
    ok: np.ndarray
    reasons: list[str | None]

    def mark_non_finite(self, feature_names: Sequence[str]) -> FeatureResult:
        """Turn rows holding NaN/inf (e.g. from an RDKit descriptor) into failures naming the features."""
        bad = self.ok & ~np.isfinite(self.X).all(axis=1) if self.X.size else np.zeros_like(self.ok)
        for i in np.flatnonzero(bad):
            cols = [feature_names[int(j)] for j in np.flatnonzero(~np.isfinite(self.X[i]))]
            more = f" and {len(cols) - 3} more" if len(cols) > 3 else ""
            self.reasons[i] = f"non-finite descriptor value in {', '.join(cols[:3])}{more}"
        self.ok = self.ok & ~bad
        self.X[~self.ok] = np.nan
        return self


@dataclass
class Featurizer:
    """A descriptor bound to its spec: `featurize(inputs) -> FeatureResult`."""

    spec: DescriptorSpec
    input_kind: str
    feature_names: list[str]
    compute: Callable[[Sequence[str]], FeatureResult]

    def featurize(self, inputs: Sequence[str]) -> FeatureResult:
        """Features of every input (never raises for a bad row: it is marked not ok with a reason)."""
        inputs = list(inputs)
        if not inputs:
            return FeatureResult(np.zeros((0, len(self.feature_names)), np.float32), np.zeros(0, bool), [])
        return self.compute(inputs).mark_non_finite(self.feature_names)

    @property
    def n_features(self) -> int:
        """Number of features d."""
        return len(self.feature_names)


def get_featurizer(spec: DescriptorSpec | str | dict[str, Any]) -> Featurizer:
    """The featurizer of a spec (or a registered name, or a spec dict)."""
    spec = DescriptorSpec.coerce(spec)
    featurizer: Featurizer = registered(spec.name).factory(spec)
    return featurizer
