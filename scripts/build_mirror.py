#!/usr/bin/env python
"""Build an offline mirror (see matlib/sources/mirror.py for its layout) for `matlib data refresh --mirror DIR`.

python scripts/build_mirror.py --from-service OUT [--source mp --source oqmd ...]
    Records a mirror from the real services once (needs internet; MP needs MP_API_KEY): it runs the crawlers
    with their default options through a recording transport, so the mirror holds exactly the pages and files
    a default refresh requests (the QM9 files are checked against their documented sha256 on the way).

python scripts/build_mirror.py --from-shared DIR OUT [--rows N]
    Builds a mirror from the workshop's tables (DIR, default ../shared/data relative to the repository), each in
    its service's documented format: MP summary documents from the mp/ tables, OQMD formationenergy pages from
    oqmd/oqmd_bandgap.csv, AFLUX entries from aflow/, the QM9 tarball and uncharacterized.txt from qm9/. It runs
    the same crawlers against an in-process emulation of each service and records their requests.
    What the tables lack is made up and said so: ids (MP material_id `shared-<table>-<row>`, OQMD entry_id =
    row + 1, AFLOW auid from the table and row); QM9 geometry (qm9.csv.gz has none: atom lines carry the
    elements of the InChI formula with `nan` coordinates and charges, and the frequency line is empty, except
    for molecules whose original .xyz (qm9/raw) or geometry (qm9_geometry_sample.csv.gz) is there); and QM9's
    uncharacterized list, derived as the indices missing from qm9.csv.gz (which holds the 130,831 molecules
    that passed the authors' check), so the CSV must be complete or a prefix (--rows).
"""

from __future__ import annotations

import argparse
import ast
import csv
import gzip
import hashlib
import io
import re
import sys
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from matlib.sources import get_source  # noqa: E402
from matlib.sources.base import refresh_source  # noqa: E402
from matlib.sources.mirror import RecordingTransport  # noqa: E402
from matlib.sources.qm9 import EXCLUDED_ID, TARBALL_ID  # noqa: E402
from matlib.store import Store  # noqa: E402

FAST = {"rate_per_second": None, "backoff_initial": 0.01, "backoff_max": 0.05}
MP_TABLES = [  # (table(s) sharing row order, summary fields they fill)
    (("matbench_mp_e_form",), ("formation_energy_per_atom",)),
    (("matbench_mp_gap",), ("band_gap",)),
    (("mp_e_hull", "mp_mu_b"), ("energy_above_hull", "total_magnetization")),
    (("mp_bulk_modulus",), ("bulk_modulus",)),
    (("mp_shear_modulus",), ("shear_modulus",)),
    (("mp_elastic_anisotropy",), ("universal_anisotropy",)),
    (("matbench_dielectric",), ("n",)),
]
QM9_COLUMNS = [
    "RotA_GHz",
    "RotB_GHz",
    "RotC_GHz",
    "Dipole_debye",
    "Polarizability_bohr3",
    "HOMO_au",
    "LUMO_au",
    "HOMO_LUMO_gap_au",
    "R2_bohr2",
    "ZPVE_au",
    "InternalEnergy_0K_au",
    "InternalEnergy_298K_au",
    "Enthalpy_298K_au",
    "GibbsFreeEnergy_298K_au",
    "Heatcapacity_Cv_cal_mol_K",
]


def read_table(path: Path, rows: int | None) -> list[dict]:
    """The first rows of a CSV (optionally .gz) as dicts."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", newline="") as f:
        out = []
        for i, r in enumerate(csv.DictReader(f)):
            if rows is not None and i >= rows:
                break
            out.append(r)
        return out


def num(text: str) -> float | None:
    """A CSV number, None when empty."""
    return float(text) if text not in ("", None) else None


# ---- records from the tables --------------------------------------------------------------------------------
def mp_docs(root: Path, rows: int | None = None) -> list[dict]:
    """MP summary documents (fields as in the summary endpoint; moduli as {"vrh": GPa})."""
    fields = [
        "formation_energy_per_atom",
        "band_gap",
        "energy_above_hull",
        "density",
        "total_magnetization",
        "bulk_modulus",
        "shear_modulus",
        "universal_anisotropy",
        "n",
    ]
    docs = []
    for tables, names in MP_TABLES:
        columns = [read_table(root / "mp" / f"{t}.csv", rows) for t in tables]
        for i, group in enumerate(zip(*columns)):
            doc: dict[str, Any] = {
                "material_id": f"shared-{tables[0]}-{i:06d}",
                "formula_pretty": group[0]["formula"],
                "structure": None,
                **{f: None for f in fields},
            }
            for name, r in zip(names, group):
                value = num(r["target"])
                doc[name] = {"vrh": value} if name in ("bulk_modulus", "shear_modulus") else value
            docs.append(doc)
    return docs


def oqmd_entries(root: Path, rows: int | None = None) -> list[dict]:
    """OQMD formationenergy entries (band gap from the table; the other fields unknown)."""
    return [
        {
            "name": r["formula"],
            "entry_id": i + 1,
            "delta_e": None,
            "band_gap": num(r["target"]),
            "stability": None,
            "volume": None,
            "natoms": None,
            "spacegroup": None,
        }
        for i, r in enumerate(read_table(root / "oqmd" / "oqmd_bandgap.csv", rows))
    ]


def aflow_entries(root: Path, rows: int | None = None) -> list[dict]:
    """AFLUX entries: one per AEL row (the three AEL tables share their row order), one per band-gap and energy
    row."""

    def auid(table: str, i: int) -> str:
        return "aflow:" + hashlib.sha256(f"{table}:{i}".encode()).hexdigest()[:16]

    out = []
    ael = zip(
        *(
            read_table(root / "aflow" / f"{t}.csv", rows)
            for t in ("ael_bulk_modulus_vrh", "ael_shear_modulus_vrh", "ael_debye_temperature")
        )
    )
    for i, (b, g, d) in enumerate(ael):
        out.append(
            {
                "auid": auid("ael", i),
                "compound": b["formula"],
                "ael_bulk_modulus_vrh": num(b["target"]),
                "ael_shear_modulus_vrh": num(g["target"]),
                "ael_debye_temperature": num(d["target"]),
            }
        )
    for table in ("Egap", "energy_atom"):
        for i, r in enumerate(read_table(root / "aflow" / f"{table}.csv", rows)):
            out.append({"auid": auid(table, i), "compound": r["formula"], table: num(r["target"])})
    return out


def inchi_symbols(inchi: str, n_atoms: int) -> list[str]:
    """Element symbols from an InChI's formula layer, hydrogens evened up to n_atoms (charged layers)."""
    layer = inchi.split("/")[1] if "/" in inchi else ""
    symbols = [el for el, k in re.findall(r"([A-Z][a-z]?)(\d*)", layer) for _ in range(int(k or 1))]
    heavy = [s for s in symbols if s != "H"]
    return heavy + ["H"] * max(0, n_atoms - len(heavy)) if len(symbols) != n_atoms else symbols


def qm9_xyz(row: dict, geometry: dict | None = None) -> str:
    """One molecule in the official QM9 .xyz format (see the module docstring for what is made up)."""
    n = int(row["n_atoms"])
    lines = [str(n), "gdb " + row["index"] + "\t" + "\t".join(row[c] for c in QM9_COLUMNS) + "\t"]
    if geometry:
        # Python literals (the sample writes some numbers as '1429.', which JSON does not accept)
        symbols, xyz, charges, freqs = (
            ast.literal_eval(geometry[c]) for c in ("Elements", "XYZ_Ang", "Mulliken_pop", "Harmonic_Freq_cmi")
        )
    else:
        symbols, xyz, charges, freqs = inchi_symbols(row["inchi"], n), [["nan"] * 3] * n, ["nan"] * n, []
    lines += [f"{s}\t{x[0]}\t{x[1]}\t{x[2]}\t{q}" for s, x, q in zip(symbols, xyz, charges)]
    lines += ["\t".join(map(str, freqs)), f"{row['smiles']}\t{row['smiles']}", f"{row['inchi']}\t{row['inchi']}"]
    return "\n".join(lines) + "\n"


def qm9_files(root: Path, rows: int | None = None) -> tuple[bytes, bytes]:
    """(dsgdb9nsd.xyz.tar.bz2, uncharacterized.txt) from qm9.csv.gz (+ raw .xyz files and geometry sample)."""
    table = read_table(root / "qm9" / "qm9.csv.gz", rows)
    sample = root / "qm9" / "qm9_geometry_sample.csv.gz"
    geometry = {int(r["Index"]): r for r in read_table(sample, None)} if sample.is_file() else {}
    raw = {int(p.stem.rsplit("_", 1)[1]): p.read_bytes() for p in sorted((root / "qm9" / "raw").glob("*.xyz"))}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:bz2") as tar:
        for r in table:
            index = int(r["index"])
            data = raw.get(index) or qm9_xyz(r, geometry.get(index)).encode()
            info = tarfile.TarInfo(f"dsgdb9nsd_{index:06d}.xyz")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    present = {int(r["index"]) for r in table}
    missing = [i for i in range(1, max(present) + 1) if i not in present]
    head = (
        "\n\n\n\n  Indices of the QM9 molecules missing from qm9.csv.gz (which holds those that passed the QM9 "
        "authors' consistency check):\n  the uncharacterized molecules, derived by matlib's build_mirror.py; "
        "SMILES columns unknown.\n\n" + "=" * 110 + "\n#   Index   GDB17 SMILES   SMILES for B3LYP XYZ   "
        "SMILES for Corina XYZ   D_IJ\n" + "=" * 110 + "\n"
    )
    body = "".join(f"{i:8d}   -   -   -   nan\n" for i in missing)
    return buf.getvalue(), (head + body + "=" * 110 + "\n").encode()


# ---- the services' envelopes ----------------------------------------------------------------------------------
_ORDERS: dict[tuple[int, str], list] = {}


def _sorted(docs: list, keys: str) -> list:
    """docs ordered by comma-separated keys ('-' for descending), cached per listing and order (every page of a
    crawl asks for the same order)."""
    cached = _ORDERS.get((id(docs), keys))
    if cached is None or len(cached) != len(docs):
        cached = list(docs)
        for key in reversed([k for k in keys.split(",") if k]):
            cached.sort(key=lambda d: str(d.get(key.lstrip("-")) or ""), reverse=key.startswith("-"))
        _ORDERS[(id(docs), keys)] = cached
    return cached


def mp_page(docs: list, q: dict) -> dict:
    """MP API envelope: data, meta.total_doc; _sort_fields, _fields, _skip, _limit."""
    ordered = _sorted(docs, q.get("_sort_fields", ""))
    skip, limit = int(q.get("_skip", 0)), int(q.get("_limit", 100))
    fields = q["_fields"].split(",") if q.get("_fields") else None
    page = [{k: v for k, v in d.items() if fields is None or k in fields} for d in ordered[skip : skip + limit]]
    return {"data": page, "meta": {"api_version": "mirror", "total_doc": len(docs), "max_limit": 1000}}


def oqmd_page(entries: list[dict], q: dict, url: str) -> dict:
    """OQMD REST envelope (qmpy): links.next, data, meta.data_available; limit, offset, fields."""
    offset, limit = int(q.get("offset", 0)), int(q.get("limit", 50))
    fields = q["fields"].split(",") if q.get("fields") else None
    page = [{k: v for k, v in e.items() if fields is None or k in fields} for e in entries[offset : offset + limit]]
    more = offset + limit < len(entries)
    base = url.split("?")[0]
    nxt = f"{base}?{urlencode({**q, 'offset': offset + limit}, safe=',')}" if more else None
    prev = f"{base}?{urlencode({**q, 'offset': max(0, offset - limit)}, safe=',')}" if offset else None
    return {
        "links": {
            "next": nxt,
            "previous": prev,
            "base_url": {"href": base.rsplit("/", 1)[0], "meta": {"_oqmd_version": "1.0"}},
        },
        "resource": {},
        "data": page,
        "meta": {
            "query": {"representation": url},
            "api_version": "1.0",
            "data_returned": len(page),
            "data_available": len(entries),
            "more_data_available": bool(nxt or prev),
        },
        "response_message": "OK",
    }


def aflux_page(entries: list, raw_query: str) -> list[dict]:
    """AFLUX answer: entries sorted by the first keyword, with the keywords asked for, $paging(n,k)."""
    query = unquote(raw_query)
    m = re.search(r"\$paging\((\d+),(\d+)\)", query)
    page, size = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
    keys = [
        re.match(r"[A-Za-z0-9_]+", w).group(0) for w in re.split(r",(?![^(]*\))", query) if w and not w.startswith("$")
    ]
    ordered = _sorted(entries, keys[0] if keys else "auid")
    chosen = ordered if page == 0 else ordered[(page - 1) * size : page * size]
    return [{k: e.get(k) for k in keys} for e in chosen]


def emulator(root: Path, rows: int | None) -> tuple[Callable[[httpx.Request], httpx.Response], dict]:
    """An httpx handler answering MP, OQMD, AFLUX and figshare requests from the tables, and the QM9 sha256s."""
    mp, oqmd, aflow = mp_docs(root, rows), oqmd_entries(root, rows), aflow_entries(root, rows)
    tarball, excluded = qm9_files(root, rows)

    def handle(request: httpx.Request) -> httpx.Response:
        u = urlsplit(str(request.url))
        q = dict(parse_qsl(u.query, keep_blank_values=True))
        if u.path.startswith("/materials/summary"):
            return httpx.Response(200, json=mp_page(mp, q))
        if u.path.startswith("/oqmdapi/formationenergy"):
            return httpx.Response(200, json=oqmd_page(oqmd, q, str(request.url)))
        if u.path.startswith("/API/aflux"):
            return httpx.Response(200, json=aflux_page(aflow, u.query))
        if u.path.endswith(f"/{TARBALL_ID}"):
            return httpx.Response(200, content=tarball, headers={"Content-Type": "application/x-bzip2"})
        if u.path.endswith(f"/{EXCLUDED_ID}"):
            return httpx.Response(200, content=excluded, headers={"Content-Type": "text/plain"})
        return httpx.Response(404, json={"detail": "not in the tables"})

    sums = {
        "sha256": hashlib.sha256(tarball).hexdigest(),
        "uncharacterized_sha256": hashlib.sha256(excluded).hexdigest(),
    }
    return handle, sums


SOURCES = ("mp", "oqmd", "aflow", "qm9")


def record(
    out: Path, inner: httpx.BaseTransport, origin: str, sources: tuple[str, ...], options: dict, note: str
) -> Path:
    """Run each source's crawl through a recording transport into out; mirror.json is written last."""
    rec = RecordingTransport(out, inner=inner, origin=origin)
    with tempfile.TemporaryDirectory() as tmp:
        for source in sources:
            opts = {**FAST, **options.get(source, {})}
            # never through $MATLIB_MIRROR: the requests go to the service (or the emulation) and are recorded
            ds = refresh_source(Store(Path(tmp) / "store"), get_source(source), None, None, {**opts, "transport": rec})
            print(f"{source}: {ds.manifest['n_fetched']} records recorded ({ds.manifest['n_rows']} valid)")
    return rec.finish(note)


def build_from_shared(root: Path, out: Path, rows: int | None = None, sources: tuple[str, ...] = SOURCES) -> Path:
    """A mirror of the default refreshes, answered from the workshop's tables."""
    handle, sums = emulator(Path(root), rows)
    options = {"mp": {"api_key": "not-needed-for-the-emulation"}, "qm9": sums}
    return record(
        Path(out),
        httpx.MockTransport(handle),
        "shared",
        sources,
        options,
        f"built from tables in {Path(root).name}/ (rows per table: {rows or 'all'}); ids and QM9 "
        f"geometry made up where the tables have none (see scripts/build_mirror.py)",
    )


def build_from_service(out: Path, sources: tuple[str, ...] = SOURCES) -> Path:
    """A mirror recorded from the real services (default options of each crawler)."""
    return record(Path(out), httpx.HTTPTransport(retries=2), "service", sources, {}, "recorded from the real services")


def main(argv: list[str] | None = None) -> int:
    """Command line (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--from-service", action="store_true", help="record from the real services (internet)")
    mode.add_argument(
        "--from-shared",
        metavar="DIR",
        nargs="?",
        const=str(REPO.parent / "shared" / "data"),
        help="build from the workshop's tables (default ../shared/data)",
    )
    p.add_argument("out", type=Path, help="mirror folder to write")
    p.add_argument("--source", action="append", choices=SOURCES, help="only these sources (repeatable)")
    p.add_argument("--rows", type=int, default=None, help="--from-shared: only the first N rows of each table")
    a = p.parse_args(argv)
    sources = tuple(a.source or SOURCES)
    path = (
        build_from_service(a.out, sources)
        if a.from_service
        else build_from_shared(Path(a.from_shared), a.out, a.rows, sources)
    )
    print(f"mirror complete: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
