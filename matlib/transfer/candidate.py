"""Candidate and member ids: the one place their string forms are written and parsed apart.

A transfer candidate is a frozen hidden layer of a library model, fed the target as is or clamped:
``<model_id>/h<layer>`` or ``<model_id>/h<layer>/c<clip>``. A direct candidate is a raw descriptor:
``direct:<descriptor name>:<descriptor hash>``. A composite candidate (several feature blocks side by side, see
matlib.transfer.composite) is ``composite:<name>``, e.g. ``composite:source+rdkit2d`` or ``composite:stack``.
A member (a candidate refined with one learner) is ``<candidate>|<learner>``. These strings are the keys of
ranking.parquet, refined.parquet and model.json.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from matlib.errors import MatlibError

DIRECT_PREFIX = "direct:"
COMPOSITE_PREFIX = "composite:"
_TRANSFER = re.compile(r"^(?P<model>.+)/h(?P<layer>\d+)(?:/c(?P<clip>[^/]+))?$")


def _float(text: str) -> float | None:
    """text as a float, None if it is not one."""
    try:
        return float(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class CandidateId:
    """One feature source: (model_id, layer, clip) of a frozen layer, or (descriptor, descriptor_hash) for direct."""

    model_id: str = ""
    layer: int = -1
    clip: float | None = None  # target inputs clamped to +-clip source standard deviations (None: as is)
    descriptor: str = ""  # direct candidates only: the descriptor's name
    descriptor_hash: str = ""  # ... and its hash
    composite: str = ""  # composite candidates only: the recipe's name

    @classmethod
    def direct(cls, descriptor: str, descriptor_hash: str) -> CandidateId:
        """The direct-learning candidate of one raw descriptor."""
        return cls(descriptor=descriptor, descriptor_hash=descriptor_hash)

    @classmethod
    def of_composite(cls, name: str) -> CandidateId:
        """The candidate of a composite feature recipe called name."""
        return cls(composite=name)

    @property
    def kind(self) -> str:
        """ "transfer" (a frozen layer of a library model), "direct" (a raw descriptor) or "composite"."""
        return "composite" if self.composite else "transfer" if self.model_id else "direct"

    def format(self) -> str:
        """The id's string form (ranking key)."""
        if self.kind == "composite":
            return f"{COMPOSITE_PREFIX}{self.composite}"
        if self.kind == "direct":
            return f"{DIRECT_PREFIX}{self.descriptor}:{self.descriptor_hash}"
        return f"{self.model_id}/h{self.layer}" + ("" if self.clip is None else f"/c{self.clip:g}")

    def __str__(self) -> str:
        return self.format()

    @classmethod
    def parse(cls, text: str) -> CandidateId:
        """The id written by `format` (one-line MatlibError for any other string)."""
        if text.startswith(COMPOSITE_PREFIX) and len(text) > len(COMPOSITE_PREFIX):
            return cls.of_composite(text[len(COMPOSITE_PREFIX) :])
        if text.startswith(DIRECT_PREFIX):
            name, sep, h = text[len(DIRECT_PREFIX) :].rpartition(":")
            if sep and h:
                return cls.direct(name, h)
        else:
            m = _TRANSFER.match(text)
            clip = _float(m["clip"]) if m and m["clip"] is not None else None
            if m and (m["clip"] is None or clip is not None):
                return cls(m["model"], int(m["layer"]), clip)
        raise MatlibError(f"not a candidate id: {text!r} (expected <model>/h<layer>[/c<clip>] or direct:<name>:<hash>)")


@dataclass(frozen=True)
class MemberKey:
    """One refined (candidate, learner) pair: a key of the out-of-fold pool and of a saved model's members."""

    candidate: str  # a CandidateId's string form
    learner: str

    def format(self) -> str:
        """The key's string form: ``<candidate>|<learner>``."""
        return f"{self.candidate}|{self.learner}"

    def __str__(self) -> str:
        return self.format()

    @classmethod
    def parse(cls, text: str) -> MemberKey:
        """The key written by `format` (one-line MatlibError for any other string)."""
        candidate, sep, learner = text.rpartition("|")
        if not sep or not candidate or not learner:
            raise MatlibError(f"not a member key: {text!r} (expected <candidate>|<learner>)")
        return cls(candidate, learner)

    @property
    def candidate_id(self) -> CandidateId:
        """The member's candidate, parsed."""
        return CandidateId.parse(self.candidate)


def candidate_of(member_key: str) -> str:
    """The candidate part of a member key string."""
    return MemberKey.parse(member_key).candidate
