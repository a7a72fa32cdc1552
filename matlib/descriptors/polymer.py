"""Polymer repeat units: how SMILES with `*` chain ends become molecules for molecular descriptors.

Policy (documented, one place): every `*` attachment point of a repeat unit is replaced by a
hydrogen-capped end, i.e. the dummy atom is removed and its neighbour gets an implicit H
(`*CC(*)c1ccccc1` -> ethylbenzene for polystyrene). This gives the repeat unit as a plain closed-shell
molecule, so polymer targets can be featurised like any molecule and used with molecular source models.
A `*` bonded to two or more atoms is a linker inside the repeat unit rather than an end; under
either capping policy it becomes a carbon (its free valences filled with H), since H cannot bond twice.
Param `polymer_ends="dummy"` instead keeps the `*` atoms as RDKit dummy atoms (atomic number 0) —
Morgan/MACCS then see them as their own atom type; `"methyl"` caps each end with CH3.
"""

from __future__ import annotations

from rdkit import Chem

POLYMER_ENDS = ("hydrogen", "methyl", "dummy")


def cap_ends(mol: Chem.Mol, ends: str = "hydrogen") -> Chem.Mol:
    """Replace every dummy atom (`*`) by the chosen end cap; ValueError if the result is invalid."""
    if ends not in POLYMER_ENDS:
        raise ValueError(f"unknown polymer end handling {ends!r}; allowed: {', '.join(POLYMER_ENDS)}")
    dummies = [a.GetIdx() for a in mol.GetAtoms() if a.GetAtomicNum() == 0]
    if not dummies or ends == "dummy":
        return mol
    rw = Chem.RWMol(mol)
    for idx in dummies:
        atom = rw.GetAtomWithIdx(idx)
        atom.SetAtomicNum(6 if ends == "methyl" or atom.GetDegree() > 1 else 1)
        atom.SetIsotope(0)
        atom.SetNoImplicit(False)
        atom.SetNumExplicitHs(0)
    out = rw.GetMol()
    if ends == "hydrogen":
        out = Chem.RemoveHs(out, sanitize=False)
    Chem.SanitizeMol(out)
    return out
