"""The operator lifecycle, as Flink has it: open, notify_checkpoint_complete / _aborted, close.

Notifications are best effort (flink-core/src/main/java/org/apache/flink/api/common/state/
CheckpointListener.java): one can be lost or arrive late, a later completion subsumes the earlier,
and no lower checkpoint id is delivered after a higher one.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import weir
from weir.sim.kernel.trace import Kind, Msg
from weir.sim.scenario.components import ComponentSpec

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
from components import KeyCounter  # noqa: E402  (the examples' user operator)


class Recording(KeyCounter):
    """KeyCounter that writes down every lifecycle call, in `log` (shared by all its instances)."""

    def __init__(self, scale: int = 1, log: list | None = None):
        super().__init__(scale)
        self.log = log

    def open(self):
        self.log.append(("open",))

    def notify_checkpoint_complete(self, checkpoint_id):
        self.log.append(("complete", checkpoint_id))

    def notify_checkpoint_aborted(self, checkpoint_id):
        self.log.append(("aborted", checkpoint_id))

    def close(self):
        self.log.append(("close",))


def _scenario(log: list, faults=(), **checkpoint) -> weir.Scenario:
    base = weir.load_scenario("exactly_once_crash")
    return replace(base, operator=ComponentSpec(Recording, {"scale": 1, "log": log}),
                   workload=replace(base.workload, records=8000),
                   checkpoint=replace(base.checkpoint, **checkpoint), faults=tuple(faults))


def _completed(run) -> list[int]:
    cols = run.trace.columns
    return cols["a"][cols["kind"] == Kind.CKPT_COMPLETE].tolist()


def _operator_notifications(run) -> int:
    """NOTIFY messages sent to the operator (ref (n, 2) completed, (n, 3) aborted)."""
    cols = run.trace.columns
    return int(((cols["kind"] == Kind.SEND) & (cols["b"] == Msg.NOTIFY) & (cols["d"] >= 2)).sum())


def test_open_once_per_attempt_every_completion_in_order_and_close_at_the_end():
    log: list = []
    crash = weir.Fault(kind="crash", node="processor", at="150ms", down_for="20ms")
    run = weir.execute(_scenario(log, [crash]), 1)
    assert run.status == "drained" and run.restarts == 1
    assert log.count(("open",)) == 2, log  # the first attempt and the restart
    assert log[-1] == ("close",) and log.count(("close",)) == 1, log
    delivered = [n for kind, *n in log if kind == "complete" for n in n]
    assert delivered == sorted(set(delivered)), f"seed 1: out of order or twice: {delivered}"
    completed = _completed(run)
    assert set(delivered) <= set(completed) and len(delivered) >= len(completed) - 2, (delivered, completed)


def test_a_lost_notification_is_subsumed_by_the_next_and_fails_nothing_over():
    log: list = []
    lost = weir.Fault(kind="loss", node="coordinator", peers=("processor",), direction="outbound",
                      at="150ms", down_for="150ms", rate=1.0)  # every notification in that time
    run = weir.execute(_scenario(log, [lost]), 1)
    completed = _completed(run)
    delivered = [n for kind, *n in log if kind == "complete" for n in n]
    missed = sorted(set(completed) - set(delivered))
    assert missed, f"seed 1: nothing was lost ({completed})"
    assert max(delivered) > max(missed), "a later completion reaches the operator and covers the lost ones"
    assert run.restarts == 0, "a lost notification is not a broken connection"
    assert (run.trace.columns["kind"] == Kind.DROP).any()


def test_aborted_checkpoints_are_told_too():
    log: list = []
    refused = weir.Fault(kind="store_fail", node="coordinator", at="150ms", down_for="120ms")
    run = weir.execute(_scenario(log, [refused], tolerable_failures=10), 1)
    aborted = [n for kind, *n in log if kind == "aborted" for n in n]
    assert aborted and run.restarts == 0, (aborted, run.restarts)
    delivered = [n for kind, *n in log if kind == "complete" for n in n]
    assert all(a not in delivered for a in aborted)


def test_an_operator_that_does_not_listen_gets_no_messages():
    """Built-in operators and user ones that do not override a notify method: no NOTIFY to the
    processor, so their runs (and trace hashes) are what they were before notifications existed."""
    assert _operator_notifications(weir.execute(weir.load_scenario("exactly_once_crash"))) == 0
    plain = weir.execute(replace(_scenario([], []), operator=ComponentSpec(KeyCounter, {"scale": 1})), 1)
    listened = weir.execute(_scenario([], []), 1)
    assert _operator_notifications(plain) == 0 and _operator_notifications(listened) == len(_completed(listened)) > 0
