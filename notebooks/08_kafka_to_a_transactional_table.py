# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Kafka to a transactional table: exactly-once across systems
#
# The seed's scenario 3 (exactly-once from Kafka to a Delta table), its section 4.2 (the
# exactly-once sequence) and section 1's two-phase commit (pre-commit, checkpoint, commit), each
# run; then the three ways the Kafka side of it goes wrong.
#
# Interview questions this answers:
# - *How does Flink write to a table exactly once, when the table knows nothing of checkpoints?*
# - *Why can a consumer read records that were never committed, and what stops it?*
# - *What is a zombie producer, and what does fencing do?*
# - *What does the transaction timeout have to be longer than?*

# %%
import numpy as np
from matplotlib.figure import Figure

import weir
from weir.analysis.diagram import checkpoint_diagram
from weir.analysis.metrics import visible_at

# %% [markdown]
# ## The two-phase commit, drawn from a run
#
# `kafka_to_delta` checkpoints offsets and state every 100ms. Between two barriers the sink writes
# into an open transaction (staged rows, as Delta writes data files before its `_delta_log`
# entry). At the barrier it **pre-commits**: the transaction is flushed and waits, invisible to
# readers. When every task has reported, the checkpoint is complete, the coordinator notifies the
# sink, and the sink **commits**: the rows appear at once. A crash before the commit aborts or
# recovers the transaction from the checkpoint, so a row is never visible twice. Here is the first
# checkpoint of a run with no fault, as the run did it:

# %%
calm = weir.execute(weir.load_scenario("kafka_to_delta"), 1, ())
diagram = checkpoint_diagram(calm)
assert "pre-commit" in diagram and "its rows become visible" in diagram
diagram  # in Jupyter, the diagram; print() it for the Mermaid text

# %% [markdown]
# The price is latency: a row is written within milliseconds but visible only at the commit after
# the next barrier. The picture counts rows written (staged) and rows a reader can see, over the
# first half second, and then the scenario's own run: the processor, the sink and the broker crash
# in turn, and still every record is in the table exactly once.

# %%
order = np.argsort(calm.sink["written_at"], kind="stable")
written = calm.sink["written_at"][order] / 1000  # ms
visible = visible_at(calm)[order] / 1000  # the first commit at or after each write
figure = Figure(figsize=(10, 3), layout="constrained")
ax = figure.add_subplot()
count = np.arange(1, len(written) + 1)
ax.plot(written, count, color="#edae49", label="rows written into the open transaction (staged)")
ax.step(np.sort(visible), count, where="post", color="#264653", label="rows a reader sees (committed)")
ax.set_xlim(0, 500)
ax.set_ylim(0, count[np.searchsorted(written, 500)])
ax.set_xlabel("simulated time (ms)")
ax.set_ylabel("rows")
ax.set_title("kafka_to_delta: rows become visible checkpoint by checkpoint")
ax.legend(fontsize=7)
weir.show(figure)

# %%
result = weir.run("kafka_to_delta")
print(result.verdict("exactly_once").summary)
assert result.matches and result.verdict("exactly_once").held
assert np.all(visible >= written)

# %% [markdown]
# ## The consumer's side: read_committed
#
# A transactional producer writes in transactions of five batches and crashes in the middle of
# one; its next instance aborts it and sends those records again. With `read_uncommitted`
# (Kafka's default) the consumer has already passed the aborted records on: the sink holds rows
# of a transaction that never happened, and those records twice. `read_committed` reads only up
# to the last stable offset and skips aborted records.

# %%
for name in ("txn_read_uncommitted", "txn_read_committed"):
    verdict = weir.run(name).verdict("no_aborted_reads")
    print(f"{name:<22} {verdict.summary}")
assert not weir.run("txn_read_uncommitted").verdict("no_aborted_reads").held
assert weir.run("txn_read_committed").verdict("no_aborted_reads").held

# %% [markdown]
# ## Zombies and fencing
#
# A producer frozen by a GC pause outlives its transaction timeout: the broker aborts the
# transaction and bumps the producer's epoch. When the producer wakes it carries on as if nothing
# happened. With fencing (`zombie_producer`) its next write is refused, and it starts again from
# its last committed transaction. Without (`zombie_producer_unfenced`) the broker takes its writes
# and its commit, which records a position past the aborted records: they are never written again.

# %%
for name in ("zombie_producer", "zombie_producer_unfenced"):
    verdict = weir.run(name).verdict("log_complete")
    print(f"{name:<26} {verdict.summary}")
assert weir.run("zombie_producer").verdict("log_complete").held
assert not weir.run("zombie_producer_unfenced").verdict("log_complete").held

# %% [markdown]
# ## Exercises
#
# Each exercise is a setting to change and a check that runs weir on it. Change the setting,
# run the check, until it says **passed**. A solution is hidden below each (expand it in Jupyter).
#
# **1. A transaction timeout long enough.** In `two_phase_commit_timeout` the notification that
# checkpoint 2 completed is lost, so its transaction stays pending, and the sink is down for 100ms
# before the restore commits it. By then the external system has aborted it (its transaction
# timeout is 250ms), and its records are lost. Choose `pipeline.transaction_timeout` so that
# nothing is lost on seeds 1 to 3; Kafka's brokers refuse a timeout above 15 minutes
# (`transaction.max.timeout.ms`).

# %%
@weir.exercise
def check_transaction_timeout(timeout: str) -> weir.Answer:
    scenario = weir.load_scenario("two_phase_commit_timeout").with_settings({"pipeline.transaction_timeout": timeout})
    if scenario.pipeline.transaction_timeout > weir.minutes(15):
        return weir.Answer(False, f"{timeout}: the broker refuses a timeout above transaction.max.timeout.ms (15 min)")
    return weir.Answer.held(scenario, ["no_loss"], seeds=(1, 2, 3), label=timeout)


timeout = "250ms"  # change me

# %% tags=["check"]
check_transaction_timeout(timeout)

# %% tags=["solution"] jupyter={"source_hidden": true}
# A pending transaction must outlive a checkpoint interval (until the next checkpoint's
# notification commits it) plus the longest outage before the restore commits it: 100ms + 100ms
# and the time to the crash, so 400ms passes here and 300ms does not. In production Flink's Kafka
# producer defaults to an hour, above a broker's default transaction.max.timeout.ms of 15 minutes:
# raise the broker's limit, rather than cut the timeout below an interval plus the longest outage.
answer = check_transaction_timeout("400ms")
assert answer
answer

# %% [markdown]
# **2. No aborted reads.** Change one of `txn_read_uncommitted`'s settings so that the sink never
# sees a record of an aborted transaction, and none twice.

# %%
@weir.exercise
def check_isolation(settings: dict) -> weir.Answer:
    scenario = weir.load_scenario("txn_read_uncommitted").with_settings(settings)
    return weir.Answer.held(scenario, ["no_aborted_reads", "no_duplicates"], seeds=(1,), label=str(settings))


settings = {}  # add settings here

# %% tags=["check"]
check_isolation(settings)

# %% tags=["solution"] jupyter={"source_hidden": true}
# The consumer's isolation level: read_committed reads up to the last stable offset only.
answer = check_isolation({"pipeline.isolation": "read_committed"})
assert answer
answer
