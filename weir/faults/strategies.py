"""Hypothesis strategies for workloads and fault schedules, and scenarios as property tests.

For weir's own tests and for users' `@given` tests:

    from hypothesis import given
    from weir.faults.strategies import crashes, schedules

    @given(crashes(max_at="300ms"))
    def test_my_pipeline_survives(faults):
        assert weir.run(my_scenario.with_faults(faults)).verdict("exactly_once").held

    # or every claim of a scenario, under any schedule of these fault kinds:
    test_exactly_once = property_test("exactly_once_crash", kinds=("crash", "partition"), max_examples=20)

Schedules shrink towards fewer, earlier, shorter faults, so a failing example comes out small.
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import Phase, given, settings
from hypothesis.control import current_build_context
from hypothesis import strategies as st

from weir.sim.scenario.model import LINK_KINDS, NODES, Fault, Scenario, Workload
from weir.sim.kernel.units import parse_duration

__all__ = ["crash", "crashes", "crash_in_recovery", "fault", "schedules", "workloads", "property_test"]


def crash(nodes: tuple[str, ...] = NODES, max_at: int | str = "300ms", max_down: int | str = "300ms"):
    """One crash-restart of one of `nodes`, at a time up to `max_at`, down for 1us up to `max_down`."""
    return st.builds(Fault, kind=st.just("crash"), node=st.sampled_from(nodes),
                     at=st.integers(0, parse_duration(max_at)), down_for=st.integers(1, parse_duration(max_down)))


def crashes(nodes: tuple[str, ...] = NODES, max_at: int | str = "300ms", max_down: int | str = "300ms",
            min_size: int = 1, max_size: int = 3):
    """A schedule of crash-restarts (a tuple of Faults), shrinking towards fewer, earlier, shorter ones."""
    return st.lists(crash(nodes, max_at, max_down), min_size=min_size, max_size=max_size).map(tuple)


def crash_in_recovery(nodes: tuple[str, ...] = NODES, max_at: int | str = "300ms", max_down: int | str = "300ms",
                      restart_delay: int | str = "100ms"):
    """Two crash-restarts, the second within 5ms of the job coming back from the first (its crash,
    outage and `restart_delay`, the scenario's pipeline.restart_delay): while the restore recovers
    (a two-phase-commit sink's transactions, one call at a time)."""
    delay = parse_duration(restart_delay)

    def second(first: Fault):
        back = first.at + first.down_for + delay
        return st.builds(Fault, kind=st.just("crash"), node=st.sampled_from(nodes), at=st.integers(back, back + 5_000),
                         down_for=st.integers(1, parse_duration(max_down))).map(lambda f: (first, f))

    return crash(nodes, max_at, max_down).flatmap(second)


def fault(kinds: tuple[str, ...] = ("crash",), nodes: tuple[str, ...] = NODES, max_at: int | str = "300ms",
          max_down: int | str = "300ms"):
    """One fault of one of `kinds` (any of weir.sim.scenario.model.FAULT_KINDS): its node, time and the
    parameters its kind takes (peers and direction, a clock step, a slow-down factor)."""
    at, down = st.integers(0, parse_duration(max_at)), st.integers(1, parse_duration(max_down))

    def build(kind: str):
        if kind.startswith("sink_"):
            return st.builds(Fault, kind=st.just(kind), node=st.just("sink"), at=at, down_for=down,
                             slow_by=st.integers(0, 20_000))
        if kind.startswith("store_"):
            return st.builds(Fault, kind=st.just(kind), node=st.just("coordinator"), at=at, down_for=down,
                             slow_by=st.integers(0, 20_000))
        if kind in LINK_KINDS:
            return st.sampled_from(nodes).flatmap(lambda node: st.builds(
                Fault, kind=st.just(kind), node=st.just(node), at=at, down_for=down,
                peers=st.lists(st.sampled_from([n for n in nodes if n != node] or [node]), unique=True).map(
                    lambda ps: tuple(sorted(p for p in ps if p != node))),
                direction=st.sampled_from(("both", "outbound", "inbound")), slow_by=st.integers(0, 50_000),
                rate=st.floats(0, 1)))
        if kind == "late_burst":
            return st.builds(Fault, kind=st.just(kind), node=st.just("producer"), at=at, down_for=down,
                             slow_by=st.integers(0, 2_000_000))
        if kind == "partition_slow":  # partition 0 exists in every scenario
            return st.builds(Fault, kind=st.just(kind), node=st.just("broker"), at=at, down_for=down,
                             slow_by=st.integers(1, 100_000), partition=st.just(0))
        if kind == "clock_step":
            return st.builds(Fault, kind=st.just(kind), node=st.sampled_from(nodes), at=at,
                             by=st.integers(-2_000_000, 2_000_000))
        if kind == "slow":
            return st.builds(Fault, kind=st.just(kind), node=st.sampled_from(nodes), at=at, down_for=down,
                             factor=st.floats(1, 10))
        return st.builds(Fault, kind=st.just(kind), node=st.sampled_from(nodes), at=at, down_for=down)

    return st.sampled_from(kinds).flatmap(build)


def schedules(kinds: tuple[str, ...] = ("crash",), nodes: tuple[str, ...] = NODES, max_at: int | str = "300ms",
              max_down: int | str = "300ms", min_size: int = 0, max_size: int = 3):
    """A fault schedule of the given kinds, in time order."""
    return st.lists(fault(kinds, nodes, max_at, max_down), min_size=min_size, max_size=max_size).map(
        lambda fs: tuple(sorted(fs, key=lambda f: (f.at, f.node, f.kind))))


def workloads(max_records: int = 5_000):
    """Workloads: records, partitions, keys, batch sizes and out-of-order delays."""
    return st.builds(Workload, records=st.integers(1, max_records), partitions=st.integers(1, 8),
                     keys=st.integers(1, 200), produce_batch=st.integers(1, 500),
                     produce_interval=st.integers(100, 10_000), out_of_order=st.integers(0, 20_000))


def property_test(scenario: Scenario | str, kinds: tuple[str, ...] = ("crash",), max_examples: int = 20,
                  max_faults: int = 3, derandomize: bool = False) -> Callable[[], None]:
    """Turn a scenario into a pytest-ready property test: under any schedule of `kinds` (within the
    scenario's fault-free run time) and any seed, every claim of the scenario holds (the invariants
    in its `expect.hold`, and drained). `derandomize`: hypothesis tries the same examples on every
    run (what a CI gate wants).

    Nothing runs until the test does (collection only loads the scenario file). hypothesis's
    explain phase is off: it would rerun weir's checkers many times to print lines of weir's own
    code. A failure names the seed and the shrunk schedule as a timeline, writes the schedule to a
    `--faults` file and gives the command that replays it."""
    base = scenario if isinstance(scenario, Scenario) else _load(scenario)
    reference = scenario if isinstance(scenario, str) else None

    def test() -> None:
        from weir.analysis.checkers import check
        from weir.faults.explore import claims
        from weir.sim.scenario.run import execute

        horizon = max(1, execute(base, base.seed, ()).end_time)
        wanted = claims(base)

        @settings(max_examples=max_examples, deadline=None, derandomize=derandomize,
                  phases=[p for p in Phase if p is not Phase.explain])
        @given(schedules(kinds, base.node_names, horizon, max(1, horizon // 4), 0, max_faults), st.integers(0, 2**31 - 1))
        def holds_under(faults, seed):
            broken = [v for v in check(execute(base, seed, faults)) if v.invariant in wanted and not v.held]
            if broken:  # the schedule's file is written for the final, shrunk example only
                raise AssertionError(_failure(base, reference, seed, faults, broken, current_build_context().is_final))

        holds_under()

    test.__name__ = f"test_{base.name}_claims_hold_under_{'_'.join(kinds)}"
    test.__qualname__ = test.__name__
    return test


def _load(name: str) -> Scenario:
    from weir.sim.scenario.loader import load_scenario
    return load_scenario(name)


def _failure(base: Scenario, reference: str | None, seed: int, faults: tuple[Fault, ...], broken,
             final: bool = True) -> str:
    """What a failing example says: the claims broken, the schedule as a timeline, and how to
    replay it (the schedule written as a --faults file, if `final`: hypothesis's shrunk example)."""
    import tempfile
    from pathlib import Path

    from weir.sim.kernel.files import atomic_file, safe_file_name
    from weir.sim.scenario.loader import faults_toml

    path = Path(tempfile.gettempdir()) / "weir-property" / f"{safe_file_name(base.name)}-seed{seed}.toml"
    if final:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(path) as f:
            f.write(faults_toml(faults, f"the schedule that broke {base.name}, seed {seed}").encode())
    timeline = "\n".join(f"  {f.describe()}" for f in sorted(faults, key=lambda f: f.at)) or "  (no faults)"
    replay = (f"weir run {reference} --seed {seed} --faults {path}" if reference is not None else
              f"weir.run(scenario, seed={seed}, faults=weir.load_faults({str(path)!r}))")
    return (f"{base.name} seed {seed}: " + "; ".join(f"{v.invariant}: {v.summary}" for v in broken)
            + f"\nthe schedule:\n{timeline}\nreplay: {replay}")
