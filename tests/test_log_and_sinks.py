"""The partitioned log, the broker's rules, the sinks, and the keyed operator."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from weir.sim.kernel.clock import NodeClock
from weir.sim.kernel.world import World
from weir.sim.kafka.log import Broker, PartitionedLog
from weir.sim.stream.operators import running_totals
from weir.sim.patterns.sinks import AppendSink, UpsertSink
from weir.sim.kernel.batch import RecordBatch


def arr(*xs):
    return np.array(xs, dtype=np.int64)


def test_log_offsets_are_dense_per_partition_and_reads_are_bounded():
    log = PartitionedLog(2, capacity=2)  # tiny capacity: appends must grow the columns
    assert log.append(0, arr(10, 11, 12), arr(0, 2, 4), arr(5, 5, 5), arr(1, 2, 3)) == 0
    assert log.append(1, arr(13), arr(1), arr(6), arr(4)) == 0
    assert log.append(0, arr(14, 15), arr(0, 0), arr(7, 7), arr(5, 6)) == 3
    assert log.end_offsets() == [5, 1]
    batch = log.read(0, 2, 4)
    assert (batch.partition_id, batch.first_offset, batch.end_offset) == (0, 2, 4)
    assert batch.record_id.tolist() == [12, 14]
    assert batch.offset.tolist() == [2, 3] and batch.partition.tolist() == [0, 0]
    assert len(log.read(0, 5, 15)) == 0
    c = log.contents()
    assert c["record_id"].tolist() == [10, 11, 12, 14, 15, 13]
    assert c["offset"].tolist() == [0, 1, 2, 3, 4, 0]


def broker(partitions: int = 2) -> Broker:
    w = World(1, {"broker": NodeClock()}, max_time=10, max_events=10)
    return Broker(w, w.node("broker"), partitions, capacity=8)


def test_broker_splits_a_producer_batch_by_key_and_drops_a_retried_batch():
    b = broker(2)
    keys, values = arr(0, 1, 2, 3), arr(9, 8, 7, 6)  # murmur2 puts keys 1, 2 in partition 0 and 0, 3 in 1
    b.append(0, keys, arr(0, 0, 0, 0), values)
    assert b.log.end_offsets() == [2, 2]
    b.append(0, keys, arr(0, 0, 0, 0), values)  # the producer retried: no answer reached it
    assert b.log.end_offsets() == [2, 2]
    b.append(4, arr(1), arr(0), arr(5))
    assert b.log.contents()["record_id"].tolist() == [1, 2, 4, 0, 3]
    dup_flags = [r["duplicate"] for r in b.world.trace.freeze().rows() if r["kind"] == "PRODUCE"]
    assert dup_flags == [0, 1, 0]


@settings(max_examples=40, deadline=None)
@given(keys=st.lists(st.integers(-(2**40), 2**40), min_size=0, max_size=200),
       partitions=st.sampled_from([1, 3, 7, 32_767, 32_768, 40_000]))
def test_broker_puts_each_record_in_its_keys_partition_in_batch_order(keys, partitions):
    """Whether the partition ids are sorted as 16-bit integers (radix) or as int64 (over 32,767
    partitions), each partition gets its records in the producer's order, as a loop would put them."""
    from weir.sim.kafka.partitioner import partition_for
    b = broker(partitions)
    k = np.array(keys, dtype=np.int64)
    b.append(0, k, np.zeros(len(k), dtype=np.int64), np.arange(len(k), dtype=np.int64))
    expected: dict[int, list[int]] = {}
    for i, p in enumerate(partition_for(k, partitions).tolist()):
        expected.setdefault(p, []).append(i)
    got = b.log.contents()
    assert len(got["record_id"]) == len(keys)
    for p in range(partitions) if partitions < 100 else sorted(expected):
        ids = got["record_id"][got["partition"] == p].tolist()
        assert ids == expected.get(p, []), (partitions, p, keys)


def test_broker_rejects_commits_from_an_older_generation():
    b = broker(2)
    b.join(1)
    assert b.commit({0: 5}, 1) is True
    assert b.join(2) == [5, 0]
    assert b.commit({0: 9, 1: 3}, 1) is False  # a zombie of generation 1
    assert b.committed == [5, 0]
    assert b.commit({1: 3}, 2) is True
    assert b.committed == [5, 3]


def test_fetch_goes_round_robin_over_partitions_with_records():
    b = broker(3)
    b.append(0, arr(1, 3, 0, 1), arr(0, 0, 0, 0), arr(1, 1, 1, 1))  # keys 1 -> partition 0, 3 -> 1, 0 -> 2
    assert b.log.end_offsets() == [2, 1, 1]
    assert b.fetch([0, 0, 0], 1, 10).partition_id == 1
    assert b.fetch([2, 1, 0], 0, 10).partition_id == 2
    assert b.fetch([2, 1, 1], 0, 10) is None


def test_keyed_partitioning_is_kafkas_murmur2():
    from weir.sim.kafka.partitioner import murmur2, partition_for
    # Kafka's own vectors (UtilsTest.testMurmur2 in the Java client)
    cases = {b"21": -973932308, b"foobar": -790332482, b"a-little-bit-long-string": -985981536,
             b"a-little-bit-longer-string": -1486304829,
             b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971, b"abc": 479470107}
    assert {k: murmur2(k) for k in cases} == cases
    keys = np.array([0, 1, 42, -5, 2**40 + 3, 2**63 - 1, -(2**63)], dtype=np.int64)
    expected = [(murmur2(int(k).to_bytes(8, "big", signed=True)) & 0x7FFFFFFF) % 7 for k in keys]
    assert partition_for(keys, 7).tolist() == expected


def batch(ids, p=0, first=0):
    ids = np.asarray(ids, dtype=np.int64)
    return RecordBatch(p, first, ids, ids % 3, np.zeros_like(ids), ids * 10)


def test_append_sink_keeps_every_row_it_is_given():
    s = AppendSink(capacity=1)
    assert s.write(batch([1, 2]), arr(5, 6), written_at=100) == 0
    s.write(batch([2, 3], first=1), arr(6, 7), written_at=200)
    c = s.contents()
    assert c["record_id"].tolist() == [1, 2, 2, 3]
    assert c["written_at"].tolist() == [100, 100, 200, 200]


@settings(max_examples=60, deadline=None)
@given(writes=st.lists(st.tuples(st.integers(0, 70), st.booleans(), st.integers(0, 3)), max_size=80),
       seed=st.integers(0, 2**32 - 1))
def test_append_sink_small_writes_wait_in_lists_and_read_as_every_row_in_order(writes, seed):
    """A write of at most SMALL_WRITE rows waits in Python lists until FLUSH_ROWS rows do, or the
    table is read; big ones go to the columns at once, after what waits. Either way the table is
    every row in the order written, in the columns' dtypes (a read_committed batch's own offsets
    included)."""
    from weir.sim.patterns import sinks
    from weir.sim.kernel.batch import dtype_of

    rng = np.random.default_rng(seed)
    s, want, first = AppendSink(capacity=8), {c: [] for c in sinks.SINK_COLUMNS}, 0
    for i, (n, skipped, p) in enumerate(writes):
        ids = rng.integers(0, 10**6, n)
        offsets = np.sort(rng.choice(2 * n + 1, n, replace=False)) + first if skipped else None
        b = RecordBatch(p, first, ids, ids % 5, ids, ids + 1, offsets, first + 2 * n + 1 if skipped else None)
        assert s.write(b, ids * 3, written_at=i) == 0
        waiting = len(s._small[0])
        assert waiting < sinks.FLUSH_ROWS and (n <= sinks.SMALL_WRITE or not waiting), f"seed {seed}"
        for c, v in (("record_id", ids), ("key", ids % 5), ("partition", [p] * n), ("offset", b.offset),
                     ("value", ids * 3), ("written_at", [i] * n)):
            want[c] += list(v)
        first = b.end_offset
    got = s.contents()
    assert {c: got[c].tolist() for c in got} == {c: [int(x) for x in v] for c, v in want.items()}, f"seed {seed}"
    assert all(got[c].dtype == dtype_of(c) for c in got), f"seed {seed}"


def test_append_sink_small_writes_join_the_columns_every_flush_rows():
    """Rows of one-record writes (a pipeline at batch size 1) wait in lists, and join the columns
    when FLUSH_ROWS of them do: what waits stays small however long the run."""
    from weir.sim.patterns import sinks

    s = AppendSink()
    for i in range(2 * sinks.FLUSH_ROWS + 3):
        s.write(batch([i], first=i), arr(i), written_at=i)
        assert len(s._cols["record_id"]) == (i + 1) // sinks.FLUSH_ROWS * sinks.FLUSH_ROWS
    assert len(s._small[0]) == 3
    assert s.contents()["offset"].tolist() == list(range(2 * sinks.FLUSH_ROWS + 3)) and not s._small[0]


def test_append_sink_contents_copy_a_column_only_when_much_of_it_is_unused():
    """A column sized for what it holds is handed out as it is (a copy would cost fresh memory for
    a few rows of room); one with much room is cut to its length, so the room is not kept alive."""
    def held(capacity: int, rows: int) -> tuple[bool, list[int]]:
        s = AppendSink(capacity=capacity)
        ids = np.arange(rows, dtype=np.int64)
        s.write(RecordBatch(0, 0, ids, ids, ids, ids), ids * 2, written_at=7)
        buffer = s._cols["record_id"]._data
        col = s.contents()["record_id"]
        assert not col.flags.writeable
        return np.shares_memory(col, buffer), col.tolist()

    assert held(1_000 + 16, 1_000) == (True, list(range(1_000)))  # the sink sized for the workload
    assert held(10_000, 1_000) == (False, list(range(1_000)))
    assert held(1_000 + 200, 1_000) == (False, list(range(1_000)))  # more than an eighth unused


def test_upsert_sink_overwrites_rows_by_record_id_in_sqlite():
    s = UpsertSink(capacity=2)
    assert s.write(batch([1, 2]), arr(5, 6), written_at=100) == 0
    assert s.write(batch([2, 3], first=1), arr(60, 7), written_at=200) == 1
    c = s.contents()
    assert c["record_id"].tolist() == [1, 2, 3]
    assert c["value"].tolist() == [5, 60, 7]
    assert c["offset"].tolist() == [0, 1, 2]
    assert s._db.execute("SELECT count(*) FROM sink").fetchone()[0] == 3  # the table itself, by SQL
    s.close()


def test_a_run_whose_sink_holds_only_record_0_reads_it_out():
    """Until 2026-12-02 the rowid chunks took a largest rowid of 0 for an empty table: an upsert
    sink holding record 0 alone read out no row, and a one-record exactly-once run stopped with
    an internal error."""
    s = UpsertSink(capacity=2)
    s.write(batch([0]), arr(9), written_at=100)
    assert s.contents()["record_id"].tolist() == [0]
    s.close()
    from weir.sim.scenario.model import Checkpointing, Pipeline, Scenario, Workload
    from weir.sim.scenario.run import execute
    run = execute(Scenario(name="one_record", workload=Workload(records=1), checkpoint=Checkpointing(),
                           pipeline=Pipeline(mode="exactly_once", sink="upsert")))
    assert (run.status, run.sink["record_id"].tolist()) == ("drained", [0]), f"seed {run.seed}"


def loop_totals(keys, values, totals):
    out = []
    for k, v in zip(keys, values):
        totals[k] += v
        out.append(int(totals[k]))
    return out


@given(st.lists(st.tuples(st.integers(0, 5), st.integers(-50, 50)), max_size=60),
       st.lists(st.integers(-100, 100), min_size=6, max_size=6))
def test_running_totals_equal_the_record_by_record_loop(pairs, start):
    keys = np.array([k for k, _ in pairs], dtype=np.int64)
    values = np.array([v for _, v in pairs], dtype=np.int64)
    fast_totals = np.array(start, dtype=np.int64)
    slow_totals = list(start)
    assert running_totals(keys, values, fast_totals).tolist() == loop_totals(keys, values, slow_totals)
    assert fast_totals.tolist() == slow_totals


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(-(2**63), 2**63 - 1)), max_size=70),
       st.lists(st.integers(-(2**63), 2**63 - 1), min_size=4, max_size=4))
def test_small_batches_loop_to_the_same_totals_as_numpy_wrapping_included(pairs, start):
    """A batch of at most SMALL_BATCH records takes a Python loop; it must give numpy's answer, the
    int64 wrap-around of a sum included (a Python int does not wrap by itself)."""
    from unittest import mock

    from weir.sim.stream import operators
    keys = np.array([k for k, _ in pairs], dtype=np.int64)
    values = np.array([v for _, v in pairs], dtype=np.int64)
    looped, vectorised = np.array(start, dtype=np.int64), np.array(start, dtype=np.int64)
    with mock.patch.object(operators, "SMALL_BATCH", 10**6):
        by_loop = running_totals(keys, values, looped)
    with mock.patch.object(operators, "SMALL_BATCH", 0):  # (an empty batch: the loop)
        by_numpy = running_totals(keys, values, vectorised)
    assert by_loop.dtype == by_numpy.dtype == np.int64
    assert by_loop.tolist() == by_numpy.tolist()
    assert looped.tolist() == vectorised.tolist()


@settings(max_examples=80, deadline=None)
@given(size=st.sampled_from([1, 7, 2**15, 2**15 + 1, 100_000]), data=st.data())
def test_running_totals_sort_keys_either_way_to_the_loops_answer(size, data):
    """running_totals sorts the keys as int16 (numpy's radix sort) when `totals` has at most 2**15
    entries, as given otherwise: either way the loop's answer, for int32 keys from 0 up to the
    last entry, batches past SMALL_BATCH and sums that wrap."""
    from unittest import mock

    from weir.sim.stream import operators
    n = data.draw(st.integers(operators.SMALL_BATCH + 1, 200), label="n")
    # keys that a narrower sort would mix up (equal in their low 8 or 16 bits) among others
    twins = st.sampled_from([k for k in (0, 1, 255, 256, 257, 2**15 - 1, 2**15, 2**16, 2**16 + 1) if k < size])
    pool = data.draw(st.lists(st.integers(0, size - 1) | twins, min_size=1, max_size=6), label="keys used")
    keys = np.array(data.draw(st.lists(st.sampled_from(pool), min_size=n, max_size=n)), dtype=np.int32)
    values = np.array(data.draw(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=n, max_size=n)), dtype=np.int64)
    start = np.arange(size, dtype=np.int64) * (2**50 + 3)
    looped, vectorised = start.copy(), start.copy()
    with mock.patch.object(operators, "SMALL_BATCH", 10**6):
        by_loop = running_totals(keys, values, looped)
    by_numpy = running_totals(keys, values, vectorised)
    assert by_numpy.tolist() == by_loop.tolist(), f"size {size}"
    assert np.array_equal(looped, vectorised), f"size {size}"


def test_running_totals_keep_apart_keys_whose_low_bits_agree():
    """The sort must keep distinct keys apart: at the edges of the int16 sort (2**15 entries, and
    one more) keys equal in their low 8 or 16 bits, interleaved, each get their own total."""
    from unittest import mock

    from weir.sim.stream import operators
    for size in (2**15, 2**15 + 1, 2**16 + 2):
        twins = [k for k in (0, 256, 1, 257, 255, 2**15 - 1, 2**15, 2**16, 2**16 + 1) if k < size]
        keys = np.array((twins * 20)[::-1], dtype=np.int32)
        values = np.arange(1, len(keys) + 1, dtype=np.int64) * 1_000
        looped, vectorised = np.zeros(size, dtype=np.int64), np.zeros(size, dtype=np.int64)
        with mock.patch.object(operators, "SMALL_BATCH", 10**6):
            by_loop = running_totals(keys, values, looped)
        assert running_totals(keys, values, vectorised).tolist() == by_loop.tolist(), f"size {size}"
        assert np.array_equal(looped, vectorised), f"size {size}"


@given(st.lists(st.integers(-(2**63), 2**63 - 1), max_size=50), st.integers(1, 64))
def test_vectorised_partitioner_equals_the_reference(keys, partitions):
    from weir.sim.kafka.partitioner import murmur2, partition_for
    expected = [(murmur2(k.to_bytes(8, "big", signed=True)) & 0x7FFFFFFF) % partitions for k in keys]
    assert partition_for(np.array(keys, dtype=np.int64), partitions).tolist() == expected


@given(st.lists(st.integers(-(2**63), 2**63 - 1) | st.sampled_from([0, -1, 2**31, -(2**31), 2**63 - 1, -(2**63)]),
                min_size=1, max_size=8), st.integers(1, 1_000))
def test_a_few_keys_hashed_in_python_land_where_numpy_puts_them(keys, partitions):
    """partition_for hashes at most _FEW_KEYS keys one by one in Python (an outbox's or a saga's
    record at a time), more with numpy: the same partition for every key, Kafka's murmur2."""
    from weir.sim.kafka import partitioner
    assert len(keys) <= partitioner._FEW_KEYS
    arr = np.array(keys, dtype=np.int64)
    assert partitioner.partition_for(arr, partitions).tolist() == partitioner._murmur_partitions(arr, partitions).tolist()
    expected = [(partitioner.murmur2(k.to_bytes(8, "big", signed=True)) & 0x7FFFFFFF) % partitions for k in keys]
    assert partitioner.partition_for(arr, partitions).tolist() == expected


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**14), st.integers(9, 63), st.integers(0, 2**20), st.integers(1, 5_000), st.integers(0, 2**32 - 1))
def test_a_small_batch_looks_its_keys_up_in_a_table_built_before(top, n, high, partitions, seed):
    """A batch of 9 to 63 keys looks them up in the largest table built for its partition count
    (the run's workload builds one) where its keys fit, builds a small one where they fit a few
    times its size, and hashes them otherwise: murmur2's partitions every way."""
    from unittest import mock

    from weir.sim.kafka import partitioner
    rng = np.random.default_rng(seed)
    with mock.patch.object(partitioner, "_tables", {}):
        small = rng.integers(0, high + 1, n)
        assert partitioner.partition_for(small, partitions).tolist() == partitioner._murmur_partitions(small, partitions).tolist()
        workload = rng.integers(0, top + 1, 5_000)
        partitioner.partition_for(workload, partitions)  # (builds the workload's table)
        size = len(partitioner._tables[partitions])
        for keys in (rng.integers(0, top + 1, n), rng.integers(0, high + 1, n),
                     np.append(rng.integers(0, size, n - 1), size)):  # (one key just past the table)
            assert partitioner.partition_for(keys, partitions).tolist() == \
                partitioner._murmur_partitions(keys, partitions).tolist(), f"seed {seed}"


@given(st.integers(0, 2**18), st.integers(64, 20_000), st.integers(1, 40_000), st.integers(0, 2**32 - 1))
@settings(max_examples=25, deadline=None)
def test_a_partition_table_for_many_small_keys_equals_murmur2(top, n, partitions, seed):
    """Many keys from a small space are looked up in a cached table of each key's partition
    (weir.sim.kafka.partitioner._table): the same numbers as murmur2 key by key."""
    from weir.sim.kafka.partitioner import murmur2, partition_for
    keys = np.random.default_rng(seed).integers(0, top + 1, n, dtype=np.int64)
    got = partition_for(keys, partitions)
    assert got.dtype == np.int64 and got.flags.writeable, f"seed {seed}"
    reference = {k: (murmur2(k.to_bytes(8, "big", signed=True)) & 0x7FFFFFFF) % partitions
                 for k in np.unique(keys).tolist()}
    assert got.tolist() == [reference[k] for k in keys.tolist()], f"seed {seed}, top {top}, partitions {partitions}"


def test_several_producers_share_the_schedule_and_stamp_their_own_clocks():
    """Two producers on their own nodes: every record is in the log once (a crashed one catches up,
    its retries deduplicated per producer), and the skewed producer's records carry its clock."""
    import numpy as np

    from weir.sim.scenario.run import execute
    from weir.sim.scenario.model import Fault, NodeSpec, Pipeline, Scenario, Workload
    scenario = Scenario(name="two_producers", workload=Workload(records=4000, producers=2, produce_batch=100),
                        pipeline=Pipeline(process_time="10us"),
                        nodes=(NodeSpec("producer-1", clock_offset="-30ms"),),
                        faults=(Fault(node="producer-1", at="40ms", down_for="30ms"),))
    run = execute(scenario)
    ids = np.sort(run.source["record_id"])
    assert ids.tolist() == list(range(4000)), f"seed {run.seed}"
    assert run.status == "drained"
    # instance 1 sent the odd batches; at the same nominal time its clock reads 30ms less
    batch = run.source["record_id"] // 100
    times = run.source["event_time"]
    first_odd = times[batch == 1].min()
    first_even_after = times[batch == 2].min()
    assert first_even_after - first_odd > 30_000 - 5_000, (first_odd, first_even_after)
    assert "producer-1" in run.trace.nodes


def test_extra_nodes_must_exist_in_the_scenario():
    import pytest

    from weir.sim.kernel.errors import ScenarioError
    from weir.sim.scenario.model import Fault, NodeSpec, Scenario, Workload
    with pytest.raises(ScenarioError) as e:
        Scenario(faults=(Fault(node="producer-1"),))
    assert e.value.key == "faults[0].node"
    with pytest.raises(ScenarioError) as e:
        Scenario(nodes=(NodeSpec("source-2"),))
    assert e.value.key == "nodes.source-2"
    with pytest.raises(ScenarioError) as e:
        Fault(node="producer-0")
    assert e.value.key == "faults.node"
    assert Scenario(workload=Workload(producers=3), faults=(Fault(node="producer-2"),)).node_names[-1] == "producer-2"


def test_upsert_dedup_key_is_the_conflict_target():
    import numpy as np
    import pytest

    from weir.sim.kernel.batch import RecordBatch
    from weir.sim.kernel.errors import ScenarioError
    from weir.sim.scenario.model import Pipeline
    batch = RecordBatch(0, 0, np.array([1, 2, 3]), np.array([7, 7, 8]), np.array([5, 6, 7]), np.array([1, 1, 1]))
    by_txn_and_day = UpsertSink(16, ("record_id", "event_date"))
    assert "ON CONFLICT (record_id, event_date) DO UPDATE" in by_txn_and_day._upsert
    assert by_txn_and_day.write(batch, np.array([10, 20, 30]), 0) == 0
    assert by_txn_and_day.write(batch, np.array([10, 20, 30]), 1) == 3  # a replay overwrites its own rows
    assert by_txn_and_day.contents()["record_id"].tolist() == [1, 2, 3]
    # the day is event_time // DAY_US: record 1 again a day later is a row of its own, an hour later the same row
    day, hour = 86_400_000_000, 3_600_000_000
    again = RecordBatch(0, 3, np.array([1, 1]), np.array([7, 7]), np.array([5 + day, 5 + hour]), np.array([1, 1]))
    assert by_txn_and_day.write(again, np.array([40, 50]), 2) == 1
    assert by_txn_and_day.records_written() == 3
    assert sorted(by_txn_and_day.contents()["value"].tolist()) == [20, 30, 40, 50]
    by_account = UpsertSink(16, ("key",))  # not a record's identity: records overwrite each other
    assert by_account.write(batch, np.array([10, 20, 30]), 0) == 1
    assert sorted(by_account.contents()["record_id"].tolist()) == [2, 3]
    with pytest.raises(ScenarioError) as e:
        Pipeline(sink="append", dedup_key=("key",))
    assert e.value.key == "pipeline.dedup_key"
    with pytest.raises(ScenarioError) as e:
        Pipeline(sink="upsert", dedup_key=("amount",))
    assert e.value.key == "pipeline.dedup_key"


def test_every_sqlite_store_has_large_pages_and_still_rolls_back():
    """weir's in-memory tables use PAGE_SIZE pages (weir.sim.patterns.sinks.memory_db: at SQLite's
    4 KiB default, a table's inserts slow as it grows past a million rows), and a transaction
    rolled back leaves nothing behind: the in-memory journal still undoes it."""
    from weir.sim.patterns.dlq import DeadLetterQueue
    from weir.sim.patterns.sinks import PAGE_SIZE, TransactionalSink, WindowResults
    stores = {"upsert": UpsertSink()._db, "transactional": TransactionalSink()._db,
              "window results": WindowResults()._db, "dead letters": DeadLetterQueue().db}
    for name, db in stores.items():
        assert db.execute("PRAGMA page_size").fetchone()[0] == PAGE_SIZE > 4096, name
    db = stores["upsert"]
    db.execute("BEGIN")
    db.execute('INSERT INTO sink (record_id, key, partition, "offset", value, written_at) VALUES (1, 2, 0, 0, 5, 9)')
    assert db.execute("SELECT count(*) FROM sink").fetchone()[0] == 1
    db.execute("ROLLBACK")
    assert db.execute("SELECT count(*) FROM sink").fetchone()[0] == 0
