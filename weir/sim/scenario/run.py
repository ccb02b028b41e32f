"""One run: build the world for a scenario and seed, run it, collect what is durable."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from weir.sim.kernel.clock import NodeClock
from weir.sim.kernel.inject import install as install_faults
from weir.sim.kernel.memory import BIG_RUN, trim
from weir.sim.kernel.errors import ScenarioError, UserCodeTimedOut, UserError, UserHookError
from weir.sim.kernel.node import Status
from weir.sim.kernel.watchdog import Watchdog
from weir.sim.kernel.world import World
from weir.sim.kafka.log import Broker
from weir.sim.kafka.partitioner import partition_for
from weir.sim.stream.checkpoint import CheckpointStore
from weir.sim.stream.job import Job
from weir.sim.kafka.producer import Producer, draw_workload
from weir.sim.scenario.model import MODES, SEED_ACCEPTS, Fault, Scenario, is_seed, tuple_of
from weir.sim.patterns.dlq import DeadLetterQueue, FixAndReplay
from weir.sim.patterns.sinks import UpsertSink, WindowResults, make_sink
from weir.sim.scenario.components import user_classes, user_files
from weir.sim.stream.guard import GUARD_CODE
from weir.sim.kernel.trace import FrozenTrace, Kind

T = TypeVar("T")

__all__ = ["Run", "execute"]


@dataclass(frozen=True, eq=False)
class Run:
    """A finished run: the trace and the final durable state, ready for the checkers.

    `source` is every record the log holds and `sink` every row of the sink table, as numpy
    columns. Checkers read these and nothing live. Record ids, keys, partitions and offsets are
    int32 (weir.sim.kernel.batch.dtype_of: the format bounds them), times and values int64, a
    record's transaction state int8; a user sink's `contents()` columns are kept as it gave them.
    """

    scenario: Scenario
    seed: int
    status: str
    end_time: int
    events: int
    trace: FrozenTrace
    source: dict[str, np.ndarray]
    sink: dict[str, np.ndarray]
    sink_writes: int
    committed: tuple[int, ...]
    checkpoints_completed: int
    restarts: int
    windows: dict[str, np.ndarray] | None = None  # panes written by a windowed job (see sinks.WINDOW_COLUMNS)
    late: dict[str, np.ndarray] | None = None  # its late side output
    window_watermark: int | None = None  # the window operator's watermark when the run ended
    frontier: tuple[int, ...] = ()  # per partition, the offset the job would go on from (weir.sim.stream.job.Job.frontier)
    unprocessed: int = 0  # records in the log at or past the frontier when a run that did not drain stopped
    late_dropped: int = 0  # late records the window operator counted and dropped
    checkpoint_stats: dict[str, int] | None = None  # triggered, completed, timed_out, max_duration_us, max_bytes
    checkpoints: tuple[Any, ...] = ()  # the completed checkpoints the store retained (weir.sim.stream.checkpoint.Checkpoint)
    subtasks: tuple[dict[str, int], ...] = ()  # per processor subtask: records, busy_us, max_queued_records
    sources: tuple[dict[str, int], ...] = ()  # per source subtask: partitions, backpressured_us
    dlq: dict[str, np.ndarray] | None = None  # the dead-letter queue (see sim/dlq.DLQ_COLUMNS)
    dlq_messages: tuple[dict[str, Any], ...] = ()  # its entries with the seed's DeadLetterHandler metadata
    dlq_max_depth: int = 0
    skipped: int = 0  # records given up on with retry.exhausted = "skip"
    charges: dict[str, np.ndarray] | None = None  # the payments sink: every charge made (payment_id, record_id, ...)
    payment_of: np.ndarray | None = None  # per record id: the payment it carries
    orders: np.ndarray | None = None  # [outbox]: the ids of the orders the application's database holds
    saga: dict[str, np.ndarray] | None = None  # [saga]: the services' ledger and each saga's outcome (weir/sim/patterns/saga.py)
    ingested_at: np.ndarray | None = None  # ingestion time: each record's event time as the source last stamped it
    true_event_time: np.ndarray | None = None  # per record id: when its event truly happened (NOT_STAMPED: never sent)
    replayed_in_flight: int = 0  # records an unaligned checkpoint saved in flight and a restore processed again
    user_errors: tuple[UserError, ...] = ()  # findings about user components (weir.UserError): what raised, when, on what
    sink_records: int | None = None  # the upsert sink: distinct records it was handed (replays vs merges; see UpsertSink)

    @property
    def trace_sha256(self) -> str:
        return self.trace.sha256()

    def __repr__(self) -> str:  # not the dataclass's: that prints every column of the log and the sink
        return (f"Run({self.scenario.name!r}, seed={self.seed}, status={self.status!r}, events={self.events}, "
                f"records in the log={len(self.source['record_id'])}, sink rows={len(self.sink['record_id'])}, "
                f"trace={self.trace_sha256[:16]})")


def _user_frame(error: BaseException, files: frozenset[str]) -> tuple[str, BaseException] | None:
    """The innermost frame of `error`'s traceback (or its causes': simpy re-raises a process's
    exception with it as the cause) that is in one of `files`, as (its qualified name, the
    exception raised there); None if no frame is. For user code that no guarded hook called
    (a transaction handle's own __deepcopy__, say)."""
    cause: BaseException | None = error
    while cause is not None:
        where = None
        tb = cause.__traceback__
        while tb is not None:
            code = tb.tb_frame.f_code
            if code.co_filename in files:
                where = code.co_qualname
            tb = tb.tb_next
        if where is not None:
            return where, cause
        cause = cause.__cause__
    return None


def _finding(error: BaseException, files: frozenset[str], now: int, phase: str,
             watchdog: Watchdog | None = None) -> UserError | None:
    """The UserError `error` is, if it came from user code: a guard's UserHookError (in it or its
    causes), the watchdog's exception landing just after the hook it stopped returned, or an
    exception raised in a frame of the user's `files`. None: it is weir's own."""
    bound_us = int(watchdog.bound * 1e6) if watchdog is not None else None
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, UserHookError):
            return cause.finding(now, phase=phase, bound_us=bound_us)
        cause = cause.__cause__
    if isinstance(error, UserCodeTimedOut):
        component, _, hook = (watchdog.fired if watchdog is not None and watchdog.fired else "?.?").rpartition(".")
        return UserHookError(component, hook, "did not return in time", timed_out=True).finding(
            now, phase=phase, bound_us=bound_us)
    found = _user_frame(error, files)
    if found is None:
        return None
    where, raised = found
    component, _, hook = where.rpartition(".")
    return UserError(component or where, hook if component else "", f"{type(raised).__name__}: {raised}", now,
                     traceback="".join(traceback.format_exception(raised)).rstrip(), phase=phase)


def _status(finding: UserError) -> str:
    return Status.USER_CODE_TIMED_OUT if finding.timed_out else Status.USER_CODE_RAISED


def _user_errors(job: Job, files: frozenset[str], watchdog: Watchdog) -> Callable[[BaseException], str | None]:
    """The world's error handler: an exception from user code that no hook's caller handled (a
    snapshot, a restore, a watermark) is a finding kept in the job's user_errors, and the run ends
    with the status it returns; anything else is weir's own bug and propagates (None)."""

    def on_error(error: BaseException) -> str | None:
        found = _finding(error, files, job.world.now, "run", watchdog)
        if found is None:
            return None
        job.world.trace.add(Kind.USER_ERROR, 0, len(job.user_errors))
        job.user_errors.append(found)
        return _status(found)

    return on_error


def execute(scenario: Scenario | str, seed: int | None = None, faults: tuple[Fault, ...] | None = None,
            settle: bool = False, progress: Callable[[int, int], None] | None = None) -> Run:
    """Run `scenario` (a Scenario, or a built-in name or TOML path) with `seed` (default: the
    scenario's) and `faults` (default: the scenario's).

    `settle` (explore's runs) stops a pipeline run as soon as its verdict cannot change: every
    fault healed, the producer done, and no durable progress over twice the scenario's longest timer (status
    "settled"; weir.sim.kernel.world.World.settle). Without it, such a run goes on to run.max_time.

    A pure function: the same arguments give the same Run, the same trace hash, in any process.
    User code is a finding, never a crash: a user component that raises, returns what it must not
    or runs past run.user_timeout (wall clock) while it is built, while the run runs or while its
    results are read ends the run (status user_code_raised or user_code_timed_out) with the
    finding in `user_errors`; with run.on_user_error = "fail_over", an operator or sink that
    raises fails the job over instead, as in Flink.

    `progress(done, total)`, if given, is told every 65,536 events how many of the workload's
    records the job has gone past: to show progress; it sees the run, never changes it.
    """
    if isinstance(scenario, str):  # a built-in name or a TOML path, as weir.run, sweep and explore take
        from weir.sim.scenario.loader import load_scenario
        scenario = load_scenario(scenario)
    seed, faults = _check_arguments(scenario, seed, faults)
    seed = scenario.seed if seed is None else seed
    faults = scenario.faults if faults is None else faults
    users = user_classes(scenario)
    bound = scenario.run.user_timeout / 1e6 if users else 0
    with Watchdog(bound, GUARD_CODE) as watchdog:
        run = _execute(scenario, seed, faults, settle, watchdog, progress)
    return run


def _check_arguments(scenario: object, seed: object, faults: object) -> tuple[int | None, tuple[Fault, ...] | None]:
    """A clear error for what `execute` cannot take (before, an AttributeError from deep inside);
    the seed as an int (a numpy integer is one too), and the faults as a tuple."""
    if not isinstance(scenario, Scenario):
        raise TypeError(f"execute takes a weir.Scenario, or a built-in name or TOML path; got {type(scenario).__name__}")
    if seed is not None:
        if not is_seed(seed):
            raise ScenarioError("seed", seed, SEED_ACCEPTS)
        seed = int(seed)
    return seed, None if faults is None else tuple_of("faults", faults, Fault)


class _CutShort(Exception):
    """User code failed outside the simulation (setup or results): there is nothing more to read."""

    def __init__(self, finding: UserError):
        super().__init__(finding.line())
        self.finding = finding


def _guarded(phase: str, world: World, files: frozenset[str], watchdog: Watchdog, step: Callable[[], T]) -> T:
    """Call `step()`; user code failing in it is _CutShort with the finding."""
    try:
        return step()
    except (Exception, UserCodeTimedOut) as e:
        found = _finding(e, files, world.now, phase, watchdog)
        if found is None:
            raise
        raise _CutShort(found) from None


def _execute(scenario: Scenario, seed: int, faults: tuple[Fault, ...], settle: bool, watchdog: Watchdog,
             progress: Callable[[int, int], None] | None = None) -> Run:
    p, w = scenario.pipeline, scenario.workload
    specs = [scenario.node_spec(name) for name in scenario.node_names]
    world = World(seed, {n.name: NodeClock(n.clock_offset, n.clock_drift_ppm) for n in specs},
                  latency=p.network_latency, jitter=p.network_jitter, max_time=scenario.run.max_time,
                  max_events=scenario.run.max_events, boot_times={n.name: n.boot_time for n in specs},
                  jitter_shape=p.network_jitter_shape)
    for link in scenario.links:
        for a, b in link.pairs():
            world.net.set_link(world.node(a), world.node(b), *link.params(p))
    world.trace.add(Kind.RUN_START, 0, seed, w.records, w.partitions, MODES.index(p.mode))
    if scenario.saga is not None:
        return _execute_sagas(world, scenario, seed, faults)
    files = user_files(scenario)
    try:
        built = _guarded("setup", world, files, watchdog, lambda: _build(world, scenario, faults, files, watchdog))
    except _CutShort as cut:
        return _cut_short(world, scenario, seed, faults, [cut.finding])
    job, broker, sink, results, store, producer, payment_of = built
    if settle:
        world.settle(job.progress, 2 * scenario.longest_timer())
    if progress is not None:
        world.on_progress = lambda: progress(min(sum(job.frontier()), w.records), w.records)
    status = world.run()
    if progress is not None:
        progress(w.records, w.records)
    frontier = job.frontier()
    unprocessed = 0 if status == "drained" else broker.log.records_from(frontier)
    if isinstance(producer, Producer):
        producer.release()
    big = w.records >= BIG_RUN
    if big:
        trim()  # the workload's arrays and the simulation's garbage, back to the system before the sink is read out
    failed: list[UserError] = []
    try:
        read = _guarded("results", world, files, watchdog, lambda: _results(scenario, job, sink, results, producer))
    except _CutShort as cut:
        failed.append(cut.finding)
    try:  # even if reading failed
        _guarded("results", world, files, watchdog, lambda: _close(scenario, job, sink, results, producer))
    except _CutShort as cut:
        failed.append(cut.finding)
    if big:
        trim()  # SQLite's pages, freed: back to the system before the log is read out
    if failed:
        return _cut_short(world, scenario, seed, faults, [*job.user_errors, failed[0]], broker)
    sink_rows, windows, late, dlq, charges, orders, dlq_messages = read
    return Run(  # the log is read out last, releasing it as it goes: the sink's tables are closed by then
        scenario=scenario.with_faults(faults), seed=seed, status=status, end_time=world.end_time,
        events=world.events, trace=world.trace.freeze(release=True), source=broker.log.contents(release=True), sink=sink_rows,
        sink_writes=job.rows_written, committed=tuple(broker.committed),
        sink_records=sink.records_written() if isinstance(sink, UpsertSink) else None,
        checkpoints_completed=store.total_completed if store else 0, restarts=job.restarts,
        windows=windows, late=late, window_watermark=job.window_watermark(), late_dropped=job.late_dropped,
        frontier=tuple(frontier),
        unprocessed=unprocessed,
        checkpoint_stats=None if store is None else {
            "triggered": store.triggered, "completed": store.total_completed, "timed_out": store.timed_out,
            "max_duration_us": store.max_duration, "max_bytes": store.max_bytes,
            "write_failures": store.write_failures, "torn_skipped": store.torn_skipped},
        checkpoints=tuple(store.completed) if store else (), replayed_in_flight=job.replayed_in_flight,
        user_errors=tuple(job.user_errors),
        ingested_at=job.ingested_at, true_event_time=getattr(producer, "true_event_time", None), dlq=dlq, dlq_messages=dlq_messages, charges=charges,
        payment_of=payment_of,
        orders=orders,
        dlq_max_depth=job.dlq.max_depth if job.dlq else 0, skipped=job.skipped,
        subtasks=tuple({"subtask": j, "records": job.subtask_records[j], "busy_us": job.subtask_busy[j],
                        "max_queued_records": job.subtask_max_queued[j]} for j in range(job.parallelism)),
        sources=tuple({"subtask": i, "partitions": len(range(i, w.partitions, job.source_parallelism)),
                       "backpressured_us": job.source_backpressured[i]} for i in range(job.source_parallelism)),
    )


#: What _build makes: the job, the broker, the sink, the window results, the checkpoint store, the
#: producer (or the outbox application in its place) and, for the payments sink, each record's payment.
Built = tuple[Job, Broker, Any, "WindowResults | None", "CheckpointStore | None", Any, "np.ndarray | None"]


def _build(world: World, scenario: Scenario, faults: tuple[Fault, ...], files: frozenset[str],
           watchdog: Watchdog) -> Built:
    """Draw the workload and build the pipeline (the user's components among it), faults installed."""
    p, w = scenario.pipeline, scenario.workload
    data = draw_workload(world, scenario)
    # The workload is known up front, so each partition is sized for it exactly (growth still works
    # past it): one produced once fills its room, and the log is read out without a copy.
    sizes = np.bincount(partition_for(data.keys, w.partitions), minlength=w.partitions)
    broker = Broker(world, world.node("broker"), w.partitions, [int(n) for n in sizes], w.idempotent,
                    w.fencing, w.transaction_timeout)
    producers = [world.node(n) for n in scenario.node_names if n == "producer" or n.startswith("producer-")]
    producer: Any  # a Producer, or the outbox application that takes its place
    if scenario.outbox is not None:
        from weir.sim.patterns.outbox import OutboxApp
        relay = scenario.outbox.relay_spec.build() if scenario.outbox.relay_spec is not None else None
        producer = OutboxApp(world, producers[0], broker, scenario, data, relay)
    else:
        producer = Producer(world, producers, broker, scenario, data)
    if p.sink == "payments":
        from weir.sim.patterns.payments import PaymentsSink
        instance = (np.arange(w.records) // w.produce_batch) % w.producers
        systems = [("producer" if i == 0 else f"producer-{i}") for i in instance.tolist()]
        assert data.payment_of is not None  # (drawn for the payments sink)
        sink: Any = PaymentsSink(data.payment_of, systems, scenario.payments.dedup, scenario.payments.ttl,
                            scenario.payments.lock_ttl)
    else:
        sink = p.sink_spec.build() if p.sink_spec is not None else make_sink(p.sink_name, len(data.keys) + 16, p.dedup_key)
    results = WindowResults() if scenario.window else None
    store = CheckpointStore(scenario.checkpoint.retain) if scenario.checkpoint else None
    dlq = DeadLetterQueue() if scenario.window is None else None  # retries and dead letters: record pipelines
    replay = scenario.retry.replay_spec.build() if scenario.retry.replay_spec is not None else FixAndReplay()
    job = Job(world, scenario, broker, sink, store, producer, results, dlq, replay)
    world.on_error = _user_errors(job, files, watchdog)
    install_faults(world, faults)
    producer.start()
    job.start()
    return job, broker, sink, results, store, producer, data.payment_of if p.sink == "payments" else None


def _results(scenario: Scenario, job: Job, sink: Any, results: WindowResults | None, producer: Any) -> tuple[Any, ...]:
    """What is durable at the end: the sink's rows, the panes, the DLQ, the charges, the orders."""
    sink_rows = sink.contents()
    windows, late = results.contents() if results else (None, None)
    dlq = job.dlq.contents() if job.dlq else None
    charges = sink.charges() if scenario.pipeline.sink == "payments" else None
    orders = producer.orders() if scenario.outbox is not None else None
    dlq_messages = tuple(job.dlq.messages()) if job.dlq else ()
    return sink_rows, windows, late, dlq, charges, orders, dlq_messages


def _close(scenario: Scenario, job: Job, sink: Any, results: WindowResults | None, producer: Any) -> None:
    sink.close()
    if results:
        results.close()
    if job.dlq:
        job.dlq.close()
    if scenario.outbox is not None:
        producer.close()


def _cut_short(world: World, scenario: Scenario, seed: int, faults: tuple[Fault, ...], findings: list[UserError],
               broker: Broker | None = None) -> Run:
    """The Run of one that user code stopped outside the simulation: the findings, the trace so
    far, the log if there is one, an empty sink (its contents could not be read)."""
    last = findings[-1]
    world.trace.add(Kind.USER_ERROR, 0, len(findings) - 1)
    status = _status(last)
    if last.phase == "setup":  # the simulation never ran: end its trace (a run that ran has ended it)
        world.trace.add(Kind.RUN_END, 0, Status.CODES[status])
    empty = np.zeros(0, dtype=np.int64)
    source = broker.log.contents() if broker is not None else {
        name: empty for name in ("record_id", "key", "partition", "offset", "event_time", "value", "state")}
    return Run(scenario=scenario.with_faults(faults), seed=seed, status=status, end_time=int(world.env.now),
               events=world.events, trace=world.trace.freeze(), source=source, sink={"record_id": empty},
               sink_writes=0, committed=tuple(broker.committed) if broker is not None else (),
               checkpoints_completed=0, restarts=0, user_errors=tuple(findings))


def _execute_sagas(world: World, scenario: Scenario, seed: int, faults: tuple[Fault, ...]) -> Run:
    """A `[saga]` scenario: the orchestrator and its services instead of the pipeline."""
    from weir.sim.patterns.saga import SagaSystem

    system = SagaSystem(world, scenario)
    install_faults(world, faults)
    system.start()
    status = world.run()
    empty = np.zeros(0, dtype=np.int64)
    source = {name: empty for name in ("record_id", "key", "partition", "offset", "event_time", "value", "state")}
    return Run(scenario=scenario.with_faults(faults), seed=seed, status=status, end_time=world.end_time,
               events=world.events, trace=world.trace.freeze(), source=source, sink={"record_id": empty},
               sink_writes=0, committed=(), checkpoints_completed=0, restarts=0, saga=system.results())
