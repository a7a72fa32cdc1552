"""QM9: stream the official tarball (dsgdb9nsd.xyz.tar.bz2) and parse the original .xyz files."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import IO, Iterator

import numpy as np
import pandas as pd

from matlib.datasets.schema import empty_quarantine
from matlib.sources.base import PagedSource, Rows, crawl_config, public_options, reject
from matlib.sources.crawl import Crawler
from matlib.store import Store

HARTREE_EV = 27.211386245988
TARBALL = "dsgdb9nsd.xyz.tar.bz2"
DEFAULT_URL = "https://springernature.figshare.com/ndownloader/files/3195389"

# the 15 properties of the 'gdb N' line, in file order: (source name, unit in the file, schema column)
PROPERTIES = [
    ("A", "GHz", "A_GHz"), ("B", "GHz", "B_GHz"), ("C", "GHz", "C_GHz"), ("mu", "D", "mu_debye"),
    ("alpha", "bohr3", "alpha_bohr3"), ("homo", "Ha", "homo_eV"), ("lumo", "Ha", "lumo_eV"),
    ("gap", "Ha", "gap_eV"), ("r2", "bohr2", "r2_bohr2"), ("zpve", "Ha", "zpve_eV"), ("U0", "Ha", "U0_eV"),
    ("U", "Ha", "U_eV"), ("H", "Ha", "H_eV"), ("G", "Ha", "G_eV"), ("Cv", "cal/molK", "Cv_cal_molK"),
]


def _unit_factor(file_unit: str, column: str) -> float:
    """Conversion from the file's unit to the unit the schema column names (Ha -> eV)."""
    if file_unit == "Ha" and column.endswith("_eV"):
        return HARTREE_EV
    return 1.0


FACTORS = np.array([_unit_factor(u, c) for _, u, c in PROPERTIES])
COLUMNS = [c for _, _, c in PROPERTIES]


def qm9_float(text: str) -> float:
    """A QM9 number; the files write some exponents Mathematica-style ('1.2*^-6')."""
    return float(text.replace("*^", "e"))


def parse_xyz(text: str) -> dict:
    """One QM9 .xyz file -> a record dict (properties in schema units); raises ValueError when malformed."""
    lines = text.splitlines()
    if len(lines) < 5:
        raise ValueError(f"only {len(lines)} lines")
    n = int(lines[0].strip())
    head = lines[1].split()
    if len(head) < 17 or head[0] != "gdb":
        raise ValueError("second line is not 'gdb <index> <15 properties>'")
    index = int(head[1])
    values = np.array([qm9_float(v) for v in head[2:17]]) * FACTORS
    if len(lines) < n + 5:
        raise ValueError(f"expected {n} atom lines, frequencies, SMILES and InChI; got {len(lines)} lines")
    symbols, xyz, charges = [], [], []
    for line in lines[2:2 + n]:
        parts = line.split()
        if len(parts) != 5:
            raise ValueError(f"bad atom line {line.strip()!r}")
        symbols.append(parts[0])
        xyz.append([qm9_float(v) for v in parts[1:4]])
        charges.append(qm9_float(parts[4]))
    freqs = [qm9_float(v) for v in lines[2 + n].split()]
    smiles = lines[3 + n].split()
    inchi = lines[4 + n].split()
    if not smiles or not inchi:
        raise ValueError("missing SMILES or InChI line")
    rec = {"record_id": f"dsgdb9nsd_{index:06d}", "input": smiles[0],
           "smiles_relaxed": smiles[1] if len(smiles) > 1 else smiles[0], "inchi": inchi[0], "n_atoms": n,
           "atoms_json": json.dumps({"symbols": symbols, "xyz_angstrom": xyz, "mulliken_e": charges}),
           "frequencies_json": json.dumps(freqs)}
    rec.update(dict(zip(COLUMNS, values.tolist())))
    return rec


def iter_tar_xyz(fileobj: IO[bytes]) -> Iterator[tuple[str, str]]:
    """(member name, text) for every .xyz member, streaming (bz2/gz/plain detected)."""
    with tarfile.open(fileobj=fileobj, mode="r|*") as tar:
        for member in tar:
            if member.isfile() and member.name.endswith(".xyz"):
                f = tar.extractfile(member)
                if f is not None:
                    yield member.name, f.read().decode("utf-8", errors="replace")


class Qm9(PagedSource):
    """The QM9 tarball -> molecule records (energies in eV, the unit the schema names)."""

    name = "qm9"
    kind = "molecule"
    default_url = DEFAULT_URL

    def fetch(self, store: Store, url: str, limit: int | None, options: dict) -> tuple[list[dict], dict]:
        """Download the tarball into a snapshot (resumable), then stream-parse up to limit molecules."""
        config = crawl_config(options)
        identity = {"url": url, "options": public_options(options)}
        with Crawler(store, self.name, identity, config, transport=options.get("transport")) as crawler:
            result = crawler.crawl_file(url, TARBALL)
        records: list[dict] = []
        with open(result.pages[0], "rb") as f:
            for name, text in iter_tar_xyz(f):
                if limit is not None and len(records) >= limit:
                    break
                records.append({"member": name, "text": text})
        return records, {"snapshot": result.snapshot.name, "resumed": result.resumed, **result.stats}

    def to_rows(self, records: list[dict], options: dict) -> Rows:
        """Parse each member; malformed files are quarantined with the parse error."""
        rows, rejected = [], []
        for i, r in enumerate(records):
            try:
                rows.append({"_row": i, **parse_xyz(r["text"])})
            except (ValueError, IndexError) as exc:
                rejected.append(reject(i, Path(r["member"]).stem, "xyz", f"malformed .xyz: {exc}", r["member"]))
        extras = ["smiles_relaxed", "inchi", "n_atoms", "atoms_json", "frequencies_json"]
        frame = pd.DataFrame(rows) if rows else pd.DataFrame(columns=["_row", "record_id", "input", *COLUMNS, *extras])
        return Rows(frame, list(COLUMNS), extras, pd.DataFrame(rejected) if rejected else empty_quarantine())
