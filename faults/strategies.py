"""Hypothesis strategies for fault schedules, for weir's tests and for users' own `@given` tests.

    from hypothesis import given
    from faults.strategies import crashes

    @given(crashes(max_at="300ms"))
    def test_my_pipeline_survives(faults):
        assert weir.run(my_scenario.with_faults(faults)).verdict("exactly_once").held
"""

from __future__ import annotations

from hypothesis import strategies as st

from sim.scenario import NODES, Fault
from sim.units import parse_duration

__all__ = ["crash", "crashes"]


def crash(nodes: tuple[str, ...] = NODES, max_at: int | str = "300ms", max_down: int | str = "300ms"):
    """One crash-restart of one of `nodes`, at a time up to `max_at`, down for 1us up to `max_down`."""
    return st.builds(Fault, kind=st.just("crash"), node=st.sampled_from(nodes),
                     at=st.integers(0, parse_duration(max_at)), down_for=st.integers(1, parse_duration(max_down)))


def crashes(nodes: tuple[str, ...] = NODES, max_at: int | str = "300ms", max_down: int | str = "300ms",
            min_size: int = 1, max_size: int = 3):
    """A schedule of crash-restarts (a tuple of Faults), shrinking towards fewer, earlier, shorter ones."""
    return st.lists(crash(nodes, max_at, max_down), min_size=min_size, max_size=max_size).map(tuple)
