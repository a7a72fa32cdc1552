"""Content hashes are stable and sensitive to content."""

from __future__ import annotations

import hashlib
from pathlib import Path

from matlib.hashing import canonical_json, sha256_file, spec_hash


def test_spec_hash_ignores_key_order_but_not_values() -> None:
    assert spec_hash({"a": 1, "b": [1, 2]}) == spec_hash({"b": [1, 2], "a": 1})
    assert spec_hash({"a": 1}) != spec_hash({"a": 2})
    assert len(spec_hash({"a": 1})) == 16
    assert canonical_json({"b": 1, "a": 2}) == '{"a":2,"b":1}'


def test_sha256_file_matches_hashlib(tmp_path: Path) -> None:
    data = bytes(range(256)) * 5000
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert sha256_file(path, chunk=4096) == hashlib.sha256(data).hexdigest()
