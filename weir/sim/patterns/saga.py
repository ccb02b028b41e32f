"""Sagas with compensation (the seed's pattern 4): Order -> Payment -> Inventory -> Shipping.

An orchestrator (node `orchestrator`) runs one saga per workload record, `produce_batch` of them
starting every `produce_interval`. Each step is a request to its service (nodes `order`,
`payment`, `inventory`, `shipping`), retried until answered (`pipeline.request_timeout`). A saga
fails at one step with chance `saga.failure_rate` (payment declined, out of stock, no courier:
drawn up front per saga, so a retried request gets the same answer); then the orchestrator
compensates the steps that succeeded, in reverse order (cancel shipping, restore inventory,
refund payment, cancel order).

The orchestrator keeps each saga's state in a durable log and writes it before each request and
after each answer; a crash interrupts every saga, and the restart resumes each from its log,
sending the request in progress again. A service applies a request to its ledger (durable): an
idempotent one remembers what it did per saga and applies a repeated request once; a
non-idempotent one applies it again (`saga.idempotent_steps`, `saga.idempotent_compensations`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import simpy

from weir.sim.kernel.world import Node, Status, World
from weir.sim.kernel.trace import Kind, Msg

if TYPE_CHECKING:
    from weir.sim.scenario.model import Scenario

__all__ = ["SERVICES", "SagaSystem"]

SERVICES = ("order", "payment", "inventory", "shipping")
DO, UNDO = 1, -1


class _Service:
    """A service's ledger of applied actions (durable) and, if idempotent, what it has answered."""

    def __init__(self, system: "SagaSystem", index: int, idempotent_do: bool, idempotent_undo: bool):
        self.system, self.index = system, index
        self.idempotent_do, self.idempotent_undo = idempotent_do, idempotent_undo
        self.answered: dict[tuple[int, int], bool] = {}  # (saga, action) -> the answer given

    def handle(self, saga: int, action: int) -> bool:
        key = (saga, action)
        idempotent = self.idempotent_do if action == DO else self.idempotent_undo
        if idempotent and key in self.answered:
            return self.answered[key]
        ok = action == UNDO or self.system.fails_at[saga] != self.index
        if ok:
            self.system.ledger.append((saga, self.index, action, self.system.world.now))
            self.system.world.trace.add(Kind.SAGA_STEP, self.system.nodes[self.index].index, saga, self.index, action, 1)
        self.answered[key] = ok
        return ok


class SagaSystem:
    """The orchestrator and the four services; takes the place of the pipeline in a `[saga]` scenario."""

    def __init__(self, world: World, scenario: Scenario):
        self.world, self.scenario = world, scenario
        cfg, w = scenario.saga, scenario.workload
        self.orchestrator: Node = world.node("orchestrator")
        self.nodes = [world.node(name) for name in SERVICES]
        self.timeout = scenario.pipeline.request_timeout
        self.batch, self.interval, self.sagas = w.produce_batch, w.produce_interval, w.records
        rng = world.rngs.stream("saga.failures")
        fails = rng.random(self.sagas) < cfg.failure_rate
        step = rng.integers(1, len(SERVICES), self.sagas)  # order always succeeds; a later step may fail
        self.fails_at = np.where(fails, step, -1)
        self.services = [_Service(self, i, cfg.idempotent_steps, cfg.idempotent_compensations)
                         for i in range(len(SERVICES))]
        self.ledger: list[tuple[int, int, int, int]] = []  # (saga, service, DO/UNDO, when): durable
        self.log: dict[int, tuple[str, int]] = {}  # saga -> (phase, step): the orchestrator's durable log
        self.outcome: dict[int, str] = {}  # saga -> "committed" or "compensated"
        self.orchestrator.on_restart(lambda _n: self.start())

    def start(self) -> None:
        self.orchestrator.spawn(self._scheduler())

    def _scheduler(self):
        """Resume every saga the log has in progress, then start the rest on schedule."""
        env = self.world.env
        try:
            for saga, (phase, _step) in sorted(self.log.items()):
                if phase != "done":
                    self.orchestrator.spawn(self._saga(saga))
            while len(self.log) < self.sagas:
                saga = len(self.log)
                due = (saga // self.batch) * self.interval
                if env.now < due:
                    yield from self.orchestrator.wait(due - env.now)
                self.log[saga] = ("forward", 0)
                self.orchestrator.spawn(self._saga(saga))
        except simpy.Interrupt:
            return

    def _call(self, saga: int, service: int, action: int):
        node, svc = self.nodes[service], self.services[service]
        return (yield from self.world.net.call(self.orchestrator, node, Msg.SAGA, lambda: svc.handle(saga, action),
                                               self.timeout, ref=(saga, service * action)))

    def _saga(self, saga: int):
        phase, step = self.log[saga]
        try:
            while phase == "forward" and step < len(SERVICES):
                ok = yield from self._call(saga, step, DO)
                if ok:
                    step += 1
                    self.log[saga] = ("forward", step)
                else:  # compensate what succeeded, last first
                    phase, step = "compensate", step - 1
                    self.log[saga] = (phase, step)
            if phase == "forward":
                self._done(saga, "committed")
                return
            while step >= 0:
                yield from self._call(saga, step, UNDO)
                step -= 1
                self.log[saga] = ("compensate", step)
            self._done(saga, "compensated")
        except simpy.Interrupt:
            return

    def _done(self, saga: int, outcome: str) -> None:
        self.log[saga] = ("done", 0)
        self.outcome[saga] = outcome
        self.world.trace.add(Kind.SAGA_END, self.orchestrator.index, saga, int(outcome == "committed"))
        if len(self.outcome) == self.sagas:
            self.world.env.process(self._finish())

    def _finish(self):
        """Every saga has ended: end the run once every fault has healed too."""
        while self.world.held:
            yield self.world.env.timeout(1_000)
        self.world.finish(Status.DRAINED)

    def results(self) -> dict[str, np.ndarray]:
        """The services' ledger as columns (saga, service, action, at) and each saga's outcome."""
        ledger = np.array(self.ledger, dtype=np.int64).reshape(-1, 4)
        outcome = np.array([{"committed": 1, "compensated": 0}.get(self.outcome.get(s), -1)
                            for s in range(self.sagas)], dtype=np.int64)
        return {"saga": ledger[:, 0].copy(), "service": ledger[:, 1].copy(), "action": ledger[:, 2].copy(),
                "at": ledger[:, 3].copy(), "outcome": outcome, "fails_at": self.fails_at.astype(np.int64)}
