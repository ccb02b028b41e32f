"""Checking finished runs: invariant checkers, verdicts, and the tables that show them."""

from weir.analysis.checkers import INVARIANTS, Verdict, check, drained, exactly_once, no_duplicates, no_loss

__all__ = ["INVARIANTS", "Verdict", "check", "drained", "exactly_once", "no_duplicates", "no_loss"]
