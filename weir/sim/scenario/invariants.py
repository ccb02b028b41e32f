"""Which invariants apply to which scenarios: the one list of invariant names, in check order.

A scenario's `[expect]` may name only invariants that can apply to it, and `weir.check` runs those
that apply by default. An opt-in invariant (OPT_IN: it costs more than a look at the run, such as a
second run without faults) applies only to a scenario whose `[expect]` names it. Each entry is a predicate of the scenario alone (None for a hand-made run with no
scenario), so this table sits in the scenario layer and the checkers (weir.analysis.checkers) pair
each name with its function.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["APPLIES", "OPT_IN", "applicable", "statable"]


def _records(scenario: Any) -> bool:
    """The sink holds one row per record (not panes, not payments, and there is a pipeline)."""
    return scenario is None or (getattr(scenario, "window", None) is None and not _payments(scenario)
                                and not _sagas(scenario))


def _simulated_records(scenario: Any) -> bool:
    """A record pipeline that weir ran (so there is a trace to read), not a hand-made run."""
    return scenario is not None and _records(scenario)


def _commits_offsets(scenario: Any) -> bool:
    """A pipeline that weir ran whose consumer commits offsets itself (on poll, auto or after the
    sink's ack), not on checkpoints: there the checkpoint holds what is below the offsets."""
    return scenario is not None and not _sagas(scenario) and scenario.pipeline.offset_commit != "on_checkpoint"


def _windowed(scenario: Any) -> bool:
    return scenario is not None and getattr(scenario, "window", None) is not None


def _checkpointed(scenario: Any) -> bool:
    return scenario is not None and getattr(scenario, "checkpoint", None) is not None


def _transactional(scenario: Any) -> bool:
    return _records(scenario) and scenario is not None and scenario.workload.transactional


def _payments(scenario: Any) -> bool:
    return scenario is not None and scenario.pipeline.sink == "payments"


def _outbox(scenario: Any) -> bool:
    return scenario is not None and getattr(scenario, "outbox", None) is not None


def _sagas(scenario: Any) -> bool:
    return scenario is not None and getattr(scenario, "saga", None) is not None


def _writes_can_fail(scenario: Any) -> bool:
    if scenario is None or not _records(scenario):
        return False
    return bool(scenario.workload.poison_every or scenario.retry.failure_rate
                or any(f.kind.startswith("sink_") for f in scenario.faults))


def _parallel(scenario: Any) -> bool:
    return scenario is not None and scenario.pipeline.parallelism > 1


def _reconciling(scenario: Any) -> bool:
    return scenario is not None and getattr(scenario, "reconcile", None) is not None


def _liveness_bound(scenario: Any) -> bool:
    return scenario is not None and getattr(scenario.run, "drain_within", None) is not None


def _any(scenario: Any) -> bool:
    return True


def _values(scenario: Any) -> bool:
    """A pipeline that weir ran whose output has values to compare: record rows, or windows."""
    return scenario is not None and (_records(scenario) or _windowed(scenario))


def _user_code(scenario: Any) -> bool:
    """The scenario runs a component of the user's (an operator, sink, source, watermark strategy,
    consumer policy, relay or DLQ replay job)."""
    from weir.sim.scenario.components import user_classes
    return scenario is not None and bool(user_classes(scenario))


def _named(scenario: Any, name: str) -> bool:
    expect = getattr(scenario, "expect", None)
    return expect is not None and (name in expect.hold or name in expect.violate)


#: Every invariant weir checks, by name (scenario files name these in [expect]), in check order,
#: with the scenarios it applies to (record pipelines write records; windowed ones write panes).
APPLIES: dict[str, Callable[[Any], bool]] = {
    "no_user_errors": _user_code,
    "no_loss": _records,
    "no_duplicates": _records,
    "exactly_once": _records,
    "window_complete": _windowed,
    "event_time_complete": _windowed,
    "no_late_records": _windowed,
    "checkpoints_succeed": _checkpointed,
    "commits_monotonic": _simulated_records,
    "no_aborted_reads": _transactional,
    "log_complete": _transactional,
    "no_silent_drops": _writes_can_fail,
    "no_double_charge": _payments,
    "outbox_consistent": _outbox,
    "saga_atomic": _sagas,
    "no_double_compensation": _sagas,
    "payments_complete": _payments,
    "load_balanced": _parallel,
    "reconciled": _reconciling,
    "commits_after_ack": _commits_offsets,
    "checkpoint_atomic": _checkpointed,
    "watermarks_sane": _windowed,
    "late_accounted": _windowed,
    "drained": _any,
    "drains_in_time": _liveness_bound,
    "matches_reference": lambda scenario: _values(scenario) and _named(scenario, "matches_reference"),
}

#: Opt-in invariants: which scenarios may name them in [expect] (they apply only where named).
OPT_IN: dict[str, Callable[[Any], bool]] = {
    "matches_reference": _values,
}


def statable(scenario: Any) -> tuple[str, ...]:
    """The invariants a scenario's [expect] may name: those that apply, and the opt-in ones that fit."""
    return tuple(name for name, applies in APPLIES.items() if OPT_IN.get(name, applies)(scenario))


def applicable(scenario: Any) -> tuple[str, ...]:
    """The invariants that apply to a scenario (record or window ones, checkpoint, parallel ones, drained)."""
    return tuple(name for name, applies in APPLIES.items() if applies(scenario))
