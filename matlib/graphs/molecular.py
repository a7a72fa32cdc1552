"""Molecular graphs: SMILES -> atoms x 74 canonical features, bonds x 12 features (both directions).

Atom features follow the widely used canonical layout (DGL-LifeSci `CanonicalAtomFeaturizer`, 74 columns):
atom type one-hot over 43 symbols (no unknown slot: an atom outside the list has all 43 zeros), degree 0-10,
implicit valence 0-6, formal charge (integer), radical electrons (integer), hybridization SP/SP2/SP3/SP3D/SP3D2,
aromaticity, total H count 0-4. Bond features (`CanonicalBondFeaturizer` layout, 12 columns): type
single/double/triple/aromatic, conjugated, in ring, stereo none/any/Z/E/cis/trans.
Polymer repeat units are parsed like the fingerprints do (`matlib.descriptors.molecular.to_mol`: `*` ends capped
with H by default, `polymer_ends` = hydrogen | methyl | dummy).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rdkit import Chem

ATOM_SYMBOLS = (
    "C",
    "N",
    "O",
    "S",
    "F",
    "Si",
    "P",
    "Cl",
    "Br",
    "Mg",
    "Na",
    "Ca",
    "Fe",
    "As",
    "Al",
    "I",
    "B",
    "V",
    "K",
    "Tl",
    "Yb",
    "Sb",
    "Sn",
    "Ag",
    "Pd",
    "Co",
    "Se",
    "Ti",
    "Zn",
    "H",
    "Li",
    "Ge",
    "Cu",
    "Au",
    "Ni",
    "Cd",
    "In",
    "Mn",
    "Zr",
    "Cr",
    "Pt",
    "Hg",
    "Pb",
)
DEGREES = tuple(range(11))
IMPLICIT_VALENCES = tuple(range(7))
HYBRIDIZATIONS = (
    Chem.rdchem.HybridizationType.SP,
    Chem.rdchem.HybridizationType.SP2,
    Chem.rdchem.HybridizationType.SP3,
    Chem.rdchem.HybridizationType.SP3D,
    Chem.rdchem.HybridizationType.SP3D2,
)
TOTAL_HS = tuple(range(5))
BOND_TYPES = (
    Chem.rdchem.BondType.SINGLE,
    Chem.rdchem.BondType.DOUBLE,
    Chem.rdchem.BondType.TRIPLE,
    Chem.rdchem.BondType.AROMATIC,
)
BOND_STEREO = (
    Chem.rdchem.BondStereo.STEREONONE,
    Chem.rdchem.BondStereo.STEREOANY,
    Chem.rdchem.BondStereo.STEREOZ,
    Chem.rdchem.BondStereo.STEREOE,
    Chem.rdchem.BondStereo.STEREOCIS,
    Chem.rdchem.BondStereo.STEREOTRANS,
)


def _names() -> tuple[list[str], list[str]]:
    """Column names of the atom and bond features, in layout order."""
    atom = (
        [f"type_{s}" for s in ATOM_SYMBOLS]
        + [f"degree_{d}" for d in DEGREES]
        + [f"implicit_valence_{v}" for v in IMPLICIT_VALENCES]
        + ["formal_charge", "radical_electrons"]
        + [f"hybridization_{str(h)}" for h in HYBRIDIZATIONS]
        + ["aromatic"]
        + [f"total_h_{h}" for h in TOTAL_HS]
    )
    bond = (
        [f"bond_{str(t).lower()}" for t in BOND_TYPES]
        + ["conjugated", "in_ring"]
        + [f"stereo_{str(s)[6:].lower()}" for s in BOND_STEREO]
    )
    return atom, bond


ATOM_FEATURE_NAMES, BOND_FEATURE_NAMES = _names()
N_ATOM_FEATURES = len(ATOM_FEATURE_NAMES)  # 74
N_BOND_FEATURES = len(BOND_FEATURE_NAMES)  # 12


def _one_hot(value, allowed: tuple, out: np.ndarray, start: int) -> int:
    """Set out[start + allowed.index(value)] (nothing when value is not allowed); returns the next offset."""
    try:
        out[start + allowed.index(value)] = 1
    except ValueError:
        pass
    return start + len(allowed)


def implicit_valence(atom: Chem.Atom) -> int:
    """The atom's implicit valence (RDKit >= 2024.09 spells it GetValence(IMPLICIT))."""
    vt = getattr(Chem, "ValenceType", None)
    return int(atom.GetValence(vt.IMPLICIT)) if vt is not None else int(atom.GetImplicitValence())


def atom_features(atom: Chem.Atom) -> np.ndarray:
    """The 74 canonical features of one atom (float32)."""
    f = np.zeros(N_ATOM_FEATURES, dtype=np.float32)
    i = _one_hot(atom.GetSymbol(), ATOM_SYMBOLS, f, 0)
    i = _one_hot(atom.GetDegree(), DEGREES, f, i)
    i = _one_hot(implicit_valence(atom), IMPLICIT_VALENCES, f, i)
    f[i], f[i + 1] = atom.GetFormalCharge(), atom.GetNumRadicalElectrons()
    i = _one_hot(atom.GetHybridization(), HYBRIDIZATIONS, f, i + 2)
    f[i] = float(atom.GetIsAromatic())
    _one_hot(atom.GetTotalNumHs(), TOTAL_HS, f, i + 1)
    return f


def bond_features(bond: Chem.Bond) -> np.ndarray:
    """The 12 canonical features of one bond (float32)."""
    f = np.zeros(N_BOND_FEATURES, dtype=np.float32)
    i = _one_hot(bond.GetBondType(), BOND_TYPES, f, 0)
    f[i], f[i + 1] = float(bond.GetIsConjugated()), float(bond.IsInRing())
    _one_hot(bond.GetStereo(), BOND_STEREO, f, i + 2)
    return f


@dataclass
class Graph:
    """One graph: node features [n, d_node], directed edges [2, e] (src, dst), edge features [e, d_edge]."""

    x: np.ndarray
    edge_index: np.ndarray
    edge_attr: np.ndarray

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return int(self.x.shape[0])

    @property
    def n_edges(self) -> int:
        """Number of directed edges."""
        return int(self.edge_index.shape[1])


def mol_to_graph(mol: Chem.Mol) -> Graph:
    """The graph of an RDKit molecule: every bond becomes two directed edges (i->j, j->i) with the same features."""
    x = (
        np.stack([atom_features(a) for a in mol.GetAtoms()])
        if mol.GetNumAtoms()
        else np.zeros((0, N_ATOM_FEATURES), np.float32)
    )
    src, dst, feats = [], [], []
    for b in mol.GetBonds():
        i, j = b.GetBeginAtomIdx(), b.GetEndAtomIdx()
        f = bond_features(b)
        src += [i, j]
        dst += [j, i]
        feats += [f, f]
    edge_index = np.array([src, dst], dtype=np.int64).reshape(2, -1)
    edge_attr = np.stack(feats) if feats else np.zeros((0, N_BOND_FEATURES), np.float32)
    return Graph(x=x, edge_index=edge_index, edge_attr=edge_attr)


def smiles_to_graph(smiles: str, polymer_ends: str = "hydrogen") -> Graph:
    """The graph of a SMILES (polymer `*` ends handled as for the fingerprints); ValueError with a reason."""
    from matlib.descriptors.molecular import to_mol

    return mol_to_graph(to_mol(smiles, polymer_ends))
