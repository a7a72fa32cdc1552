"""Compositional descriptors: weighted statistics of element properties, as sparse-matrix operations.

One mechanism (`element_stats`) with registered variants `magpie` (matminer parity) and `xenonpy`.
Each distinct formula is parsed once into a CSR amount matrix (formulas x 118 elements); weighted means,
sums, deviations and variances are sparse matrix products, minima/maxima/mode are `ufunc.reduceat`
segment reductions over its non-zeros — never a Python loop per row. Results are computed per distinct
formula in float64 and gathered to the input rows as float32.

Parity notes (magpie vs matminer): matminer weights by element *amounts* (np.average normalises), and
its `mode` is the smallest property value among the elements whose amount is np.isclose to the largest
amount; both are reproduced exactly. matminer is ill-defined for elements without Magpie data: it
imputes the column mean (e.g. `Number` of Og = 56.5); we reproduce that by default (impute_nan=True).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import scipy.sparse as sp

from matlib.descriptors.base import FeatureResult, Featurizer
from matlib.descriptors.composition import SYMBOLS, amount_matrix
from matlib.descriptors.elements import element_table, table_sha256
from matlib.descriptors.spec import DescriptorSpec, register
from matlib.errors import MatlibError

MAGPIE_STATS = ["minimum", "maximum", "range", "mean", "avg_dev", "mode"]
XENONPY_STATS = ["ave", "sum", "var", "max", "min"]


class _Nz:
    """The non-zeros of a CSR amount matrix laid out for segment operations (one segment per formula).

    Weighted sums are sparse matrix products (W [n, nnz] @ values [nnz, P]); minima and maxima are
    `ufunc.reduceat` over a transposed, contiguous [P, nnz] copy (about twice as fast as along axis 0).
    """

    def __init__(self, amounts: sp.csr_matrix, table: np.ndarray):
        n, nnz = amounts.shape[0], amounts.nnz
        self.starts = amounts.indptr[:-1]
        self.rows = np.repeat(np.arange(n), np.diff(amounts.indptr))
        self.w = amounts.data  # element amounts [nnz]
        self.W = sp.csr_matrix((self.w, np.arange(nnz), amounts.indptr), shape=(n, nnz))
        self.total = np.asarray(amounts.sum(axis=1)).ravel()  # [n]
        self.v = table[amounts.indices]  # [nnz, P]
        self._cache: dict[str, np.ndarray] = {}

    def cached(self, key: str, fn: Callable[[], np.ndarray]) -> np.ndarray:
        """Compute a statistic once per call of element_stats (range reuses min and max, etc.)."""
        if key not in self._cache:
            self._cache[key] = fn()
        return self._cache[key]

    def segment(self, ufunc: np.ufunc, a: np.ndarray) -> np.ndarray:
        """ufunc-reduce each formula's rows of a [nnz, P] -> [n, P]."""
        return ufunc.reduceat(np.ascontiguousarray(a.T), self.starts, axis=1).T


def _wavg(nz: _Nz, a: np.ndarray) -> np.ndarray:
    """Amount-weighted average of a per-non-zero array, summed as np.average does (sum(w a) / sum(w))."""
    return (nz.W @ a) / nz.total[:, None]


def _mean(nz: _Nz) -> np.ndarray:
    return nz.cached("mean", lambda: _wavg(nz, nz.v))


def _avg_dev(nz: _Nz) -> np.ndarray:
    return _wavg(nz, np.abs(nz.v - _mean(nz)[nz.rows]))


def _var(nz: _Nz) -> np.ndarray:
    return _wavg(nz, (nz.v - _mean(nz)[nz.rows]) ** 2)


def _min(nz: _Nz) -> np.ndarray:
    return nz.cached("min", lambda: nz.segment(np.minimum, nz.v))


def _max(nz: _Nz) -> np.ndarray:
    return nz.cached("max", lambda: nz.segment(np.maximum, nz.v))


def _mode(nz: _Nz) -> np.ndarray:
    """Value of the element with the largest amount; ties (np.isclose on amounts) -> smallest value."""
    wmax = np.maximum.reduceat(nz.w, nz.starts)[nz.rows]
    top = np.abs(nz.w - wmax) <= 1e-8 + 1e-5 * np.abs(wmax)
    return nz.segment(np.minimum, np.where(top[:, None], nz.v, np.inf))


def _gmean(nz: _Nz) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.exp(_wavg(nz, np.log(nz.v)))


def _hmean(nz: _Nz) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return 1.0 / _wavg(nz, 1.0 / nz.v)


STATS: dict[str, Callable[[_Nz], np.ndarray]] = {
    "minimum": _min,
    "maximum": _max,
    "range": lambda nz: _max(nz) - _min(nz),
    "mean": _mean,
    "avg_dev": _avg_dev,
    "mode": _mode,
    "ave": _mean,
    "sum": lambda nz: nz.W @ nz.v,
    "var": _var,
    "max": _max,
    "min": _min,
    "gmean": _gmean,
    "hmean": _hmean,
}
POSITIVE_ONLY = {"gmean", "hmean"}  # computed only for properties positive for every element


def element_stats(
    formulas: Sequence[str], table: np.ndarray, stats: Sequence[str], table_name: str, layout: str
) -> FeatureResult:
    """Statistics of `table` weighted by each formula's amounts; failed rows get NaN and a reason."""
    am = amount_matrix(formulas)
    reasons = list(am.reasons)
    missing_el = np.isnan(table).any(axis=1)  # [118] elements without (complete) data
    amounts = am.amounts
    bad_distinct = (amounts @ missing_el.astype(np.float64)) > 0
    positive = positive_columns(table)
    width = sum(int(positive.sum()) if s in POSITIVE_ONLY else table.shape[1] for s in stats)
    per_distinct = np.zeros((0, width), np.float64)
    if amounts.shape[0]:
        nz = _Nz(amounts, np.where(np.isnan(table), 0.0, table))
        blocks = [STATS[s](nz)[:, positive] if s in POSITIVE_ONLY else STATS[s](nz) for s in stats]
        if layout == "prop-major":  # matminer's order: prop0-stat0, prop0-stat1, ...
            per_distinct = np.stack(blocks, axis=2).reshape(amounts.shape[0], -1)
        else:
            per_distinct = np.concatenate(blocks, axis=1)
    n = len(formulas)
    X = np.full((n, per_distinct.shape[1]), np.nan, dtype=np.float32)
    ok = am.row_to_distinct >= 0
    idx = am.row_to_distinct[ok]
    X[ok] = per_distinct[idx]
    bad_rows = np.flatnonzero(ok)[bad_distinct[idx]]
    for i in bad_rows:
        els = [SYMBOLS[j] for j in amounts[am.row_to_distinct[i]].indices if missing_el[j]]
        reasons[i] = f"element(s) {', '.join(els)} have no data in the {table_name} element table"
    ok[bad_rows] = False
    return FeatureResult(X, ok, reasons)


def positive_columns(table: np.ndarray) -> np.ndarray:
    """Properties positive for every element with data (where geometric/harmonic means are defined)."""
    return (np.nan_to_num(table, nan=1.0) > 0).all(axis=0)


@register(
    "magpie",
    "composition",
    {"impute_nan": True},
    data_id=lambda: table_sha256("magpie"),
    doc="matminer ElementProperty.from_preset('magpie'): 22 Magpie properties x 6 stats (132)",
)
def magpie(spec: DescriptorSpec) -> Featurizer:
    """The 132 Magpie features, numerically identical to matminer's preset."""
    table, props = element_table("magpie", "nanmean" if spec.params["impute_nan"] else None)
    names = [f"MagpieData {s} {p}" for p in props for s in MAGPIE_STATS]
    return Featurizer(
        spec, "composition", names, lambda xs: element_stats(xs, table, MAGPIE_STATS, "magpie", "prop-major")
    )


@register(
    "xenonpy",
    "composition",
    {"stats": XENONPY_STATS},
    data_id=lambda: table_sha256("xenonpy"),
    doc="XenonPy compositional descriptor over 59 element properties (ave, sum, var, max, min; optional gmean, hmean)",
)
def xenonpy(spec: DescriptorSpec) -> Featurizer:
    """XenonPy-style weighted statistics over the shipped xenonpy element table (H..Pu)."""
    stats = list(spec.params["stats"])
    unknown = [s for s in stats if s not in ("ave", "sum", "var", "max", "min", "gmean", "hmean")]
    if unknown or not stats:
        raise MatlibError(f"xenonpy: unknown stats {unknown}; allowed: ave, sum, var, max, min, gmean, hmean")
    table, props = element_table("xenonpy")
    positive = positive_columns(table)
    names = [f"{s}:{p}" for s in stats for p, pos in zip(props, positive) if pos or s not in POSITIVE_ONLY]
    return Featurizer(spec, "composition", names, lambda xs: element_stats(xs, table, stats, "xenonpy", "stat-major"))
