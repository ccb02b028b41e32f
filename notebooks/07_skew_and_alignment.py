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
# # Skew and salting; checkpoint alignment under backpressure
#
# The seed's failure mode 2 (data skew causing hotspots) and what it does to its failure mode 1
# (checkpoint timeout) when barriers are aligned, each run.
#
# Interview questions this answers:
# - *One key carries half the traffic. What happens to a keyed job, and how does salting fix it?*
# - *Why do checkpoints time out under backpressure, and what do unaligned checkpoints change?*
#
# The job: four window subtasks behind a keyed exchange (each key has a home subtask), tumbling
# 100ms sums, and half of the records carry key 0.

# %%
import numpy as np
from matplotlib.figure import Figure

import weir
from weir.analysis.plots import checkpoint_durations

# %% [markdown]
# ## A hot key: one busy subtask, three idle ones
#
# `hot_key_skew` sends all of key 0's records to its home subtask. That subtask takes in most of
# the records, its input queues fill, and its back-pressure reaches the sources: the job takes
# far longer than four subtasks should. The results are right; the load is not balanced.
#
# `hot_key_salted` salts each record's key with its offset modulo 4 and shifts it that many
# subtasks from home: key 0 is spread over all four. Each aggregates its share of every window
# (phase one), and the partial panes merge into one result per key and window (phase two). A
# replay routes each record as before, since the salt comes from its offset, so a crash (there is
# one, in both runs) does not scatter a key's state.

# %%
skewed = weir.execute(weir.load_scenario("hot_key_skew"))
salted = weir.execute(weir.load_scenario("hot_key_salted"))
for name, run in (("hot_key_skew", skewed), ("hot_key_salted", salted)):
    verdicts = {v.invariant: v for v in weir.check(run, ["load_balanced", "window_complete"])}
    balanced, complete = verdicts["load_balanced"], verdicts["window_complete"]
    print(f"{name:<15} finished at {run.end_time / 1e6:.2f}s  windows right: {complete.held}")
    print(f"{'':<15} {balanced.summary}")
assert not weir.check(skewed, ["load_balanced"])[0].held and weir.check(salted, ["load_balanced"])[0].held
assert weir.check(salted, ["window_complete"])[0].held and salted.end_time < skewed.end_time

# %% [markdown]
# ## Aligned barriers wait in the queue
#
# An aligned barrier travels in the record stream: it reaches the hot subtask only after the
# records queued ahead of it, and the subtask stops reading its faster inputs until the slowest
# barrier is in. In `checkpoint_aligned_backpressure` (the same hot key, a 30ms checkpoint
# timeout) most checkpoints time out. In `checkpoint_unaligned` a barrier overtakes the queue:
# the subtask snapshots at once and saves the records it overtook with its state, so a restore
# replays them first. Every checkpoint completes in about 15ms; a crash restores one, and the
# windows still match.
#
# Below: records each subtask took in (top), and the checkpoint durations of the two runs.

# %%
aligned = weir.execute(weir.load_scenario("checkpoint_aligned_backpressure"))
unaligned = weir.execute(weir.load_scenario("checkpoint_unaligned"))
figure = Figure(figsize=(10, 7), layout="constrained")
load_ax, aligned_ax, unaligned_ax = figure.subplots(3, 1, height_ratios=(1.2, 1, 1))
width = 0.38
for shift, (name, run, colour) in zip((-width / 2, width / 2), (("hot_key_skew", skewed, "#d1495b"),
                                                                ("hot_key_salted", salted, "#4c9f70"))):
    took = [s["records"] for s in run.subtasks]
    load_ax.bar(np.arange(len(took)) + shift, took, width, color=colour, label=name)
load_ax.axhline(np.mean([s["records"] for s in skewed.subtasks]) * 1.5, color="#999999", ls=":",
                label="1.5x the mean: load_balanced's bound")
load_ax.set_xticks(range(4), [f"subtask {i}" for i in range(4)])
load_ax.set_ylabel("records taken in")
load_ax.set_title("records per window subtask")
load_ax.legend(fontsize=7)
checkpoint_durations(aligned, ax=aligned_ax).set_title("checkpoint_aligned_backpressure: aligned barriers")
checkpoint_durations(unaligned, ax=unaligned_ax).set_title("checkpoint_unaligned: unaligned barriers")
print(f"aligned:   {aligned.checkpoint_stats['completed']} of {aligned.checkpoint_stats['triggered']} completed")
print(f"unaligned: {unaligned.checkpoint_stats['completed']} of {unaligned.checkpoint_stats['triggered']} completed, "
      f"{unaligned.replayed_in_flight} in-flight records replayed from the snapshot after the crash")
assert aligned.checkpoint_stats["timed_out"] > aligned.checkpoint_stats["completed"]
assert unaligned.checkpoint_stats["timed_out"] == 0 and unaligned.replayed_in_flight > 0
weir.show(figure)

# %% [markdown]
# ## Exercises
#
# Each exercise is a setting to change and a check that runs weir on it. Change the setting,
# run the check, until it says **passed**. A solution is hidden below each (expand it in Jupyter).
#
# **1. How many salts?** Set `pipeline.salts` for `hot_key_skew` so that the busiest subtask
# takes in at most 1.5 times the mean, with every window still right. Key 0 carries half of the
# records; the other half is spread over four subtasks already.

# %%
@weir.exercise
def check_salts(salts: int) -> weir.Answer:
    scenario = weir.load_scenario("hot_key_skew").with_settings({"pipeline.salts": salts})
    return weir.Answer.held(scenario, ["load_balanced", "window_complete"], seeds=(1,), label=f"salts = {salts}")


salts = 1  # change me

# %% tags=["check"]
check_salts(salts)

# %% tags=["solution"] jupyter={"source_hidden": true}
# Two salts split key 0 over two subtasks: each of them still takes in a quarter of everything plus
# its share of the rest (about 1.6x the mean). Three or four spread it enough.
answer = check_salts(4)
assert answer
answer

# %% [markdown]
# **2. Checkpoints within 30ms, under the same backpressure.** Change
# `checkpoint_aligned_backpressure`'s settings so that every checkpoint completes, with the
# windows still right, **without** raising the 30ms timeout. There is more than one way; the
# check says which one you found.

# %%
@weir.exercise
def check_alignment(settings: dict) -> weir.Answer:
    if "checkpoint.timeout" in settings:
        return weir.Answer(False, "keep checkpoint.timeout at 30ms: the point is to complete within it")
    scenario = weir.load_scenario("checkpoint_aligned_backpressure").with_settings(settings)
    return weir.Answer.held(scenario, ["checkpoints_succeed", "window_complete"], seeds=(1,), label=str(settings))


settings = {}  # add settings here

# %% tags=["check"]
check_alignment(settings)

# %% tags=["solution"] jupyter={"source_hidden": true}
# Three ways, each a real remedy: unaligned barriers ({"checkpoint.unaligned": True}) overtake the
# queue; salting ({"pipeline.salts": 4}) removes the backpressure; smaller input buffers
# ({"pipeline.queue_capacity": 1}, what Flink's buffer debloating does) leave less in front of a barrier.
answer = check_alignment({"checkpoint.unaligned": True})
assert answer
answer
