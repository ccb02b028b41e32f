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
# # Flink or Beam: one stream, two sets of rules
#
# Flink and Beam agree on what a watermark means and on what allowed lateness is for. They do not
# agree on every boundary: the same elements and watermarks can give different panes. weir's
# window engine follows Flink by default, and Beam with `semantics = "beam"`, and names each rule
# where the two differ (the README's table, "Windows and watermarks"). Both columns are checked
# against the engines themselves: `bench/flink_semantics.py` runs Flink 1.20's own window
# operator and `bench/beam_semantics.py` Beam's DirectRunner, on thousands of random streams.
#
# A test stream gives exact control: elements, then the watermark moved by hand. Here is one,
# run under both rules: a 10ms tumbling sum with 5ms of allowed lateness, so the window
# `[0, 10000)` has `max_ts = 9999` and expires at `max_ts + lateness = 14999` (all in microseconds).

# %%
import weir
from weir.analysis.plots import panes
from weir.sim.stream.teststream import TestStream
from weir.sim.stream.windows import SUM, Session, Trigger, Tumbling, WindowSpec

stream = (TestStream()
          .add_elements(("k", 1_000, 1), ("k", 2_000, 2))
          .advance_watermark_to(9_999)                                    # W = max_ts
          .advance_watermark_to(12_000)                                   # past the end
          .add_elements(("k", 3_000, 4), ("k", 4_000, 8), ("k", 5_000, 16))  # three late ones, one bundle
          .advance_watermark_to(14_999)                                   # W = max_ts + lateness
          .add_elements(("k", 6_000, 32))                                 # one more, exactly there
          .advance_watermark_to_infinity())


def run(semantics: str, **spec):
    return stream.run(WindowSpec(Tumbling(10_000), aggregate=SUM, semantics=semantics,
                                 **{"allowed_lateness": 5_000, **spec}))


results = {semantics: run(semantics) for semantics in ("flink", "beam")}
for semantics, result in results.items():
    print(f"{semantics:>5}: panes (key, start, timing, value) {result.values()}")
    print(f"       late side output {[(e.timestamp, e.value) for e in result.late]}")
weir.show(panes(results))

# %% [markdown]
# Three rules tell them apart, each one line in the engines' source:
#
# 1. **When the ON_TIME pane fires.** Flink's `EventTimeTrigger` fires when
#    `window.maxTimestamp() <= watermark`: at `W = 9999`. Beam's `AfterWatermark` fires when the
#    watermark is past the end of the window, `W > max_ts`: at the next watermark, 12000.
# 2. **How often late elements fire.** Flink's `EventTimeTrigger` fires on every element of a
#    window the watermark has passed: three LATE panes, 4, 8 and 16. Beam asks a trigger once per
#    bundle (`ReduceFnRunner.processElements`): one LATE pane, 28. (These panes discard, weir's
#    default; accumulating ones would read 7, 15, 31 against 31: the same sum, other steps.)
# 3. **The drop boundary.** Flink's `WindowOperator.isWindowLate` drops when
#    `max_ts + lateness <= W`: at `W = 14999` the last element goes to the side output. Beam's
#    `LateDataUtils` drops only when `max_ts + lateness < W`: it keeps it, in a LATE pane of 32.
#
# None of this is a bug in either. It matters when a job moves between them, or when a test
# written for one runs on the other: a sink keyed by pane index sees other panes, and a window
# that one engine completes the other leaves one element short.

# %%
assert results["flink"].values()[0] == ("k", 0, "ON_TIME", 3) and results["flink"].panes[0].watermark == 9_999
assert [p.value for p in results["flink"].panes if p.timing.value == "LATE"] == [4, 8, 16]
assert [p.value for p in results["beam"].panes if p.timing.value == "LATE"] == [28, 32]
assert [e.value for e in results["flink"].late] == [32] and not results["beam"].late

# %% [markdown]
# ## Sessions that touch
#
# A session window is `[ts, ts + gap)`, and windows of one key merge. Flink merges windows that
# intersect, and its `TimeWindow.intersects` counts touching (`start <= other.end`); Beam's
# `IntervalWindow` merges only windows that overlap. Two elements exactly a gap apart:

# %%
touching = TestStream().add_elements(("k", 0, 1), ("k", 5_000, 2)).advance_watermark_to_infinity()
sessions = {semantics: touching.run(WindowSpec(Session(5_000), aggregate=SUM, semantics=semantics))
            for semantics in ("flink", "beam")}
for semantics, result in sessions.items():
    print(f"{semantics:>5}: (key, start, end, timing, value) {result.rows()}")
assert sessions["flink"].rows() == [("k", 0, 10_000, "ON_TIME", 3)]
assert sessions["beam"].rows() == [("k", 0, 5_000, "ON_TIME", 1), ("k", 5_000, 10_000, "ON_TIME", 2)]
weir.show(panes(sessions))

# %% [markdown]
# ## Try it
#
# - In a scenario file, `semantics = "beam"` in `[window]` runs a whole pipeline by Beam's rules;
#   `WindowSpec(..., accumulation="accumulating")` here shows the same stream's panes accumulating.
# - `semantics = "beam"` also allows `late = "never"`: Beam's `AfterWatermark.pastEndOfWindow()`
#   alone, which fires once and is finished. Flink's `EventTimeTrigger` has no such mode, and weir
#   refuses it under Flink's rules.

# %% [markdown]
# ## Exercises
#
# Each exercise is a setting to change and a check that runs weir on it. Change the setting,
# run the check, until it says **passed**. A solution is hidden below each (expand it in Jupyter).
#
# **1. Keep the last element under Flink's rules.** With Flink's semantics, the element that
# comes at `W = 14999` goes to the side output. What is the least allowed lateness (in
# microseconds) that keeps it in its window?

# %%
@weir.exercise
def check_lateness(allowed_lateness: int) -> weir.Answer:
    kept = not run("flink", allowed_lateness=allowed_lateness).late
    if not kept:
        return weir.Answer(False, f"with {allowed_lateness:,}us the element at W = 14,999 still goes to the side output")
    if allowed_lateness > 1 and not run("flink", allowed_lateness=allowed_lateness - 1).late:
        return weir.Answer(False, f"{allowed_lateness:,}us keeps it, and so does less: the window's state lives longer "
                                  "than it needs to")
    return weir.Answer(True, f"{allowed_lateness:,}us: max_ts + lateness = {9_999 + allowed_lateness:,} > 14,999")


allowed_lateness = 5_000  # change me

# %% tags=["check"]
check_lateness(allowed_lateness)

# %% tags=["solution"] jupyter={"source_hidden": true}
# Flink drops when max_ts + lateness <= W: 9,999 + L must be more than 14,999, so L = 5,001 is the
# least. Under Beam's rule (max_ts + lateness < W) 5,000 already keeps it: one microsecond apart.
answer = check_lateness(5_001)
assert answer
answer

# %% [markdown]
# **2. One LATE pane under Flink's rules too.** Beam fired one LATE pane for the three late
# elements of one bundle. Under Flink's rules, give the trigger's `late_every_n` that makes the
# three fire one LATE pane of 28, with nothing lost.

# %%
@weir.exercise
def check_late_every_n(late_every_n: int) -> weir.Answer:
    result = run("flink", trigger=Trigger(late_every_n=late_every_n))
    late = [p.value for p in result.panes if p.timing.value == "LATE" and p.watermark == 12_000]
    if late != [28]:
        return weir.Answer(False, f"the three late elements fired LATE panes {late} at W = 12,000")
    return weir.Answer(True, f"late_every_n = {late_every_n}: one LATE pane of 28, as Beam's bundle")


late_every_n = 1  # change me

# %% tags=["check"]
check_late_every_n(late_every_n)

# %% tags=["solution"] jupyter={"source_hidden": true}
# Flink asks the trigger after each element; a count trigger of 3 fires on the third. Beam's
# bundle is not a count: two late elements in a bundle fire one pane there, and here they wait
# for a third, or for the window's cleanup, which fires what is pending.
answer = check_late_every_n(3)
assert answer
answer
