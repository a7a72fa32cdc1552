"""QM9: download the official tarball (dsgdb9nsd.xyz.tar.bz2, figshare file 3195389) and the authors' list of
3,054 uncharacterized molecules (uncharacterized.txt, figshare file 3195404), check both, parse the .xyz files.

Only HTTP 200 with a bzip2 body counts as the tarball (figshare's web host answers scripts with an empty 202
bot challenge). Both files are checked against their documented sha256 when they come from figshare (or from a
mirror recorded from it); otherwise their sha256 is recorded in the crawl checkpoint and checked again before
the files are read. Molecules on the authors' list are quarantined with that reason (uncharacterized='drop',
the default) or kept with uncharacterized=True (uncharacterized='flag')."""

from __future__ import annotations

import json
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO
from urllib.parse import urlparse

import numpy as np
import pandas as pd

from matlib.datasets.schema import empty_quarantine
from matlib.errors import MatlibError
from matlib.sources.base import PagedSource, Rows, public_options, reject
from matlib.sources.crawl import FileRequest, file_sha256
from matlib.sources.redact import clean_url
from matlib.store import Store

HARTREE_EV = 27.211386245988
TARBALL = "dsgdb9nsd.xyz.tar.bz2"
EXCLUDED = "uncharacterized.txt"
TARBALL_ID, EXCLUDED_ID = "3195389", "3195404"
DEFAULT_URL = f"https://ndownloader.figshare.com/files/{TARBALL_ID}"
# size and sha256 of the two figshare files as published with TensorFlow Datasets' QM9 builder (checksums.tsv)
KNOWN_FILES = {
    TARBALL_ID: (86144227, "3a63848ac80691bdb8d41834b575afad345b9300d7a2db0c38adb7f6eaa8360c"),
    EXCLUDED_ID: (486752, "3aa5115d540b356de94791d4a74c3bf1ed91c469ecf52a4f5d7cc0506fe02e24"),
}
N_MOLECULES, N_UNCHARACTERIZED = 133885, 3054
_FIGSHARE_FILE = re.compile(r"/(?:ndownloader/)?files?/(?:download/)?(\d+)/?$")
UNCHARACTERIZED_MODES = ("drop", "flag")

# the 15 properties of the 'gdb N' line, in file order: (source name, unit in the file, schema column)
PROPERTIES = [
    ("A", "GHz", "A_GHz"),
    ("B", "GHz", "B_GHz"),
    ("C", "GHz", "C_GHz"),
    ("mu", "D", "mu_debye"),
    ("alpha", "bohr3", "alpha_bohr3"),
    ("homo", "Ha", "homo_eV"),
    ("lumo", "Ha", "lumo_eV"),
    ("gap", "Ha", "gap_eV"),
    ("r2", "bohr2", "r2_bohr2"),
    ("zpve", "Ha", "zpve_eV"),
    ("U0", "Ha", "U0_eV"),
    ("U", "Ha", "U_eV"),
    ("H", "Ha", "H_eV"),
    ("G", "Ha", "G_eV"),
    ("Cv", "cal/molK", "Cv_cal_molK"),
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


def _finite(values: list) -> list:
    """Numbers with NaN/inf (unknown, e.g. in a mirror built without geometry) as None (JSON null)."""
    return [_finite(v) if isinstance(v, list) else (v if np.isfinite(v) else None) for v in values]


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
    for line in lines[2 : 2 + n]:
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
    rec = {
        "record_id": f"dsgdb9nsd_{index:06d}",
        "input": smiles[0],
        "smiles_relaxed": smiles[1] if len(smiles) > 1 else smiles[0],
        "inchi": inchi[0],
        "n_atoms": n,
        "atoms_json": json.dumps({"symbols": symbols, "xyz_angstrom": _finite(xyz), "mulliken_e": _finite(charges)}),
        "frequencies_json": json.dumps(_finite(freqs)),
    }
    rec.update(dict(zip(COLUMNS, values.tolist())))
    return rec


def figshare_file_id(url: str) -> str | None:
    """The figshare file id of a download URL (ndownloader.figshare.com/files/N, any host's /ndownloader/files/N,
    api.figshare.com/v2/file/download/N), else None."""
    m = _FIGSHARE_FILE.search(urlparse(url).path)
    return m.group(1) if m and "figshare" in (urlparse(url).hostname or "") else None


def excluded_url(url: str) -> str | None:
    """The URL of the uncharacterized list beside a tarball URL that names figshare file 3195389 by id."""
    path = urlparse(url).path
    if re.search(rf"/{TARBALL_ID}/?$", path):
        return re.sub(rf"/{TARBALL_ID}(/?)(\?|$)", rf"/{EXCLUDED_ID}\1\2", url, count=1)
    return None


def is_bz2(head: bytes) -> str | None:
    """None for a bzip2 stream ('BZh' + block size), else what is wrong."""
    if head[:3] == b"BZh" and head[3:4].isdigit():
        return None
    kind = "an HTML page" if head.lstrip()[:1] == b"<" else "not bzip2"
    return f"the body is {kind} (starts {head[:16]!r}), not the .tar.bz2"


def is_text_list(head: bytes) -> str | None:
    """None for a text file, else what is wrong."""
    return "the body is not text" if b"\x00" in head else None


def parse_uncharacterized(text: str) -> set[int]:
    """The molecule indices of QM9's uncharacterized.txt: a description, then a table between '=' rules whose
    rows start with the index (then the GDB17 SMILES, the SMILES of the B3LYP and of the Corina geometry, D_IJ)."""
    ids: list[int] = []
    rules = 0
    for line in text.splitlines():
        parts = line.split()
        if line.strip() and set(line.strip()) == {"="}:
            rules += 1
        elif parts and parts[0].isdigit() and rules >= 2:
            ids.append(int(parts[0]))
    if rules < 2:
        raise ValueError("no table between '=' rules")
    bad = [i for i in ids if not 1 <= i <= N_MOLECULES]
    if bad:
        raise ValueError(f"index {bad[0]} is outside 1..{N_MOLECULES}")
    return set(ids)


def iter_tar_xyz(fileobj: IO[bytes]) -> Iterator[tuple[str, str]]:
    """(member name, text) for every .xyz member, streaming (bz2/gz/plain detected)."""
    try:
        with tarfile.open(fileobj=fileobj, mode="r|*") as tar:
            for member in tar:
                if member.isfile() and member.name.endswith(".xyz"):
                    f = tar.extractfile(member)
                    if f is not None:
                        yield member.name, f.read().decode("utf-8", errors="replace")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise MatlibError(f"qm9: the tarball cannot be read ({type(exc).__name__}: {exc})") from None


class Qm9(PagedSource):
    """The QM9 tarball -> molecule records (energies in eV, the unit the schema names)."""

    name = "qm9"
    kind = "molecule"
    default_url = DEFAULT_URL

    def check_options(self, options: dict) -> None:
        """uncharacterized must be 'drop' or 'flag'."""
        mode = options.get("uncharacterized", "drop")
        if mode not in UNCHARACTERIZED_MODES:
            raise MatlibError(f"qm9: uncharacterized must be one of {', '.join(UNCHARACTERIZED_MODES)}, got {mode!r}")

    def files(self, url: str, options: dict) -> list[FileRequest]:
        """The tarball and (when known) the uncharacterized list, each with its expected sha256."""
        mirror = options.get("mirror")
        documented = mirror is None or getattr(mirror, "origin", "") == "service"

        def expected(u: str, explicit: str | None) -> str | None:
            fid = figshare_file_id(u)
            return explicit or (KNOWN_FILES[fid][1] if documented and fid in KNOWN_FILES else None)

        out = [FileRequest(url, TARBALL, expected(url, options.get("sha256")), is_bz2)]
        list_url = options.get("uncharacterized_url") or excluded_url(url)
        if list_url:
            out.append(
                FileRequest(list_url, EXCLUDED, expected(list_url, options.get("uncharacterized_sha256")), is_text_list)
            )
        return out

    def fetch(self, store: Store, url: str, limit: int | None, options: dict) -> tuple[list[dict], dict]:
        """Download the tarball and the list into a snapshot (resumable, checksummed), then stream-parse up to
        limit molecules."""
        identity = {"url": clean_url(url), "options": public_options(options)}
        with self.open_crawler(store, url, identity, options) as crawler:
            result = crawler.crawl_files(self.files(url, options))
        state = json.loads((result.snapshot / "checkpoint.json").read_text())
        for path in result.pages:  # the checkpoint's sha256 is checked again before the files are trusted
            if file_sha256(path) != state["files"][path.name]["sha256"]:
                raise MatlibError(f"qm9: {path.name} in snapshot {result.snapshot.name} changed after download")
        excluded: set[int] | None = None
        if len(result.pages) > 1:
            try:
                excluded = parse_uncharacterized(result.pages[1].read_text(encoding="utf-8", errors="replace"))
            except ValueError as exc:
                raise MatlibError(f"qm9: {EXCLUDED} is not the QM9 list of uncharacterized molecules ({exc})") from None
        records: list[dict] = []
        with open(result.pages[0], "rb") as f:
            for name, text in iter_tar_xyz(f):
                if limit is not None and len(records) >= limit:
                    break
                m = re.search(r"(\d+)\.xyz$", name)
                listed = None if excluded is None or not m else int(m.group(1)) in excluded
                records.append({"member": name, "text": text, "uncharacterized": listed})
        files = {
            k: {"sha256": v["sha256"], "size": v["size"], "checked_against": v.get("expected_sha256")}
            for k, v in state["files"].items()
        }
        return records, {
            "snapshot": result.snapshot.name,
            "resumed": result.resumed,
            "files": files,
            "n_uncharacterized_listed": None if excluded is None else len(excluded),
            **result.stats,
        }

    def to_rows(self, records: list[dict], options: dict) -> Rows:
        """Parse each member; malformed files are quarantined with the parse error, molecules on the authors'
        uncharacterized list are quarantined (or flagged) with that reason."""
        flag = options.get("uncharacterized", "drop") == "flag"
        rows, rejected = [], []
        for i, r in enumerate(records):
            try:
                rec = parse_xyz(r["text"])
            except (ValueError, IndexError) as exc:
                rejected.append(reject(i, Path(r["member"]).stem, "xyz", f"malformed .xyz: {exc}", r["member"]))
                continue
            listed = bool(r.get("uncharacterized"))
            if listed and not flag:
                rejected.append(
                    reject(
                        i,
                        rec["record_id"],
                        "record_id",
                        "listed by the QM9 authors as uncharacterized (its relaxed geometry does not match its SMILES)",
                        rec["input"],
                    )
                )
                continue
            rows.append({"_row": i, **rec, **({"uncharacterized": bool(listed)} if flag else {})})
        extras = [
            "smiles_relaxed",
            "inchi",
            "n_atoms",
            "atoms_json",
            "frequencies_json",
            *(["uncharacterized"] if flag else []),
        ]
        frame = pd.DataFrame(rows) if rows else pd.DataFrame(columns=["_row", "record_id", "input", *COLUMNS, *extras])
        return Rows(frame, list(COLUMNS), extras, pd.DataFrame(rejected) if rejected else empty_quarantine())
