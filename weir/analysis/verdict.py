"""What a checker returns: a verdict with its evidence, and the few helpers every checker shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

__all__ = ["Verdict", "RunLike", "SHOW_IDS"]

SHOW_IDS = 5  # how many example record ids a verdict carries


class RunLike(Protocol):
    """What a checker reads: `source` and `sink` columns (with "record_id") and `status`."""

    source: dict[str, np.ndarray]
    sink: dict[str, np.ndarray]
    status: str


@dataclass(frozen=True)
class Verdict:
    """Whether one invariant held in one run, with the evidence (JSON-able: ints, strings, lists)."""

    invariant: str
    held: bool
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"invariant": self.invariant, "held": self.held, "summary": self.summary, "evidence": dict(self.evidence)}


def _first(ids: np.ndarray) -> list[int]:
    return [int(i) for i in ids[:SHOW_IDS]]
