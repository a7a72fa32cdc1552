"""Molecular descriptors over SMILES (polymer repeat units included): morgan, maccs, rdkit2d.

One mechanism (`molecule_featurizer`): each distinct SMILES is parsed once, polymer `*` ends are
handled by `matlib.descriptors.polymer.cap_ends`, and a registered per-molecule function fills one row.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence

import numpy as np
from rdkit import Chem, DataStructs, RDLogger
from rdkit.Chem import Descriptors, MACCSkeys, rdFingerprintGenerator

from matlib.descriptors.base import FeatureResult, Featurizer
from matlib.descriptors.polymer import POLYMER_ENDS, cap_ends
from matlib.descriptors.spec import DescriptorSpec, register
from matlib.errors import MatlibError
from matlib.hashing import spec_hash
from matlib.text import shorten

RDLogger.DisableLog("rdApp.*")  # type: ignore[attr-defined]


def smiles_text_problem(smiles: object) -> str | None:
    """Why a value cannot be a SMILES before RDKit sees it (not text, empty, inner whitespace), else None.

    RDKit reads only up to the first whitespace (the rest is a molecule name): 'C C' or 'C\nO' would silently
    become methane, so a SMILES holding whitespace or any other control character is refused instead.
    """
    if smiles is None or (isinstance(smiles, float) and smiles != smiles):
        return "empty SMILES"
    if not isinstance(smiles, str):
        return f"not a SMILES: {shorten(repr(smiles))}"
    s = smiles.strip()
    if not s:
        return "empty SMILES"
    bad = next((c for c in s if c.isspace() or unicodedata.category(c)[0] == "C"), None)
    if bad is not None:
        return f"SMILES {shorten(smiles)!r} holds {'whitespace' if bad.isspace() else 'a control character'} {bad!r}"
    return None


def to_mol(smiles: str, polymer_ends: str = "hydrogen") -> Chem.Mol:
    """Parse a SMILES (capping polymer `*` ends); ValueError with a reason if RDKit rejects it."""
    problem = smiles_text_problem(smiles)
    if problem:
        raise ValueError(problem)
    mol = Chem.MolFromSmiles(smiles.strip())
    if mol is None:
        raise ValueError(f"unparseable SMILES {shorten(smiles)!r}")
    if mol.GetNumAtoms() == 0:
        raise ValueError(f"SMILES {shorten(smiles)!r} has no atoms")
    if "*" not in smiles:  # not a polymer repeat unit: nothing to cap
        return mol
    if all(a.GetAtomicNum() == 0 for a in mol.GetAtoms()):  # '*' or '**' would be capped into H2
        raise ValueError(f"SMILES {shorten(smiles)!r} has only polymer chain ends (*), no atoms")
    try:
        return cap_ends(mol, polymer_ends)
    except Exception as exc:  # RDKit sanitisation errors are not ValueError
        raise ValueError(f"cannot cap polymer ends of {shorten(smiles)!r}: {exc}") from None


def molecule_featurizer(spec: DescriptorSpec, names: list[str], row_fn: Callable[[Chem.Mol], np.ndarray]) -> Featurizer:
    """A featurizer that parses each distinct SMILES once and applies row_fn per molecule."""
    ends = spec.params.get("polymer_ends", "hydrogen")
    if ends not in POLYMER_ENDS:
        raise MatlibError(f"{spec.name}: polymer_ends must be one of {POLYMER_ENDS}, got {ends!r}")

    def compute(inputs: Sequence[str]) -> FeatureResult:
        n = len(inputs)
        X = np.full((n, len(names)), np.nan, dtype=np.float32)
        ok = np.zeros(n, dtype=bool)
        reasons: list[str | None] = [None] * n
        seen: dict[str, int] = {}
        for i, smi in enumerate(inputs):
            j = seen.get(smi) if isinstance(smi, str) else None
            if j is not None:
                X[i], ok[i], reasons[i] = X[j], ok[j], reasons[j]
                continue
            if isinstance(smi, str):
                seen[smi] = i
            try:
                X[i] = row_fn(to_mol(smi, ends))
                ok[i] = True
            except ValueError as exc:
                reasons[i] = str(exc)
            except Exception as exc:  # an RDKit failure on one molecule must not stop the batch
                reasons[i] = f"descriptor failed on {shorten(str(smi))!r}: {type(exc).__name__}: {exc}"
        return FeatureResult(X, ok, reasons)

    return Featurizer(spec, "molecule", names, compute)


@register(
    "morgan",
    "molecule",
    {"radius": 2, "n_bits": 2048, "counts": True, "polymer_ends": "hydrogen"},
    doc="Morgan/ECFP fingerprint (counts by default), radius and bits configurable",
)
def morgan(spec: DescriptorSpec) -> Featurizer:
    """Morgan (ECFP-like) count or bit vector."""
    p = spec.params
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=int(p["radius"]), fpSize=int(p["n_bits"]))
    fn = gen.GetCountFingerprintAsNumPy if p["counts"] else gen.GetFingerprintAsNumPy
    names = [f"morgan{p['radius']}_{i}" for i in range(int(p["n_bits"]))]
    return molecule_featurizer(spec, names, fn)


@register("maccs", "molecule", {"polymer_ends": "hydrogen"}, doc="RDKit MACCS keys (167 bits)")
def maccs(spec: DescriptorSpec) -> Featurizer:
    """The 167 MACCS structural keys."""

    def row(mol: Chem.Mol) -> np.ndarray:
        out = np.zeros(167, dtype=np.float64)
        DataStructs.ConvertToNumpyArray(MACCSkeys.GenMACCSKeys(mol), out)  # type: ignore[attr-defined]
        return out

    return molecule_featurizer(spec, [f"maccs_{i}" for i in range(167)], row)


@register(
    "rdkit2d",
    "molecule",
    {"polymer_ends": "hydrogen"},
    doc="all RDKit 2D descriptors (rdkit.Chem.Descriptors._descList)",
    data_id=lambda: spec_hash([name for name, _ in Descriptors._descList]),
)
def rdkit2d(spec: DescriptorSpec) -> Featurizer:
    """Every RDKit 2D descriptor; a molecule with a non-finite value is a failed row."""
    fns = list(Descriptors._descList)

    def row(mol: Chem.Mol) -> np.ndarray:
        with np.errstate(all="ignore"):
            return np.array([f(mol) for _, f in fns], dtype=np.float64).astype(np.float32)

    return molecule_featurizer(spec, [name for name, _ in fns], row)
