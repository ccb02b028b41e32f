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
# # Retries, backoff and the dead-letter queue
#
# The seed's section 4.3 (the failure and retry flow), section 7.4 (the DLQ pattern, with retry
# metadata) and its warning against retrying forever, each run.
#
# Interview questions this answers:
# - *A write fails. How often, and how long, should the pipeline retry?*
# - *What goes to a dead-letter queue, with what, and what happens to it next?*
# - *Why not just retry until it works?*

# %%
from matplotlib.figure import Figure

import weir
from weir.analysis.metrics import metrics
from weir.analysis.plots import source_vs_sink

# %% [markdown]
# ## Retries with backoff, against an outage longer than the budget
#
# In `sink_outage_dlq` the sink's database refuses every write for 50ms. Each failed write is
# retried three times with exponential backoff (1ms, 2ms, 4ms, each stretched by up to 20% of
# seeded jitter so that retries do not arrive in lockstep): 7ms in all, far less than the outage.
# The batches that fail their last retry go to the dead-letter queue with their error, and the
# batch is acknowledged, so the partition is not blocked. Nothing is dropped silently: every
# record is in the sink or in the DLQ. But the sink is missing what the DLQ holds.

# %%
outage = weir.execute(weir.load_scenario("sink_outage_dlq"))
for verdict in weir.check(outage, ["no_silent_drops", "no_loss"]):
    print(f"{verdict.invariant:<16} {verdict.summary}")
assert weir.check(outage, ["no_silent_drops"])[0].held and not weir.check(outage, ["no_loss"])[0].held

# %% [markdown]
# ## Poison records, and what a DLQ entry carries
#
# In `dlq_poison`, one record in 500 fails the sink's validation every time: no retry will help.
# After three retries it goes to the DLQ with the seed's metadata (section 7.4): the original
# record, the error, the retry count, the source partition and offset, when it failed. That is
# what an operator needs to decide: fix and replay, or discard.

# %%
poison = weir.execute(weir.load_scenario("dlq_poison"))
entry = poison.dlq_messages[0]
for field in ("original_record", "error_type", "error_message", "retry_count", "source_partition", "source_offset"):
    print(f"{field:<17} {entry[field]}")
assert entry["retry_count"] == entry["max_retries"] == 3 and len(poison.dlq_messages) == 40

# %% [markdown]
# ## Replaying the DLQ, and doing it idempotently
#
# In `dlq_replay` a replay job fixes the poison records from t=600ms, writes them to the sink and
# marks them processed, 20 at a time. The sink node crashes between a write and its mark, so the
# job writes some records twice after the restart; the upsert sink keeps one row each, and the
# DLQ drains to empty. `dlq_replay_append` does the same into an append sink: the records written
# before the crash are in the sink twice. A replay job must be idempotent too, or write and mark
# in one transaction.
#
# On the left, the DLQ's depth: the poison records pile up, and the replay drains them. On the
# right, `retry_forever`, which retries the first poison record's batch without end: the sink
# writes nothing after it, and the pipeline stops for good.

# %%
replay = weir.execute(weir.load_scenario("dlq_replay"))
forever = weir.execute(weir.load_scenario("retry_forever"))
figure = Figure(figsize=(10, 3.2), layout="constrained")
depth_ax, forever_ax = figure.subplots(1, 2)
for name, run, colour, dash in (("dlq_poison", poison, "#d1495b", "-"), ("dlq_replay", replay, "#4c9f70", "--")):
    depth = metrics(run)["dlq.depth"][0]  # the same until the replay starts: dashed on top
    depth_ax.step(depth.time / 1000, depth.value, where="post", color=colour, ls=dash, label=name)
depth_ax.axvline(600, color="#999999", ls=":", label="replay job starts (600ms)")
depth_ax.set_xlabel("simulated time (ms)")
depth_ax.set_ylabel("records in the DLQ")
depth_ax.set_title("dead-letter queue depth")
depth_ax.legend(fontsize=7)
source_vs_sink(forever, ax=forever_ax).set_title("retry_forever: the sink stops at the first poison record")
assert metrics(replay)["dlq.depth"][0].value[-1] == 0 and weir.check(replay, ["no_loss", "no_duplicates"])[0].held
assert not weir.run("dlq_replay_append").verdict("no_duplicates").held
assert forever.status != "drained"
weir.show(figure)

# %% [markdown]
# ## Exercises
#
# Each exercise is a setting to change and a check that runs weir on it. Change the setting,
# run the check, until it says **passed**. A solution is hidden below each (expand it in Jupyter).
#
# **1. Retries that ride out the outage.** Choose `sink_outage_dlq`'s `[retry]` settings
# (`retry.max_retries`, `retry.backoff`, `retry.multiplier`, `retry.max_backoff`) so that the 50ms
# outage sends nothing to the DLQ on seeds 1 to 3. But a retry budget is time a batch is held
# up: keep the longest possible wait (every backoff, with its 20% of jitter) under 200ms.

# %%
@weir.exercise
def check_retries(settings: dict) -> weir.Answer:
    scenario = weir.load_scenario("sink_outage_dlq").with_settings(settings)
    retry = scenario.retry
    waits = [min(retry.backoff * retry.multiplier ** n, retry.max_backoff) for n in range(retry.max_retries)]
    budget = sum(waits) * (1 + retry.jitter)
    if retry.forever or budget >= 200_000:
        wait = "for ever" if retry.forever else f"{budget / 1000:.0f}ms"
        return weir.Answer(False, f"{settings}: a batch may wait {wait}")
    for seed in (1, 2, 3):
        run = weir.execute(scenario, seed)
        if len(run.dlq["record_id"]):
            return weir.Answer(False, f"{settings}, seed {seed}: {len(run.dlq['record_id'])} records went to the DLQ "
                                      f"(a retry budget of at most {budget / 1000:.0f}ms)")
    return weir.Answer(True, f"{settings}: nothing in the DLQ, with a retry budget of at most {budget / 1000:.0f}ms")


settings = {"retry.max_retries": 3}  # change me

# %% tags=["check"]
check_retries(settings)

# %% tags=["solution"] jupyter={"source_hidden": true}
# Six retries: 1+2+4+8+16+32 = 63ms (76ms with jitter) outlast the 50ms outage; five (31ms) do not.
# Doubling is what makes a short first retry and a long last one cheap to have together.
answer = check_retries({"retry.max_retries": 6})
assert answer
answer

# %% [markdown]
# **2. Not for ever.** Change `retry_forever`'s `[retry]` settings so that the pipeline finishes,
# with every record accounted for (in the sink, or in the DLQ for someone to replay). Skipping the
# records that fail finishes too: see what the check says about it.

# %%
@weir.exercise
def check_finishes(settings: dict) -> weir.Answer:
    scenario = weir.load_scenario("retry_forever").with_settings(settings)
    return weir.Answer.held(scenario, ["no_silent_drops", "drained"], seeds=(1,), label=str(settings))


settings = {"retry.forever": False, "retry.exhausted": "skip"}  # change me

# %% tags=["check"]
check_finishes(settings)

# %% tags=["solution"] jupyter={"source_hidden": true}
# A retry budget, then the dead-letter queue (retry.exhausted's default): the poison records wait
# there with their error, and everything after them flows.
answer = check_finishes({"retry.forever": False, "retry.exhausted": "dlq"})
assert answer
answer
